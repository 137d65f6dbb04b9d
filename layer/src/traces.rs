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
//! [`OtlpSpanLayer`] turns `tracing` spans into such requests, one per
//! closed span, into an [`OtlpBytesSender`] (a channel whose consumer posts
//! them to `/v1/traces`). Batching in the exporter's per-thread buffers, the
//! export to `/v1/traces`, sampling and the ids on log records build on it.
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

use std::{
    cell::{Cell, RefCell},
    fmt,
    sync::{
        Arc, Weak,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use tracing_core::{Subscriber, span};
use tracing_subscriber::{
    layer::Context,
    registry::{LookupSpan, SpanRef},
};

use crate::{
    channel::OtlpBytesSender,
    clock::now_unix_nanos,
    encoder::{
        EncoderLimits, EncoderSettings, OtlpResource, StatefulOtlpEncoder, encode_span_event, pre_encode_attribute,
    },
    metrics::DropReason,
    node::{NodeLogs, Output},
    pipeline::{LayerGuard, in_pipeline_scope, otel_suppressed, zone_thread_logger},
    spans::Recorded,
    view::{AnyValue, RecordVisitor, TraceContext},
};

pub use crate::span_view::{SpanKind, SpanStatus, SpanView};

// === The span layer ===

/// A `tracing_subscriber` layer that turns each span, when it closes, into
/// one OTLP `Span`, encoded once into an `ExportTraceServiceRequest` and
/// handed to a sender (one request per span; `try_send`, never waiting).
///
/// * Ids: a root span starts a trace (random 16-byte trace id); a child
///   takes its parent's trace id and the parent's span id as its parent;
///   every span gets a random 8-byte span id.
/// * The span's name is the `tracing` span's name, its instrumentation
///   scope the span's target; its fields, recorded once when the span is
///   made and when `Span::record` adds to them, are its attributes (cut and
///   counted as a record's values are). As `tracing-opentelemetry` reads
///   them, and not as attributes: `otel.name` renames the span, `otel.kind`
///   (`server`, `client`, `producer`, `consumer`, `internal`) sets its kind,
///   `otel.status_code` (`ok`, `error`) with `otel.status_description` (or
///   `otel.status_message`) its status; without one, an ERROR event inside
///   the span makes its status an error, and with span events an event's
///   `error` field too, its text the description (as `tracing-opentelemetry`
///   does by default).
/// * Start and end: when the span is made and when it closes.
/// * Spans made where the telemetry pipeline runs are not traced (counted
///   in [`SpanMetrics::in_pipeline`]): inside a
///   [`PipelineScope`](crate::pipeline::PipelineScope), on a zone thread
///   ([`enter_zone_thread`](crate::pipeline::enter_zone_thread): an
///   exporter's threads), in the scope of a node of the zone (an Internal
///   Telemetry Receiver and what runs downstream of it), in an
///   OpenTelemetry telemetry-suppressed context.
///   The spans an exporter's HTTP or gRPC stack makes while it sends spans
///   never become spans to send.
/// * Counted ([`SpanMetrics`]): spans started, delivered, dropped by reason
///   (the channel full or closed, a span larger than the record limit), and
///   still open.
///
/// # Examples
///
/// ```
/// use selftrace::{OtlpBytesChannel, traces::OtlpSpanLayer};
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let channel = OtlpBytesChannel::new(64);
/// let layer = OtlpSpanLayer::builder(channel.sender()).with_service_name("my-engine").build();
/// let metrics = layer.clone();
/// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
///     let request = tracing::info_span!("request", otel.kind = "server", route = "/v1/logs");
///     request.in_scope(|| tracing::info_span!("decode", bytes = 512_i64).in_scope(|| {}));
/// });
/// // Two spans, each an ExportTraceServiceRequest: POST them to /v1/traces.
/// assert_eq!(channel.receiver().len(), 2);
/// assert_eq!(metrics.metrics().delivered, 2);
/// ```
#[derive(Clone)]
pub struct OtlpSpanLayer {
    shared: Arc<SpanShared>,
}

struct SpanShared {
    output: SpanOutput,
    limits: EncoderLimits,
    resource: OtlpResource,
    sampler: Sampler,
    span_events: bool,
    started: AtomicU64,
    unsampled: AtomicU64,
    in_pipeline: AtomicU64,
    delivered: AtomicU64,
    dropped_channel_full: AtomicU64,
    dropped_channel_closed: AtomicU64,
    dropped_too_large: AtomicU64,
    dropped_shut_down: AtomicU64,
    truncated_values: AtomicU64,
}

/// Where closed spans go.
#[derive(Debug)]
enum SpanOutput {
    /// One request per span.
    Channel(OtlpBytesSender),
    /// This thread's buffer of node logs that hold nothing but spans (an
    /// exporter of traces flushes them).
    Buffered(NodeLogs),
}

impl fmt::Debug for OtlpSpanLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpSpanLayer").field("metrics", &self.metrics()).finish_non_exhaustive()
    }
}

