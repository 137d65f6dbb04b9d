//! [`SdkEmitter`]: decoded records into the OpenTelemetry SDK, through its
//! public API.

use std::{
    borrow::Cow,
    collections::HashMap,
    fmt,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use opentelemetry::{
    InstrumentationScope, SpanId, TraceFlags, TraceId,
    logs::{AnyValue as SdkValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity as SdkSeverity},
};
use opentelemetry_sdk::logs::{SdkLogRecord, SdkLogger, SdkLoggerProvider};
use selftrace::view::{AnyValue, LogRecordView, RecordVisitor, Severity};

use super::{
    intern::{Fx, Interner},
    metrics::{BridgeCounters, BridgeMetrics},
};
use selftrace::decode::{DecodeError, DecodedRecord, LogsRequest, RecordSink};

/// Default bound of [`SdkEmitter`]'s logger cache, in scopes.
pub(crate) const DEFAULT_MAX_LOGGERS: usize = 1024;

// === impl SdkEmitter ===

/// Emits records into an [`SdkLoggerProvider`], through the public
/// `Logger::create_log_record` / `LogRecord` setters, as
/// `opentelemetry-appender-tracing` does for live events.
///
/// One logger per scope name is cached (at most 1024, or
/// the bound given to [`with_max_loggers`](Self::with_max_loggers); past it,
/// a group of records gets a logger of its own, counted in
/// [`BridgeMetrics::uncached_loggers`]).
///
/// # Mapping
///
/// | SDK `LogRecord`        | from the OTLP record |
/// |------------------------|----------------------|
/// | timestamp, observed timestamp | `time_unix_nano`, `observed_time_unix_nano` (left unset when 0; the SDK then fills the observed one) |
/// | severity number        | `severity_number` when in 1..=24 |
/// | severity text          | the canonical text of the number; a different text is interned (bounded) |
/// | event name             | `event_name`, interned (bounded: past the bound it is left off and counted) |
/// | target                 | the scope name (an OTLP exporter groups by target first, so the scope is kept either way) |
/// | body, attributes       | every value kind; arrays and maps nested as `ListAny` and `Map` |
/// | trace context          | trace id, span id and flags of the record |
/// | instrumentation scope  | the logger's: the scope name and version |
///
/// Not carried: the request's resource (the provider has its own) and
/// `dropped_attributes_count` (the SDK's `LogRecord` has no setter; a value
/// cut by the encoder still ends with its truncation marker).
///
/// # Examples
///
/// ```
/// use opentelemetry_sdk::logs::{InMemoryLogExporter, SdkLoggerProvider};
/// use selftrace::view::{AnyValue, LogRecordView, RecordVisitor, Severity};
/// use selftrace_bridge::sdk::SdkEmitter;
///
/// struct Ready;
/// impl LogRecordView for Ready {
///     fn time_unix_nano(&self) -> Option<u64> { Some(1_700_000_000_000_000_000) }
///     fn observed_time_unix_nano(&self) -> Option<u64> { self.time_unix_nano() }
///     fn severity(&self) -> Option<Severity> { Some(Severity::INFO) }
///     fn event_name(&self) -> Option<&str> { Some("node.ready") }
///     fn visit(&self, v: &mut dyn RecordVisitor) {
///         v.visit_body(AnyValue::Str("ready"));
///         v.visit_attribute("port", AnyValue::Int(4318));
///     }
/// }
///
/// let exporter = InMemoryLogExporter::default();
/// let provider = SdkLoggerProvider::builder().with_simple_exporter(exporter.clone()).build();
/// let mut emitter = SdkEmitter::new(provider);
/// emitter.emit_record("receiver.otlp.0", &Ready);
///
/// let logs = exporter.get_emitted_logs()?;
/// assert_eq!(logs[0].record.event_name(), Some("node.ready"));
/// assert_eq!(logs[0].instrumentation.name(), "receiver.otlp.0");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SdkEmitter {
    provider: SdkLoggerProvider,
    loggers: HashMap<&'static str, SdkLogger, Fx>,
    /// The cached logger used last, and its interned name.
    last_logger: Option<(&'static str, SdkLogger)>,
    max_loggers: usize,
    strings: Interner,
    counters: Arc<BridgeCounters>,
}

impl fmt::Debug for SdkEmitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdkEmitter")
            .field("loggers", &self.loggers.len())
            .field("max_loggers", &self.max_loggers)
            .field("metrics", &self.metrics())
            .finish_non_exhaustive()
    }
}

