//! Spans as OTLP traces, encoded once (feature `traces`).
//!
//! A span is written straight into the bytes of an
//! `ExportTraceServiceRequest` by the same bounded encoder as log records
//! ([`StatefulOtlpEncoder::encode_span`](crate::encoder::StatefulOtlpEncoder::encode_span)): the envelopes of logs and traces
//! share their field numbers (`resource_spans = 1` holds the resource and
//! `scope_spans = 2`, which holds the scope and `spans = 2`), so a request of
//! spans is batched, bounded and flushed exactly as one of records. What a
//! span holds is read through [`SpanView`], as a record is through
//! [`LogRecordView`](crate::view::LogRecordView).
//!
//! The limits are the encoder's: a span never exceeds the record limit; a
//! value longer than the value limit is cut with the truncation marker and
//! counted in the span's `dropped_attributes_count`.
//!
//! This module holds the encoding; the `tracing` span layer that feeds it
//! and the export to `/v1/traces` build on it.
//!
//! # Examples
//!
//! ```
//! use selftrace::{
//!     encoder::StatefulOtlpEncoder,
//!     traces::{SpanKind, SpanStatus, SpanView},
//!     view::{AnyValue, RecordVisitor},
//! };
//!
//! struct Request;
//! impl SpanView for Request {
//!     fn trace_id(&self) -> [u8; 16] { [7; 16] }
//!     fn span_id(&self) -> [u8; 8] { [1; 8] }
//!     fn name(&self) -> &str { "GET /v1/logs" }
//!     fn kind(&self) -> SpanKind { SpanKind::Server }
//!     fn start_time_unix_nano(&self) -> u64 { 1_700_000_000_000_000_000 }
//!     fn end_time_unix_nano(&self) -> u64 { 1_700_000_000_002_000_000 }
//!     fn status(&self) -> SpanStatus<'_> { SpanStatus::Ok }
//!     fn visit(&self, v: &mut dyn RecordVisitor) {
//!         v.visit_attribute("http.response.status_code", AnyValue::Int(200));
//!     }
//! }
//!
//! let mut encoder = StatefulOtlpEncoder::new();
//! encoder.encode_span("receiver.otlp.0", &Request)?;
//! let request = encoder.flush(); // an ExportTraceServiceRequest: POST it to /v1/traces
//! assert!(!request.is_empty());
//! # Ok::<(), selftrace::encoder::EncodeError>(())
//! ```

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
    /// W3C trace flags (bit 0: sampled); 1 by default.
    fn flags(&self) -> u8 {
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