/// What an [`OtlpSpanLayer`] did so far: `started == delivered + dropped +
/// open`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpanMetrics {
    /// Sampled spans made.
    pub started: u64,
    /// Spans made and not sampled (not recorded, not encoded).
    pub unsampled: u64,
    /// Spans made where the telemetry pipeline runs (a pipeline scope, a
    /// zone thread, an OpenTelemetry telemetry-suppressed context): never
    /// traced, so the pipeline cannot trace itself.
    pub in_pipeline: u64,
    /// Spans encoded and handed to the sender.
    pub delivered: u64,
    /// Spans the sender refused: its channel was full.
    pub dropped_channel_full: u64,
    /// Spans the sender refused: its channel was closed.
    pub dropped_channel_closed: u64,
    /// Spans larger than the record limit even with every value cut.
    pub dropped_too_large: u64,
    /// Spans closed after the exporter whose buffers they go to shut down.
    pub dropped_shut_down: u64,
    /// Spans started and not closed yet.
    pub open: u64,
    /// Values cut to the value limit.
    pub truncated_values: u64,
}

impl SpanMetrics {
    /// Spans dropped, every reason together.
    pub fn dropped(&self) -> u64 {
        self.dropped_channel_full + self.dropped_channel_closed + self.dropped_too_large + self.dropped_shut_down
    }
}

/// Builds an [`OtlpSpanLayer`] (an example is at [`OtlpSpanLayer`]).
#[derive(Debug)]
pub struct OtlpSpanLayerBuilder {
    output: SpanOutput,
    settings: EncoderSettings,
    sampler: Sampler,
    span_events: bool,
}

impl OtlpSpanLayerBuilder {
    crate::__encoder_settings_setters!(settings);

    /// Samples this share of traces (default 1: every one), parent-based as
    /// the OpenTelemetry SDK's default sampler: a root span is sampled when
    /// its trace id falls under the ratio (the SDK's `TraceIdRatioBased`),
    /// a child is sampled when its parent is. An unsampled span costs its
    /// ids only (no field is recorded, nothing is encoded); log records
    /// inside it carry its ids with the sampled flag off. A ratio outside
    /// `0..=1` is clamped into it; NaN samples nothing.
    pub fn with_sample_ratio(mut self, ratio: f64) -> Self {
        self.sampler = Sampler::ratio(ratio);
        self
    }

    /// Whether `tracing` events inside a sampled span become its span events
    /// (default: no; the events go to the logs layers as records). As
    /// `tracing-opentelemetry` writes them: the message is the event's name,
    /// its attributes are `level`, `target` and the other fields. At most
    /// 128 per span (the SDK's default limit), the rest counted in
    /// `dropped_events_count`.
    pub fn with_span_events(mut self, enabled: bool) -> Self {
        self.span_events = enabled;
        self
    }

    /// The layer.
    pub fn build(self) -> OtlpSpanLayer {
        // Also what tells log records to look for span ids.
        crate::spans::set_span_layer_fields(recorded);
        // Buffered: as the node logs encode.
        let (limits, resource) = match &self.output {
            SpanOutput::Buffered(node_logs) => (node_logs.limits(), node_logs.resource().clone()),
            SpanOutput::Channel(_) => (self.settings.limits(), self.settings.resource()),
        };
        OtlpSpanLayer {
            shared: Arc::new(SpanShared {
                output: self.output,
                limits,
                resource,
                sampler: self.sampler,
                span_events: self.span_events,
                started: AtomicU64::new(0),
                unsampled: AtomicU64::new(0),
                in_pipeline: AtomicU64::new(0),
                delivered: AtomicU64::new(0),
                dropped_channel_full: AtomicU64::new(0),
                dropped_channel_closed: AtomicU64::new(0),
                dropped_too_large: AtomicU64::new(0),
                dropped_shut_down: AtomicU64::new(0),
                truncated_values: AtomicU64::new(0),
            }),
        }
    }
}