impl SdkEmitter {
    /// An emitter into `provider`.
    pub fn new(provider: SdkLoggerProvider) -> Self {
        Self::with_counters(provider, Arc::default())
    }

    pub(crate) fn with_counters(provider: SdkLoggerProvider, counters: Arc<BridgeCounters>) -> Self {
        Self {
            provider,
            loggers: HashMap::default(),
            last_logger: None,
            max_loggers: DEFAULT_MAX_LOGGERS,
            strings: Interner::default(),
            counters,
        }
    }

    /// Caches at most `max_loggers` loggers (one per scope name).
    pub fn with_max_loggers(mut self, max_loggers: usize) -> Self {
        self.max_loggers = max_loggers;
        self
    }

    /// The provider records are emitted into.
    pub fn provider(&self) -> &SdkLoggerProvider {
        &self.provider
    }

    /// What this emitter did so far.
    pub fn metrics(&self) -> BridgeMetrics {
        self.counters.snapshot()
    }

    /// Emits every record of one `ExportLogsServiceRequest` and returns how
    /// many there were.
    ///
    /// # Errors
    ///
    /// The first problem in the bytes; the records before it were emitted,
    /// and the request is counted in [`BridgeMetrics::malformed_requests`].
    pub fn emit_request(&mut self, bytes: &[u8]) -> Result<usize, DecodeError> {
        let mut emitted = 0;
        let result = self.emit_all(LogsRequest::new(bytes), &mut emitted);
        BridgeCounters::add(&self.counters.requests, 1);
        BridgeCounters::add(&self.counters.records_emitted, emitted as u64);
        if result.is_err() {
            BridgeCounters::add(&self.counters.malformed_requests, 1);
        }
        result.map(|()| emitted)
    }

    fn emit_all(&mut self, request: LogsRequest<'_>, emitted: &mut usize) -> Result<(), DecodeError> {
        for resource_logs in request.resource_logs() {
            for scope_logs in resource_logs?.scope_logs() {
                let scope_logs = scope_logs?;
                self.with_logger(scope_logs.name(), scope_logs.version(), |logger, target, strings, counters| {
                    // Each record is checked while its SDK record is built,
                    // in one pass: a record found malformed half-way is
                    // dropped with its SDK record, never emitted.
                    let mut sink = Builder { logger, target, strings, counters, out: None, emitted: 0, position: 0 };
                    let result = scope_logs.try_for_each_record(&mut sink);
                    *emitted += sink.emitted;
                    result
                })?;
            }
        }
        Ok(())
    }

    /// Emits one record, attributed to the scope `scope`.
    pub fn emit_record(&mut self, scope: &str, record: &(impl LogRecordView + ?Sized)) {
        self.with_logger(scope, "", |logger, target, strings, counters| {
            emit(logger, target, strings, counters, record);
        });
        BridgeCounters::add(&self.counters.records_emitted, 1);
    }

