//! [`TracingLogRecord`]: a [`LogRecordView`] over a live `tracing::Event`.

use std::{error::Error, fmt, num::NonZeroUsize};

use tracing_core::{
    Event, Metadata,
    field::{Field, Visit},
};
use tracing_log::NormalizeEvent;

use crate::{
    spans::EventSpans,
    view::{AnyValue, CodeLocation, LogRecordView, RecordVisitor, Severity, TraceContext},
};

/// A zero-copy [`LogRecordView`] over a `tracing::Event`.
///
/// Nothing is copied out of the event: the fields are visited again each time
/// the view is read, and formatted values are written straight into the
/// reader's destination. The mapping is in the [crate docs](crate#mapping).
///
/// # Examples
///
/// ```
/// use selftrace::{view::LogRecordView, record::TracingLogRecord};
/// use tracing_subscriber::{Layer, layer::{Context, SubscriberExt}};
///
/// struct Peek;
/// impl<S: tracing::Subscriber> Layer<S> for Peek {
///     fn on_event(&self, event: &tracing::Event<'_>, _cx: Context<'_, S>) {
///         let record = TracingLogRecord::new(event, 42);
///         assert_eq!(record.event_name(), Some("user.login"));
///         assert_eq!(record.severity_text(), Some("INFO"));
///         assert_eq!(record.target(), "auth");
///     }
/// }
///
/// let subscriber = tracing_subscriber::registry().with(Peek);
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info!(name: "user.login", target: "auth", user = "ada", "logged in");
/// });
/// ```
#[derive(Debug)]
pub struct TracingLogRecord<'a> {
    event: &'a Event<'a>,
    /// The metadata of a `log` record re-emitted by `tracing-log`.
    log_metadata: Option<Metadata<'a>>,
    time_unix_nano: u64,
    trace_context: Option<TraceContext>,
    spans: Option<EventSpans<'a>>,
    code_location: bool,
}

impl<'a> TracingLogRecord<'a> {
    /// A view over `event`, observed at `time_unix_nano` (used for both the
    /// time and the observed time).
    ///
    /// Cost: no allocation; one comparison of the target with `"log"`, and
    /// for `log` records a comparison of callsites to recover the original
    /// target and level.
    pub fn new(event: &'a Event<'a>, time_unix_nano: u64) -> Self {
        Self::with_log_metadata(event, log_metadata(event), time_unix_nano)
    }

    /// As [`new`](Self::new), with the `log` metadata already recovered
    /// ([`log_metadata`]).
    pub(crate) fn with_log_metadata(
        event: &'a Event<'a>,
        log_metadata: Option<Metadata<'a>>,
        time_unix_nano: u64,
    ) -> Self {
        Self { event, log_metadata, time_unix_nano, trace_context: None, spans: None, code_location: false }
    }

    /// Adds the fields of the spans the event is inside.
    #[inline]
    pub(crate) fn with_spans(mut self, spans: Option<EventSpans<'a>>) -> Self {
        self.spans = spans;
        self
    }

    /// Writes the callsite's file, line and module as attributes
    /// ([`CodeLocation`]).
    pub fn with_code_location(mut self, enabled: bool) -> Self {
        self.code_location = enabled;
        self
    }

    /// Attaches the trace context the event was emitted in.
    pub fn with_trace_context(mut self, trace_context: Option<TraceContext>) -> Self {
        self.trace_context = trace_context;
        self
    }

    /// As [`with_trace_context`](Self::with_trace_context), in place (the
    /// record is not moved).
    #[inline]
    pub(crate) fn set_trace_context(&mut self, trace_context: Option<TraceContext>) {
        self.trace_context = trace_context;
    }

    /// The event's metadata, normalized for `log` records.
    pub fn metadata(&self) -> &Metadata<'a> {
        match &self.log_metadata {
            Some(meta) => meta,
            None => self.event.metadata(),
        }
    }

    /// The event's target (for `log` records, the `log` target): the
    /// instrumentation scope outside a node scope.
    pub fn target(&self) -> &str {
        self.metadata().target()
    }

    /// Sets the time (and observed time) to `time_unix_nano`.
    #[inline]
    pub(crate) fn stamp(&mut self, time_unix_nano: u64) {
        self.time_unix_nano = time_unix_nano;
    }

    /// Whether the event was re-emitted from the `log` crate.
    pub fn is_log(&self) -> bool {
        self.log_metadata.is_some()
    }

    /// What flood control tells repeated events by: the callsite, or for a
    /// `log` record (one `tracing` callsite per level serves every `log`
    /// call) a hash of its target, file, line and level.
    pub(crate) fn flood_site(&self) -> u64 {
        match self.callsite_id() {
            Some(id) => id.get() as u64,
            None => {
                let meta = self.metadata();
                let line = meta.line().unwrap_or(0).to_le_bytes();
                let parts: [&[u8]; 4] = [
                    meta.target().as_bytes(),
                    meta.file().unwrap_or("").as_bytes(),
                    &line,
                    meta.level().as_str().as_bytes(),
                ];
                crate::flood::Key::hashed(&parts, 0).site
            }
        }
    }
}

/// The metadata of a `log` record re-emitted by `tracing-log`, `None` for
/// any other event.
#[inline]
pub(crate) fn log_metadata<'a>(event: &'a Event<'a>) -> Option<Metadata<'a>> {
    // Only tracing-log's callsites have the target "log": the string check
    // spares every other event the callsite comparison.
    if event.metadata().target() == "log" { event.normalized_metadata() } else { None }
}