impl OtlpSpanLayer {
    /// A builder whose spans go to `sender`.
    pub fn builder(sender: OtlpBytesSender) -> OtlpSpanLayerBuilder {
        Self::builder_to(SpanOutput::Channel(sender))
    }

    /// A builder whose spans are batched in the per-thread buffers of
    /// `node_logs`, built `for_spans` (others refuse spans, counted): an exporter of
    /// traces flushes them (`OtlpExporter::span_layer` in
    /// `selftrace-bridge`), with the node logs' resource and limits (encoder
    /// settings given to the builder are not used). Plumbing for
    /// `selftrace-bridge` and `selftrace-itr`; not part of the semver
    /// surface.
    #[doc(hidden)]
    pub fn buffered(node_logs: NodeLogs) -> OtlpSpanLayerBuilder {
        Self::builder_to(SpanOutput::Buffered(node_logs))
    }

    fn builder_to(output: SpanOutput) -> OtlpSpanLayerBuilder {
        OtlpSpanLayerBuilder {
            output,
            settings: EncoderSettings::default(),
            sampler: Sampler::ratio(1.0),
            span_events: false,
        }
    }

    /// A snapshot of the counts.
    pub fn metrics(&self) -> SpanMetrics {
        let s = &self.shared;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        // Read in the order they are counted (a span is started before it
        // is delivered or dropped), so `open` is never short.
        let mut m = SpanMetrics {
            delivered: get(&s.delivered),
            dropped_channel_full: get(&s.dropped_channel_full),
            dropped_channel_closed: get(&s.dropped_channel_closed),
            dropped_too_large: get(&s.dropped_too_large),
            dropped_shut_down: get(&s.dropped_shut_down),
            truncated_values: get(&s.truncated_values),
            ..SpanMetrics::default()
        };
        m.started = get(&s.started);
        m.unsampled = get(&s.unsampled);
        m.in_pipeline = get(&s.in_pipeline);
        m.open = m.started.saturating_sub(m.delivered + m.dropped());
        m
    }
}

/// Whether an [`OtlpSpanLayer`] was ever made (else no span has ids): until
/// one is, log records do not look for span ids (one load per event).
#[inline]
pub(crate) fn any_span_layer() -> bool {
    crate::spans::span_layer_made()
}

/// The fields a span layer records for the span of `extensions` (see
/// `spans::span_fields`).
#[inline]
pub(crate) fn recorded<'e>(extensions: &'e tracing_subscriber::registry::Extensions<'_>) -> Option<&'e Recorded> {
    extensions.get::<OpenSpan>().filter(|open| open.records).map(|open| &open.fields)
}

/// Whether a span layer records the fields of the span of `extensions`.
pub(crate) fn records_fields(extensions: &mut tracing_subscriber::registry::ExtensionsMut<'_>) -> bool {
    extensions.get_mut::<OpenSpan>().is_some_and(|open| open.records)
}

/// The trace context of `span`, traced by an [`OtlpSpanLayer`]: what a log
/// record inside it carries.
pub(crate) fn trace_context<S>(span: &SpanRef<'_, S>) -> Option<TraceContext>
where
    S: for<'a> LookupSpan<'a>,
{
    span.extensions().get::<OpenSpan>().map(|open| TraceContext {
        trace_id: open.trace_id,
        span_id: open.span_id,
        flags: u8::from(open.sampled),
    })
}

/// Why [`set_remote_parent`] set no parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RemoteParentError {
    /// The header is not a W3C `traceparent`
    /// (`<version>-<32 hex>-<16 hex>-<2 hex>`, ids not all zero).
    Malformed,
    /// The span is not traced: disabled, no [`OtlpSpanLayer`] in its
    /// subscriber (or not on a `tracing_subscriber` registry), or made on a
    /// pipeline thread.
    NotTraced,
}

