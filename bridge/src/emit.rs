//! Decoded records into the OpenTelemetry SDK, through its public API.

use std::{
    borrow::Cow,
    collections::{HashMap, HashSet},
    fmt,
    hash::{BuildHasherDefault, Hasher},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use opentelemetry::{
    InstrumentationScope, Key, SpanId, TraceFlags, TraceId,
    logs::{AnyValue as SdkValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity as SdkSeverity},
};
use opentelemetry_sdk::logs::{SdkLogger, SdkLoggerProvider};
use selftrace::{view::AnyValue, view::LogRecordView, view::RecordVisitor, view::Severity};

use crate::decode::{DecodeError, LogsRequest};

/// Default bound of [`SdkEmitter`]'s logger cache, in scopes.
pub const DEFAULT_MAX_LOGGERS: usize = 1024;

/// How many distinct strings (event names, attribute keys, scope names,
/// severity texts) the process may intern for the SDK's `&'static str`
/// setters, all bridges together.
pub const MAX_INTERNED_STRINGS: usize = 8192;

/// How many bytes those interned strings may take, all bridges together.
pub const MAX_INTERNED_BYTES: usize = 512 * 1024;

/// The longest string that is interned; longer ones are never interned.
pub const MAX_INTERNED_LEN: usize = 256;

// === impl BridgeMetrics ===

/// What a bridge did, as a snapshot.
///
/// After a clean shutdown, `records_emitted` equals the records delivered to
/// the bridge's channel: the layer's `delivered` for events outside node
/// scopes plus the node paths' `events_delivered` (an event inside a node
/// scope is counted by the layer, as handed to the node, and by the node
/// path). Unless `malformed_requests` is non-zero: the records after the
/// first error in a request cannot be counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BridgeMetrics {
    /// Requests read from the channel (or handed to [`SdkEmitter::emit_request`]).
    pub requests: u64,
    /// Records emitted into the SDK.
    pub records_emitted: u64,
    /// Requests with malformed bytes: the records before the problem were
    /// emitted, the rest were not (reported on the raw logger).
    pub malformed_requests: u64,
    /// Event names left off records because the interner was full.
    pub event_names_dropped: u64,
    /// Non-canonical severity texts left off records because the interner
    /// was full (canonical texts never need it).
    pub severity_texts_dropped: u64,
    /// Groups of records emitted through a logger made for them alone,
    /// because the logger cache was full (or the interner, for their scope
    /// name).
    pub uncached_loggers: u64,
    /// Times the bridge waited for the provider to export what it held
    /// (`force_flush`) before emitting more, so that a `BatchLogProcessor`'s
    /// queue never overflows (see [`SdkBridgeBuilder::with_flush_every`](crate::SdkBridgeBuilder::with_flush_every)).
    pub backpressure_flushes: u64,
    /// Of those, the flushes the provider reported as failed (an exporter
    /// error or timeout): the records it held may not have been exported.
    pub failed_flushes: u64,
}

/// The counters behind [`BridgeMetrics`]; one writer (the emitter), any
/// number of readers.
#[derive(Debug, Default)]
pub(crate) struct BridgeCounters {
    requests: AtomicU64,
    records_emitted: AtomicU64,
    malformed_requests: AtomicU64,
    event_names_dropped: AtomicU64,
    severity_texts_dropped: AtomicU64,
    uncached_loggers: AtomicU64,
    pub(crate) backpressure_flushes: AtomicU64,
    pub(crate) failed_flushes: AtomicU64,
}

impl BridgeCounters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> BridgeMetrics {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BridgeMetrics {
            requests: get(&self.requests),
            records_emitted: get(&self.records_emitted),
            malformed_requests: get(&self.malformed_requests),
            event_names_dropped: get(&self.event_names_dropped),
            severity_texts_dropped: get(&self.severity_texts_dropped),
            uncached_loggers: get(&self.uncached_loggers),
            backpressure_flushes: get(&self.backpressure_flushes),
            failed_flushes: get(&self.failed_flushes),
        }
    }
}

// === interning ===

/// FxHash: the keys are short strings from this process's own callsites,
/// hashed once per attribute, so a fast non-keyed hash fits.
#[derive(Clone, Copy, Default)]
struct FxHasher(u64);

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0; 8];
            if let Some(head) = word.get_mut(..rest.len()) {
                head.copy_from_slice(rest);
            }
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type Fx = BuildHasherDefault<FxHasher>;

/// The strings leaked so far, process-wide, within the bounds above.
struct GlobalStrings {
    set: HashSet<&'static str, Fx>,
    bytes: usize,
}

