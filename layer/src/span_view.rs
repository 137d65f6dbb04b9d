//! What a span is made of, as the encoder reads it (re-exported by
//! `traces`; here so that the encoder does not depend on the span layer).

use crate::view::RecordVisitor;

/// What an OTLP `Span` is made of, read by the encoder in one pass.
///
/// Ids are the W3C ones: a trace id of 16 bytes and a span id of 8, not all
/// zero.
pub trait SpanView {
    /// The trace the span belongs to.
    fn trace_id(&self) -> [u8; 16];
    /// The span's own id.
    fn span_id(&self) -> [u8; 8];
    /// The parent's span id; `None` for a root span.
    fn parent_span_id(&self) -> Option<[u8; 8]> {
        None
    }
    /// OTLP `Span.flags`: the W3C trace flags in bits 0-7 (bit 0:
    /// sampled); bit 8 set says bit 9 tells whether the parent is remote
    /// (as the OpenTelemetry SDK writes them). 1 by default: sampled, the
    /// parent's remoteness not known.
    fn flags(&self) -> u32 {
        1
    }
    /// The span's name (a `tracing` span's name).
    fn name(&self) -> &str;
    /// What the span stands for (default [`SpanKind::Internal`]).
    fn kind(&self) -> SpanKind {
        SpanKind::Internal
    }
    /// When it started, in nanoseconds since the Unix epoch.
    fn start_time_unix_nano(&self) -> u64;
    /// When it ended.
    fn end_time_unix_nano(&self) -> u64;
    /// How it ended (default [`SpanStatus::Unset`]).
    fn status(&self) -> SpanStatus<'_> {
        SpanStatus::Unset
    }
    /// Attributes left out before encoding (counted with those the encoder
    /// cuts).
    fn dropped_attributes_count(&self) -> u32 {
        0
    }
    /// Visits the span's attributes (`visit_attribute`,
    /// `visit_pre_encoded_attribute`); a body, if visited, is left out.
    fn visit(&self, visitor: &mut dyn RecordVisitor);
    /// Hands each of the span's events to `f`, encoded (one `Span.events`
    /// field each, as only selftrace makes them): none by default.
    #[doc(hidden)]
    fn visit_events(&self, f: &mut dyn FnMut(&[u8])) {
        let _ = f;
    }
    /// Events left out before encoding.
    fn dropped_events_count(&self) -> u32 {
        0
    }
    /// Hands each of the span's links to `f`: the trace id, span id and
    /// flags (as [`flags`](Self::flags)) of a span it follows from. None by
    /// default.
    fn visit_links(&self, f: &mut dyn FnMut([u8; 16], [u8; 8], u32)) {
        let _ = f;
    }
    /// Links left out before encoding.
    fn dropped_links_count(&self) -> u32 {
        0
    }
}

/// OTLP `SpanKind` (`otel.kind` on a `tracing` span: `server`, `client`,
/// `producer`, `consumer`, `internal`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SpanKind {
    /// An operation inside the application (the default).
    #[default]
    Internal,
    /// Handles a remote request.
    Server,
    /// Makes a remote request.
    Client,
    /// Starts an asynchronous operation (a message sent).
    Producer,
    /// Handles an asynchronous operation (a message received).
    Consumer,
}

impl SpanKind {
    /// The OTLP enum value.
    pub const fn number(self) -> u64 {
        match self {
            Self::Internal => 1,
            Self::Server => 2,
            Self::Client => 3,
            Self::Producer => 4,
            Self::Consumer => 5,
        }
    }

    /// Parses `otel.kind`: `internal`, `server`, `client`, `producer`,
    /// `consumer` (any case), as `tracing-opentelemetry` does.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        [
            ("internal", Self::Internal),
            ("server", Self::Server),
            ("client", Self::Client),
            ("producer", Self::Producer),
            ("consumer", Self::Consumer),
        ]
        .into_iter()
        .find_map(|(name, kind)| name.eq_ignore_ascii_case(text).then_some(kind))
    }
}

/// OTLP `Status` of a span.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SpanStatus<'a> {
    /// Not set (the default): the span is not known to have failed.
    #[default]
    Unset,
    /// Known to have succeeded.
    Ok,
    /// Failed, with a description.
    Error(&'a str),
}