impl fmt::Display for RemoteParentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => "not a W3C traceparent (version-traceid-spanid-flags in lowercase hex)",
            Self::NotTraced => "the span is not traced by an OtlpSpanLayer",
        })
    }
}

impl std::error::Error for RemoteParentError {}

/// Reads a W3C `traceparent` header: trace id, parent span id, trace flags.
/// Version `00` has exactly four parts; a later version may add parts after
/// them (the spec's rule); `ff` is invalid.
fn parse_traceparent(header: &str) -> Option<([u8; 16], [u8; 8], u8)> {
    fn hex<const N: usize>(text: &str) -> Option<[u8; N]> {
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        let text = text.as_bytes();
        if text.len() != 2 * N {
            return None;
        }
        let mut out = [0; N];
        for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
            *byte = digit(pair[0])? << 4 | digit(pair[1])?;
        }
        Some(out)
    }
    let mut parts = header.trim().split('-');
    let [version] = hex::<1>(parts.next()?)?;
    let trace_id = hex::<16>(parts.next()?)?;
    let span_id = hex::<8>(parts.next()?)?;
    let [flags] = hex::<1>(parts.next()?)?;
    let valid = version != 0xff && (version != 0 || parts.next().is_none()) && trace_id != [0; 16] && span_id != [0; 8];
    valid.then_some((trace_id, span_id, flags))
}

/// Makes `span` the child of the remote span a W3C `traceparent` header
/// names (the incoming request's): it takes that trace id, that span as its
/// parent (flagged remote), and its sampling decision (parent-based, as the
/// SDK's default sampler: sampled when the header says so). Call it on a
/// root span before any child is made; children made after it follow it.
/// A root span keeps its fields even when the ratio did not sample it, so
/// a remote parent can; a child span promoted this way has only the fields
/// recorded after.
///
/// Works on a subscriber built on `tracing_subscriber`'s registry with an
/// [`OtlpSpanLayer`].
///
/// # Errors
///
/// [`RemoteParentError::Malformed`] for a header that is not a
/// `traceparent`, [`RemoteParentError::NotTraced`] for a span no span layer
/// traces. The span is unchanged.
///
/// # Examples
///
/// ```
/// use selftrace::{OtlpBytesChannel, traces::{self, OtlpSpanLayer}};
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let channel = OtlpBytesChannel::new(8);
/// let layer = OtlpSpanLayer::builder(channel.sender()).build();
/// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
///     let request = tracing::info_span!("request", otel.kind = "server");
///     traces::set_remote_parent(&request, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")?;
///     let child = request.in_scope(|| traces::traceparent(&tracing::Span::current()));
///     assert!(child.unwrap().starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
///     Ok::<(), traces::RemoteParentError>(())
/// })?;
/// # Ok::<(), traces::RemoteParentError>(())
/// ```
pub fn set_remote_parent(span: &tracing::Span, traceparent: &str) -> Result<(), RemoteParentError> {
    let (trace_id, parent, flags) = parse_traceparent(traceparent).ok_or(RemoteParentError::Malformed)?;
    let sampled = flags & 1 == 1;
    span.with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
        let data = registry.span(id)?;
        let mut extensions = data.extensions_mut();
        let open = extensions.get_mut::<OpenSpan>()?;
        if open.sampled != sampled
            && let Some(layer) = dispatch.downcast_ref::<OtlpSpanLayer>()
        {
            // Counted where it now belongs (it is open: not closed yet).
            let shared = &layer.shared;
            let (from, to) =
                if sampled { (&shared.unsampled, &shared.started) } else { (&shared.started, &shared.unsampled) };
            from.fetch_sub(1, Ordering::Relaxed);
            to.fetch_add(1, Ordering::Relaxed);
        }
        open.trace_id = trace_id;
        open.parent = Some(parent);
        open.remote_parent = true;
        open.sampled = sampled;
        Some(())
    })
    .flatten()
    .ok_or(RemoteParentError::NotTraced)
}