/// The explicit `name:` of an event, or `None` when the name is the
/// `"event file:line"` that `tracing` generates.
fn explicit_name<'m>(meta: &Metadata<'m>) -> Option<&'m str> {
    let name = meta.name();
    if let Some(rest) = name.strip_prefix("event ") {
        let generated = match (meta.file(), meta.line()) {
            (Some(file), Some(line)) => {
                rest.strip_prefix(file).and_then(|r| r.strip_prefix(':')).and_then(|r| r.parse::<u32>().ok())
                    == Some(line)
            }
            // Without a location, any "event …" name is taken as generated.
            _ => true,
        };
        if generated {
            return None;
        }
    }
    Some(name)
}

impl LogRecordView for TracingLogRecord<'_> {
    fn time_unix_nano(&self) -> Option<u64> {
        Some(self.time_unix_nano)
    }

    fn observed_time_unix_nano(&self) -> Option<u64> {
        Some(self.time_unix_nano)
    }

    fn severity(&self) -> Option<Severity> {
        Some(Severity::from_level(self.metadata().level()))
    }

    fn event_name(&self) -> Option<&str> {
        if self.is_log() {
            // `log` records have no names; tracing-log's is a placeholder.
            return None;
        }
        explicit_name(self.event.metadata())
    }

    fn trace_context(&self) -> Option<TraceContext> {
        self.trace_context
    }

    fn visit(&self, visitor: &mut dyn RecordVisitor) {
        if self.is_log() {
            self.event.record(&mut FieldVisitor::<_, true> { visitor: &mut *visitor });
        } else {
            self.event.record(&mut FieldVisitor::<_, false> { visitor: &mut *visitor });
        }
        if let Some(spans) = &self.spans {
            spans.visit(self.event, visitor);
        }
    }

    /// As `visit`, each field handed to the writer without a second dynamic
    /// call.
    #[inline]
    fn visit_encoder(&self, fields: &mut crate::out::FieldWriter<'_>) {
        // A `log` record (its `log.*` fields left out): through `visit`.
        if self.is_log() {
            return self.visit(fields);
        }
        self.event.record(&mut FieldVisitor::<_, false> { visitor: &mut *fields });
        if let Some(spans) = &self.spans {
            spans.visit(self.event, fields);
        }
    }

    /// The file, line and module of the callsite (for `log` records, of the
    /// `log` call), when asked for.
    fn code_location(&self) -> Option<CodeLocation<'_>> {
        if !self.code_location {
            return None;
        }
        let meta = self.metadata();
        Some(CodeLocation { file: meta.file(), line: meta.line(), module: meta.module_path() })
    }

    /// The callsite's metadata, whose level and name are static; `None`
    /// for `log` records, whose real metadata comes from their fields.
    fn callsite_id(&self) -> Option<NonZeroUsize> {
        if self.is_log() {
            return None;
        }
        NonZeroUsize::new(std::ptr::from_ref(self.event.metadata()).addr())
    }
}

// === impl FieldVisitor ===

/// Adapts `tracing`'s field visitor to [`RecordVisitor`] (the encoder's
/// own writer, or any visitor as `dyn`).
/// `SKIP_LOG_FIELDS` leaves out the `log.*` fields of a `log` record (a
/// constant: an event's fields are visited without the check).
pub(crate) struct FieldVisitor<'v, V: RecordVisitor + ?Sized, const SKIP_LOG_FIELDS: bool> {
    pub(crate) visitor: &'v mut V,
}

impl<V: RecordVisitor + ?Sized, const SKIP_LOG_FIELDS: bool> FieldVisitor<'_, V, SKIP_LOG_FIELDS> {
    #[inline(always)]
    fn emit(&mut self, field: &Field, value: AnyValue<'_>) {
        let name = field.name();
        if !(SKIP_LOG_FIELDS && name.starts_with("log.")) {
            visit_field(self.visitor, name, value);
        }
    }
}

/// Hands one field to `visitor`: the field named `message` is the body,
/// any other an attribute.
#[inline(always)]
pub(crate) fn visit_field<V: RecordVisitor + ?Sized>(visitor: &mut V, name: &str, value: AnyValue<'_>) {
    if name == "message" {
        visitor.visit_body(value);
    } else if let (AnyValue::Bool(enabled), crate::flood::OPT_OUT_FIELD) = (&value, name) {
        visitor.visit_rate_limit(*enabled);
    } else {
        visitor.visit_attribute(name, value);
    }
}

/// Writes an error through `Display`, so it becomes its message string.
struct ErrorAsString<'e>(&'e (dyn Error + 'static));

impl fmt::Debug for ErrorAsString<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.0, f)
    }
}

impl<V: RecordVisitor + ?Sized, const SKIP_LOG_FIELDS: bool> Visit for FieldVisitor<'_, V, SKIP_LOG_FIELDS> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.emit(field, AnyValue::Double(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.emit(field, AnyValue::Int(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match i64::try_from(value) {
            Ok(v) => self.emit(field, AnyValue::Int(v)),
            Err(_) => self.emit(field, AnyValue::Fmt(&value)),
        }
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        match i64::try_from(value) {
            Ok(v) => self.emit(field, AnyValue::Int(v)),
            Err(_) => self.emit(field, AnyValue::Fmt(&value)),
        }
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        match i64::try_from(value) {
            Ok(v) => self.emit(field, AnyValue::Int(v)),
            Err(_) => self.emit(field, AnyValue::Fmt(&value)),
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.emit(field, AnyValue::Bool(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.emit(field, AnyValue::Str(value));
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        self.emit(field, AnyValue::Bytes(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        self.emit(field, AnyValue::Fmt(&ErrorAsString(value)));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.emit(field, AnyValue::Fmt(value));
    }
}