    /// Runs `f` with the logger of scope `name` (cached when there is room)
    /// and the target for its records. The name is interned once and serves
    /// as cache key, target and scope name.
    fn with_logger<R>(
        &mut self,
        name: &str,
        version: &str,
        f: impl FnOnce(&SdkLogger, &Cow<'static, str>, &mut Interner, &BridgeCounters) -> R,
    ) -> R {
        // Consecutive requests mostly come from one scope: its logger is
        // found by comparing the name, without interning or hashing.
        if let Some((key, logger)) = &self.last_logger
            && *key == name
        {
            return f(logger, &Cow::Borrowed(*key), &mut self.strings, &self.counters);
        }
        let interned = self.strings.get(name);
        let target = interned.map_or_else(|| Cow::Owned(name.to_owned()), Cow::Borrowed);
        if let Some(key) = interned {
            let logger = match self.loggers.get(key) {
                Some(logger) => Some(logger.clone()),
                None if self.loggers.len() < self.max_loggers => {
                    let logger = self.new_logger(target.clone(), version);
                    self.loggers.insert(key, logger.clone());
                    Some(logger)
                }
                None => None,
            };
            if let Some(logger) = logger {
                let last = self.last_logger.insert((key, logger));
                return f(&last.1, &target, &mut self.strings, &self.counters);
            }
        }
        // The cache is full or the name could not be interned: a logger for
        // this group of records alone.
        BridgeCounters::add(&self.counters.uncached_loggers, 1);
        let logger = self.new_logger(target.clone(), version);
        f(&logger, &target, &mut self.strings, &self.counters)
    }

    fn new_logger(&self, name: Cow<'static, str>, version: &str) -> SdkLogger {
        let mut scope = InstrumentationScope::builder(name);
        if !version.is_empty() {
            scope = scope.with_version(version.to_owned());
        }
        self.provider.logger_with_scope(scope.build())
    }
}

/// The SDK's severities, by OTLP number.
const SDK_SEVERITY: [SdkSeverity; 24] = [
    SdkSeverity::Trace,
    SdkSeverity::Trace2,
    SdkSeverity::Trace3,
    SdkSeverity::Trace4,
    SdkSeverity::Debug,
    SdkSeverity::Debug2,
    SdkSeverity::Debug3,
    SdkSeverity::Debug4,
    SdkSeverity::Info,
    SdkSeverity::Info2,
    SdkSeverity::Info3,
    SdkSeverity::Info4,
    SdkSeverity::Warn,
    SdkSeverity::Warn2,
    SdkSeverity::Warn3,
    SdkSeverity::Warn4,
    SdkSeverity::Error,
    SdkSeverity::Error2,
    SdkSeverity::Error3,
    SdkSeverity::Error4,
    SdkSeverity::Fatal,
    SdkSeverity::Fatal2,
    SdkSeverity::Fatal3,
    SdkSeverity::Fatal4,
];

fn sdk_severity(severity: Severity) -> Option<SdkSeverity> {
    usize::try_from(severity.number() - 1).ok().and_then(|i| SDK_SEVERITY.get(i)).copied()
}

fn system_time(unix_nanos: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(unix_nanos)
}

/// Builds one SDK record from `record` and emits it through `logger`.
#[allow(clippy::ptr_arg, reason = "cloning a borrowed Cow copies a pointer; a &str would be copied into a String")]
fn emit(
    logger: &SdkLogger,
    target: &Cow<'static, str>,
    strings: &mut Interner,
    counters: &BridgeCounters,
    record: &(impl LogRecordView + ?Sized),
) {
    let mut out = logger.create_log_record();
    set_head(&mut out, target, strings, counters, record);
    record.visit(&mut Fields { out: &mut out, strings, position: 0 });
    logger.emit(out);
}

/// Builds the SDK records of a request while the decoder reads it.
struct Builder<'a> {
    logger: &'a SdkLogger,
    target: &'a Cow<'static, str>,
    strings: &'a mut Interner,
    counters: &'a BridgeCounters,
    out: Option<SdkLogRecord>,
    emitted: usize,
    /// The position of the next attribute in the record.
    position: usize,
}

impl RecordSink for Builder<'_> {
    fn begin(&mut self) {
        self.out = Some(self.logger.create_log_record());
        self.position = 0;
    }

    fn end(&mut self, record: &DecodedRecord<'_>) {
        if let Some(mut out) = self.out.take() {
            set_head(&mut out, self.target, self.strings, self.counters, record);
            self.logger.emit(out);
            self.emitted += 1;
        }
    }
}

impl RecordVisitor for Builder<'_> {
    fn visit_body(&mut self, body: AnyValue<'_>) {
        if let Some(out) = &mut self.out {
            out.set_body(sdk_value(body, self.strings));
        }
    }

    fn visit_attribute(&mut self, key: &str, value: AnyValue<'_>) {
        if let Some(out) = &mut self.out {
            add_attribute(out, self.strings, &mut self.position, key, value);
        }
    }
}