/// The W3C `traceparent` of `span` (`00-<trace id>-<span id>-<flags>`), to
/// send with an outgoing request; `None` when no [`OtlpSpanLayer`] traces
/// it (see [`set_remote_parent`]).
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    use fmt::Write as _;
    span.with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
        let data = registry.span(id)?;
        let extensions = data.extensions();
        let open = extensions.get::<OpenSpan>()?;
        let mut header = String::with_capacity(55);
        header.push_str("00-");
        for byte in open.trace_id {
            let _ = write!(header, "{byte:02x}");
        }
        header.push('-');
        for byte in open.span_id {
            let _ = write!(header, "{byte:02x}");
        }
        let _ = write!(header, "-{:02x}", u8::from(open.sampled));
        Some(header)
    })
    .flatten()
}

/// The parent-based ratio sampler: a root span is sampled when the low 63
/// bits of its trace id's last 8 bytes are under `ratio × 2^63`.
#[derive(Clone, Copy, Debug)]
struct Sampler {
    threshold: u64,
    all: bool,
}

impl Sampler {
    fn ratio(ratio: f64) -> Self {
        let ratio = if ratio.is_nan() { 0.0 } else { ratio.clamp(0.0, 1.0) };
        Self { threshold: (ratio * (1_u64 << 63) as f64) as u64, all: ratio >= 1.0 }
    }

    fn samples(&self, trace_id: &[u8; 16]) -> bool {
        let mut low = [0; 8];
        low.copy_from_slice(&trace_id[8..]);
        self.all || (u64::from_be_bytes(low) >> 1) < self.threshold
    }
}

thread_local! {
    /// This thread's encoder for each live span layer (usually one): a span
    /// is encoded where it closes, with no lock shared between threads.
    static SPAN_ENCODERS: RefCell<Vec<(Weak<SpanShared>, StatefulOtlpEncoder)>> = const { RefCell::new(Vec::new()) };
}

impl SpanShared {
    /// Runs `f` on this thread's encoder of this layer (made on first use),
    /// as the logs layer keeps its encoders; on a fresh one when the
    /// thread's list is busy or gone (a span closed from inside an
    /// encoding, or at thread exit).
    fn with_encoder<R>(self: &Arc<Self>, mut f: impl FnMut(&mut StatefulOtlpEncoder) -> R) -> R {
        let fresh = || StatefulOtlpEncoder::with_limits(self.limits, self.resource.clone());
        let me = Arc::as_ptr(self);
        let ran = SPAN_ENCODERS
            .try_with(|cell| {
                let mut list = cell.try_borrow_mut().ok()?;
                let index = match list.iter().position(|(owner, _)| std::ptr::eq(owner.as_ptr(), me)) {
                    Some(index) => index,
                    None => {
                        // The first span of this layer on this thread: drop
                        // the encoders of layers that are gone, make one.
                        list.retain(|(owner, _)| owner.strong_count() > 0);
                        list.push((Arc::downgrade(self), fresh()));
                        list.len() - 1
                    }
                };
                list.get_mut(index).map(|(_, encoder)| f(encoder))
            })
            .ok()
            .flatten();
        match ran {
            Some(result) => result,
            None => f(&mut fresh()),
        }
    }
}

/// What a traced span keeps in its extensions until it closes.
#[derive(Debug)]
struct OpenSpan {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent: Option<[u8; 8]>,
    /// Recorded and exported; an unsampled span keeps only its ids (its
    /// children follow it, records inside it carry them, flag 0).
    sampled: bool,
    /// Its fields are recorded here (sampled, or a root), for the logs
    /// layers' span fields too.
    records: bool,
    /// Whether its parent is a remote span ([`set_remote_parent`]).
    remote_parent: bool,
    start: u64,
    fields: Recorded,
    /// The spans it follows from (`Span::follows_from`), at most
    /// [`MAX_SPAN_LINKS`]; the rest counted.
    links: Vec<([u8; 16], [u8; 8], u32)>,
    dropped_links: u32,
    /// An ERROR event happened inside it, or (with span events) an event
    /// with an `error` field, whose text this is: its status is an error
    /// unless `otel.status_code` says otherwise.
    failed: Option<Box<str>>,
    /// Its events, encoded (with `with_span_events`), at most
    /// [`MAX_SPAN_EVENTS`]; the rest counted.
    events: Vec<Box<[u8]>>,
    dropped_events: u32,
}

/// The most events a span keeps (the OpenTelemetry SDK's default span
/// limit).
const MAX_SPAN_EVENTS: usize = 128;

/// The most links a span keeps (the SDK's default span limit).
const MAX_SPAN_LINKS: usize = 128;