static GLOBAL_STRINGS: Mutex<Option<GlobalStrings>> = Mutex::new(None);

/// `&'static` copies of strings, for the SDK's `&'static str` setters.
///
/// The SDK takes event names and severity texts as `&'static str`; attribute
/// keys and targets are cheaper as `&'static str` too (no allocation per
/// record). They come from static callsites, so the set is finite: each is
/// leaked once, process-wide, up to [`MAX_INTERNED_STRINGS`] /
/// [`MAX_INTERNED_BYTES`]. Each emitter keeps its own lock-free view of what
/// it has used.
#[derive(Default)]
struct Interner {
    local: HashSet<&'static str, Fx>,
}

impl Interner {
    fn get(&mut self, s: &str) -> Option<&'static str> {
        if let Some(&interned) = self.local.get(s) {
            return Some(interned);
        }
        if s.len() > MAX_INTERNED_LEN {
            return None;
        }
        let interned = {
            let mut global = GLOBAL_STRINGS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let global = global.get_or_insert_with(|| GlobalStrings { set: HashSet::default(), bytes: 0 });
            match global.set.get(s) {
                Some(&interned) => interned,
                None if global.set.len() < MAX_INTERNED_STRINGS && global.bytes + s.len() <= MAX_INTERNED_BYTES => {
                    let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
                    global.set.insert(leaked);
                    global.bytes += s.len();
                    leaked
                }
                None => return None,
            }
        };
        self.local.insert(interned);
        Some(interned)
    }

    fn key(&mut self, s: &str) -> Key {
        match self.get(s) {
            Some(s) => Key::from_static_str(s),
            None => Key::new(s.to_owned()),
        }
    }
}

// === impl SdkEmitter ===

/// Emits records into an [`SdkLoggerProvider`], through the public
/// `Logger::create_log_record` / `LogRecord` setters, as
/// `opentelemetry-appender-tracing` does for live events.
///
/// One logger per scope name is cached (at most [`DEFAULT_MAX_LOGGERS`], or
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
/// use selftrace::{view::AnyValue, view::LogRecordView, view::RecordVisitor, view::Severity};
/// use selftrace_bridge::SdkEmitter;
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
                    for record in scope_logs.records() {
                        emit(logger, target, strings, counters, &record?);
                        *emitted += 1;
                    }
                    Ok::<(), DecodeError>(())
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
        let interned = self.strings.get(name);
        let target = interned.map_or_else(|| Cow::Owned(name.to_owned()), Cow::Borrowed);
        if let Some(key) = interned {
            if !self.loggers.contains_key(key) && self.loggers.len() < self.max_loggers {
                let logger = self.new_logger(target.clone(), version);
                self.loggers.insert(key, logger);
            }
            if let Some(logger) = self.loggers.get(key) {
                return f(logger, &target, &mut self.strings, &self.counters);
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
        match strings.get(name) {
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
    record.visit(&mut Fields { out: &mut out, strings });
    logger.emit(out);
}

struct Fields<'a, R> {
    out: &'a mut R,
    strings: &'a mut Interner,
}

impl<R: opentelemetry::logs::LogRecord> RecordVisitor for Fields<'_, R> {
    fn visit_body(&mut self, body: AnyValue<'_>) {
        self.out.set_body(sdk_value(body, self.strings));
    }

    fn visit_attribute(&mut self, key: &str, value: AnyValue<'_>) {
        let key = self.strings.key(key);
        self.out.add_attribute(key, sdk_value(value, self.strings));
    }
}

/// The SDK's value for `value`; nested values are bounded by the view (the
/// decoder allows [`MAX_NESTING_DEPTH`](crate::MAX_NESTING_DEPTH)).
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

    #[test]
    fn the_interner_returns_the_same_string_and_refuses_long_ones() {
        let mut a = Interner::default();
        let mut b = Interner::default();
        let x = a.get("node.started").expect("room");
        let y = b.get("node.started").expect("room");
        assert!(std::ptr::eq(x, y), "one copy process-wide");
        assert_eq!(a.get(&"x".repeat(MAX_INTERNED_LEN + 1)), None);
    }

    #[test]
    fn fx_hashes_differ_for_different_keys() {
        let hash = |s: &str| {
            let mut h = FxHasher::default();
            std::hash::Hash::hash(s, &mut h);
            h.finish()
        };
        assert_ne!(hash("a"), hash("b"));
        assert_ne!(hash("abcdefgh1"), hash("abcdefgh2"));
        assert_eq!(hash("same"), hash("same"));
    }
}