/// Sets everything of `out` but the body and the attributes.
#[allow(clippy::ptr_arg, reason = "cloning a borrowed Cow copies a pointer; a &str would be copied into a String")]
fn set_head(
    out: &mut SdkLogRecord,
    target: &Cow<'static, str>,
    strings: &mut Interner,
    counters: &BridgeCounters,
    record: &(impl LogRecordView + ?Sized),
) {
    out.set_target(target.clone());
    if let Some(t) = record.time_unix_nano() {
        out.set_timestamp(system_time(t));
    }
    if let Some(t) = record.observed_time_unix_nano() {
        out.set_observed_timestamp(system_time(t));
    }
    let severity = record.severity();
    if let Some(number) = severity.and_then(sdk_severity) {
        out.set_severity_number(number);
    }
    match (severity, record.severity_text()) {
        (Some(severity), Some(text)) if text == severity.text() => out.set_severity_text(severity.text()),
        (_, Some(text)) => match strings.get(text) {
            Some(text) => out.set_severity_text(text),
            None => BridgeCounters::add(&counters.severity_texts_dropped, 1),
        },
        (Some(severity), None) => out.set_severity_text(severity.text()),
        (None, None) => {}
    }
    if let Some(name) = record.event_name() {
        match strings.event_name(name) {
            Some(name) => out.set_event_name(name),
            None => BridgeCounters::add(&counters.event_names_dropped, 1),
        }
    }
    if let Some(cx) = record.trace_context() {
        out.set_trace_context(
            TraceId::from_bytes(cx.trace_id),
            SpanId::from_bytes(cx.span_id),
            Some(TraceFlags::new(cx.flags)),
        );
    }
}

struct Fields<'a, R> {
    out: &'a mut R,
    strings: &'a mut Interner,
    /// The position of the next attribute in the record.
    position: usize,
}

impl<R: opentelemetry::logs::LogRecord> RecordVisitor for Fields<'_, R> {
    fn visit_body(&mut self, body: AnyValue<'_>) {
        self.out.set_body(sdk_value(body, self.strings));
    }

    fn visit_attribute(&mut self, key: &str, value: AnyValue<'_>) {
        add_attribute(self.out, self.strings, &mut self.position, key, value);
    }
}

/// Adds the attribute at `*position` of a record (its key found by position
/// first, see `Interner::key_at`) and moves to the next position.
fn add_attribute(
    out: &mut impl opentelemetry::logs::LogRecord,
    strings: &mut Interner,
    position: &mut usize,
    key: &str,
    value: AnyValue<'_>,
) {
    let key = strings.key_at(*position, key);
    out.add_attribute(key, sdk_value(value, strings));
    *position += 1;
}

/// The SDK's value for `value`; nested values are bounded by the view (the
/// decoder allows [`MAX_NESTING_DEPTH`](selftrace::decode::MAX_NESTING_DEPTH)).
fn sdk_value(value: AnyValue<'_>, strings: &mut Interner) -> SdkValue {
    match value {
        AnyValue::Str(s) => SdkValue::from(s.to_owned()),
        AnyValue::Bool(b) => SdkValue::Boolean(b),
        AnyValue::Int(i) => SdkValue::Int(i),
        AnyValue::Double(d) => SdkValue::Double(d),
        AnyValue::Bytes(b) => SdkValue::Bytes(Box::new(b.to_vec())),
        AnyValue::Array(array) => {
            let mut values = Vec::new();
            array.visit_values(&mut |v| values.push(sdk_value(v, strings)));
            SdkValue::ListAny(Box::new(values))
        }
        AnyValue::Map(map) => {
            let mut entries = HashMap::new();
            map.visit_entries(&mut |k, v| {
                let key = strings.key(k);
                entries.insert(key, sdk_value(v, strings));
            });
            SdkValue::Map(Box::new(entries))
        }
        AnyValue::Fmt(value) => SdkValue::from(format!("{value:?}")),
        // Kinds added later: their debug text, rather than nothing.
        other => SdkValue::from(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_map_number_for_number() {
        for n in 1..=24 {
            let severity = Severity::from_number(n).expect("1..=24");
            assert_eq!(sdk_severity(severity).map(|s| s as i32), Some(n));
            assert_eq!(sdk_severity(severity).map(|s| s.name()), Some(severity.text()));
        }
    }
}