/// `Span.flags` bit 8: bit 9 says whether the parent is remote.
const HAS_IS_REMOTE: u32 = 0x100;
/// `Span.flags` bit 9: the parent is remote.
const IS_REMOTE: u32 = 0x200;

impl OpenSpan {
    /// Its OTLP flags: sampled, and whether its parent is remote.
    fn flags(&self) -> u32 {
        u32::from(self.sampled) | HAS_IS_REMOTE | if self.remote_parent { IS_REMOTE } else { 0 }
    }
}

/// A closed span, as the encoder reads it.
struct ClosedSpan<'a> {
    open: &'a OpenSpan,
    name: &'static str,
    end: u64,
}

/// Fields that steer the span rather than describe it.
fn is_special(name: &str) -> bool {
    name.starts_with(crate::spans::STEERING)
}

impl SpanView for ClosedSpan<'_> {
    fn trace_id(&self) -> [u8; 16] {
        self.open.trace_id
    }
    fn span_id(&self) -> [u8; 8] {
        self.open.span_id
    }
    fn parent_span_id(&self) -> Option<[u8; 8]> {
        self.open.parent
    }
    fn flags(&self) -> u32 {
        self.open.flags()
    }
    fn visit_links(&self, f: &mut dyn FnMut([u8; 16], [u8; 8], u32)) {
        for &(trace_id, span_id, flags) in &self.open.links {
            f(trace_id, span_id, flags);
        }
    }
    fn dropped_links_count(&self) -> u32 {
        self.open.dropped_links
    }
    fn name(&self) -> &str {
        self.open.fields.str_field("otel.name").unwrap_or(self.name)
    }
    fn kind(&self) -> SpanKind {
        // A string field (a `Debug` one was formatted into one when it was
        // recorded): read where it is, nothing copied.
        self.open.fields.str_field("otel.kind").and_then(SpanKind::parse).unwrap_or_default()
    }
    fn start_time_unix_nano(&self) -> u64 {
        self.open.start
    }
    fn end_time_unix_nano(&self) -> u64 {
        self.end
    }
    fn status(&self) -> SpanStatus<'_> {
        let fields = &self.open.fields;
        match fields.str_field("otel.status_code") {
            Some(code) if code.eq_ignore_ascii_case("ok") => SpanStatus::Ok,
            // `tracing-opentelemetry`'s name, and the proto field's.
            Some(code) if code.eq_ignore_ascii_case("error") => SpanStatus::Error(
                (fields.str_field("otel.status_description"))
                    .or_else(|| fields.str_field("otel.status_message"))
                    .unwrap_or(""),
            ),
            _ => match &self.open.failed {
                Some(message) => SpanStatus::Error(message),
                None => SpanStatus::Unset,
            },
        }
    }
    fn visit_events(&self, f: &mut dyn FnMut(&[u8])) {
        for event in &self.open.events {
            f(event);
        }
    }
    fn dropped_events_count(&self) -> u32 {
        self.open.dropped_events
    }
    fn visit(&self, visitor: &mut dyn RecordVisitor) {
        let mut cut = 0_u32;
        let steering = self.open.fields.has_steering();
        let values = visitor.reads_pre_encoded_values();
        self.open.fields.for_each(values, |name, value, encoded, was_cut| {
            if !steering || !is_special(name) {
                visitor.visit_pre_encoded_attribute(name, value, encoded);
                cut += u32::from(was_cut);
            }
        });
        if cut > 0 {
            visitor.visit_dropped_attributes(cut);
        }
    }
}

/// Notes once that a subscriber has two span layers (the second traces
/// nothing).
#[cold]
fn second_layer_noted() {
    static NOTED: AtomicBool = AtomicBool::new(false);
    if !NOTED.swap(true, Ordering::Relaxed) {
        crate::raw::write_raw_note(
            "traces",
            format_args!("a second OtlpSpanLayer in one subscriber: every span goes to the first one only"),
        );
    }
}

thread_local! {
    /// This thread's id generator: splitmix64 seeded from the clock, the
    /// thread's own address and a process-wide counter.
    static IDS: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let local = 0_u8;
    now_unix_nanos()
        ^ ((&local as *const u8 as u64).rotate_left(32))
        ^ NEXT.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
}

/// A random non-zero 64-bit id (splitmix64).
fn random_u64() -> u64 {
    IDS.try_with(|state| {
        let mut z = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        state.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
    .unwrap_or_else(|_| seed())
    .max(1)
}

impl<S> tracing_subscriber::Layer<S> for OtlpSpanLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        // The pipeline's own threads (an exporter's, the receiver's and
        // what runs downstream of it) and the SDK's exports: not traced.
        if in_pipeline_scope()
            || zone_thread_logger().is_some()
            || crate::node::with_current(|current| current.node().is_in_zone()).unwrap_or(false)
            || otel_suppressed()
        {
            self.shared.in_pipeline.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        // The registry's parent: the explicit one, else the current span
        // (none for a root).
        let parent = span.parent();
        let inherited =
            parent.and_then(|p| p.extensions().get::<OpenSpan>().map(|o| (o.trace_id, o.span_id, o.sampled)));
        // Parent-based: a child follows its parent; a root is sampled by its
        // trace id against the ratio (the SDK's TraceIdRatioBased).
        let (trace_id, parent, sampled) = match inherited {
            Some((trace_id, span_id, sampled)) => (trace_id, Some(span_id), sampled),
            None => {
                let mut trace_id = [0; 16];
                trace_id[..8].copy_from_slice(&random_u64().to_be_bytes());
                trace_id[8..].copy_from_slice(&random_u64().to_be_bytes());
                (trace_id, None, self.shared.sampler.samples(&trace_id))
            }
        };
        let counter = if sampled { &self.shared.started } else { &self.shared.unsampled };
        counter.fetch_add(1, Ordering::Relaxed);
        // A root's fields are recorded even unsampled: a remote parent may
        // sample it (`set_remote_parent`). Recorded once: a logs layer with
        // span fields that came first hands over its recording (and reads
        // this one from then on).
        let records = sampled || parent.is_none();
        let taken = if records && crate::spans::any_span_fields_layer() {
            span.extensions_mut().remove::<Recorded>()
        } else {
            None
        };
        let fields = match taken {
            Some(recorded) => recorded,
            None if records => {
                let mut recorded = Recorded::new(attrs, self.shared.limits.max_value_bytes());
                recorded.mark_span_layers();
                recorded
            }
            None => Recorded::default(),
        };
        let open = OpenSpan {
            records,
            trace_id,
            span_id: random_u64().to_be_bytes(),
            parent,
            sampled,
            remote_parent: false,
            start: now_unix_nanos(),
            fields,
            links: Vec::new(),
            dropped_links: 0,
            failed: None,
            events: Vec::new(),
            dropped_events: 0,
        };
        let mut extensions = span.extensions_mut();
        if extensions.get_mut::<OpenSpan>().is_some() {
            // Another span layer of this subscriber traces it: its spans go
            // there (the ids a span carries are one).
            self.shared.started.fetch_sub(u64::from(sampled), Ordering::Relaxed);
            self.shared.unsampled.fetch_sub(u64::from(!sampled), Ordering::Relaxed);
            return second_layer_noted();
        }
        extensions.insert(open);
    }

    fn on_event(&self, event: &tracing_core::Event<'_>, ctx: Context<'_, S>) {
        // An ERROR event fails its span (as `tracing-opentelemetry` does by
        // default); any other event matters only with span events on.
        let error = *event.metadata().level() == tracing_core::Level::ERROR;
        if !(self.shared.span_events || error) || in_pipeline_scope() {
            return;
        }
        let Some(span) = ctx.event_span(event) else { return };
        let mut extensions = span.extensions_mut();
        let Some(open) = extensions.get_mut::<OpenSpan>() else { return };
        if !open.sampled {
            return;
        }
        if error && open.failed.is_none() {
            open.failed = Some("".into());
        }
        if !self.shared.span_events {
            return;
        }
        if open.events.len() == MAX_SPAN_EVENTS {
            open.dropped_events = open.dropped_events.saturating_add(1);
            return;
        }
        // As `tracing-opentelemetry` writes them: the message is the name,
        // `level` and `target` come first, then the other fields.
        let max_value = self.shared.limits.max_value_bytes();
        let fields = Recorded::from_event(event, max_value);
        let meta = event.metadata();
        let (level, _) = pre_encode_attribute("level", AnyValue::Str(meta.level().as_str()), max_value);
        let (target, _) = pre_encode_attribute("target", AnyValue::Str(meta.target()), max_value);
        let message = fields.str_field("message");
        // As `tracing-opentelemetry`: an `error` field fails the span, its
        // text the description; without a message the event is an
        // `exception` whose `exception.message` it is.
        let error = fields.str_field("error");
        let exception = match (error, message) {
            (Some(error), None) => Some(pre_encode_attribute("exception.message", AnyValue::Str(error), max_value).0),
            _ => None,
        };
        let mut attributes: Vec<&[u8]> = vec![&level, &target];
        let mut cut = 0_u32;
        fields.for_each(false, |name, _, encoded, was_cut| {
            if name == "message" || (name == "error" && exception.is_some()) {
                return;
            }
            attributes.push(encoded.as_bytes());
            cut += u32::from(was_cut);
        });
        attributes.extend(exception.as_deref());
        let name = match (message, &exception) {
            (Some(message), _) => message,
            (None, Some(_)) => "exception",
            (None, None) => meta.name(),
        };
        if let Some(error) = error {
            open.failed = Some(error.into());
        }
        open.events.push(encode_span_event(now_unix_nanos(), name, &attributes, cut, max_value).into_boxed_slice());
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let max_value = self.shared.limits.max_value_bytes();
        if let Some(open) = span.extensions_mut().get_mut::<OpenSpan>()
            && open.records
        {
            open.fields.record(values, max_value);
        }
    }

    fn on_follows_from(&self, id: &span::Id, follows: &span::Id, ctx: Context<'_, S>) {
        let (Some(span), Some(follows)) = (ctx.span(id), ctx.span(follows)) else { return };
        // As `tracing-opentelemetry`: a link to the span it follows from.
        let Some(link) = follows.extensions().get::<OpenSpan>().map(|o| (o.trace_id, o.span_id, o.flags())) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        let Some(open) = extensions.get_mut::<OpenSpan>() else { return };
        if open.links.len() < MAX_SPAN_LINKS {
            open.links.push(link);
        } else {
            open.dropped_links = open.dropped_links.saturating_add(1);
        }
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(open) = span.extensions_mut().remove::<OpenSpan>() else { return };
        if !open.sampled {
            return;
        }
        let shared = &self.shared;
        let closed = ClosedSpan { open: &open, name: span.metadata().name(), end: now_unix_nanos() };
        let scope = span.metadata().target();
        let taken = match &shared.output {
            // Nothing up this thread's stack holds its buffer (a span closed
            // from inside selftrace, or on a pipeline thread, goes alone).
            SpanOutput::Buffered(node_logs) => match LayerGuard::enter() {
                Some(_guard) => node_logs.log_span(scope, &closed),
                None => match node_logs.output() {
                    Output::Channel(sender) => shared.send_alone(sender, scope, &closed),
                    _ => Err(DropReason::Discarded),
                },
            },
            SpanOutput::Channel(sender) => shared.send_alone(sender, scope, &closed),
        };
        let counter = match taken {
            Ok(cut) => {
                if cut > 0 {
                    shared.truncated_values.fetch_add(u64::from(cut), Ordering::Relaxed);
                }
                &shared.delivered
            }
            Err(DropReason::RecordTooLarge) => &shared.dropped_too_large,
            Err(DropReason::ChannelFull) => &shared.dropped_channel_full,
            Err(DropReason::ShutDown) => &shared.dropped_shut_down,
            // Closed, or node logs that are not a channel's.
            Err(_) => &shared.dropped_channel_closed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl SpanShared {
    /// Encodes `span` as a request of its own on this thread's encoder and
    /// hands it to `sender`; the values cut, or why it was refused.
    fn send_alone(
        self: &Arc<Self>,
        sender: &OtlpBytesSender,
        scope: &str,
        span: &ClosedSpan<'_>,
    ) -> Result<u32, DropReason> {
        let (encoded, request) = self.with_encoder(|encoder| {
            let encoded = encoder.encode_span(scope, span);
            (encoded, encoder.flush())
        });
        let cut = encoded.map_err(|_| DropReason::RecordTooLarge)?;
        sender.try_send(request).map_err(|refused| refused.drop_reason())?;
        Ok(cut)
    }
}
