//! The `service.telemetry` section of an engine's configuration, and the
//! routing mode it selects.

use std::{collections::BTreeMap, fmt, time::Duration};

use selftrace::{
    DEFAULT_CHANNEL_CAPACITY, NodeLogger,
    console::{ConsoleFormat, ConsoleStream},
    encoder::{
        DEFAULT_BUFFER_CAPACITY, DEFAULT_MAX_RECORD_BYTES, DEFAULT_MAX_VALUE_BYTES, MIN_BUFFER_CAPACITY,
        MIN_MAX_RECORD_BYTES,
    },
    flood::FloodLimit,
    spans::{MAX_SPAN_FIELD_BYTES, MAX_SPAN_FIELDS, SpanFields},
};
use serde::Deserialize;
use serde_saphyr::Spanned;
use tracing_core::LevelFilter;

mod yaml;

pub use self::yaml::{YamlError, from_yaml};
use crate::{
    bounds::{MAX_BYTES, MAX_COUNT, interval, within, within_option},
    receiver::DEFAULT_FLUSH_INTERVAL,
};

/// The `service` section of an engine's configuration: the part selftrace
/// reads. An engine embeds it in its own configuration type, or reads a
/// whole document with [`ServiceConfig::from_yaml`].
///
/// ```yaml
/// service:
///   telemetry:
///     resource:                      # resource attributes of every request
///       service.name: my-engine
///     metrics:                       # selftrace's counters as OpenTelemetry instruments
///       enabled: true                # (feature `metrics`; SelfTelemetryBuilder::with_meter, else global)
///     logs:
///       level: info                  # trace, debug, info, warn, error, off; see "Level" below
///       internal_collection:         # component logs into the engine's own pipeline
///         enabled: true
///         buffer_size_bytes: 65536   # per-thread encoder buffer
///         max_record_bytes: 16384    # one record at most
///         max_record_count: 1000     # default queue size of each receiver (requests)
///         flush_interval: 1s         # default flush interval of each receiver
///       processors:                  # OpenTelemetry SDK processors; [] = no SDK
///         - batch:
///             exporter:
///               otlp:
///                 endpoint: http://localhost:4318/v1/logs
///                 protocol: http/protobuf   # or http/json, or grpc
///                 spool: { dir: /var/lib/engine/selftrace, max_bytes: 1073741824, sync: 500ms }  # off by default
///                 tls: { ca_file: /etc/engine/ca.pem, cert_file: /etc/engine/tls.crt, key_file: /etc/engine/tls.key }
///       startup_buffer_bytes: 1048576 # ITR only: events kept until the receivers are mounted
///       flood_control:               # repeated events past 10 per 10 s are summarised
///         events: 10
///         window: 10s
///       nodes:                       # per-node overrides
///         main/exporter/otlp: { logger: console, level: debug, flood_control: { enabled: false } }
///       span_fields:                 # records carry their spans' fields (off by default)
///         enabled: true
///         spans: [request]           # only these spans; left out: every span
///       code_location: true          # code.file.path, code.line.number, code.module.name
///       console: { format: otlp_json, stream: stdout }   # console mode and `console` node loggers
/// ```
///
/// # Level
///
/// As upstream settled it (`tracing-subscriber`'s `EnvFilter`, the Rust
/// peers of the Collector): `level` when written wins; else the `RUST_LOG`
/// environment variable (full `EnvFilter` syntax: `warn,my_crate=debug`),
/// read once when [`SelfTelemetry`](crate::SelfTelemetry) is built; else
/// [`DEFAULT_DIRECTIVES`](selftrace::levels::DEFAULT_DIRECTIVES): `info`, with the transport crates (`h2`, `hyper`,
/// `hyper_util`, `tonic`, `reqwest`) `off`. A `RUST_LOG` that does not
/// parse is reported on stderr, naming the variable and the parser's
/// reason, and the default applies (see
/// [`SelfTelemetry::level_source`](crate::SelfTelemetry::level_source)). The
/// node logs take the most verbose level the result lets through.
///
/// # Bounds
///
/// Every capacity, count and interval is checked while the YAML is read:
/// a value outside its range is an error at its own key, line and column:
///
/// ```text
/// service.yaml:6:27: `service.telemetry.logs.internal_collection.max_record_count`: 1000000000000 is out of range: 1 to 1000000
/// ```
///
/// | key | default | range |
/// |---|---|---|
/// | `internal_collection.buffer_size_bytes` | 65536 | 1024 to 268435456 |
/// | `internal_collection.max_record_bytes` | 16383 | 128 to 268435456, and at most `buffer_size_bytes` less 512 (checked at build) |
/// | `internal_collection.max_value_bytes` | 8192 | 1 to 268435456 |
/// | `internal_collection.max_record_count` | 1000 | 1 to 1000000 |
/// | `internal_collection.flush_interval` | 1s | 1ms to 1h |
/// | `startup_buffer_bytes` | 1048576 | 0 to 268435456 |
/// | `flood_control.events` | 10 | 1 to 4294967295 |
/// | `flood_control.window` | 10s | 1ms to 24h |
/// | `span_fields.max_fields` | 32 | 1 to 64 |
/// | `span_fields.max_bytes` | 4096 | 1 to 1048576 |
/// | receiver `channel_capacity` | `max_record_count` | 1 to 1000000 |
/// | receiver `max_batch_bytes` | 524288 | 1024 to 67108864 |
/// | receiver `max_batch_records` | 8192 | 1 to 1000000 |
/// | receiver `flush_interval` | `flush_interval` | 1ms to 1h |
/// | `otlp.max_queue_bytes` | 33554432 | 65536 to 268435456 |
/// | `otlp.spool.max_bytes` | 1073741824 | 65536 to 1099511627776 |
/// | `otlp.spool.sync` | 500ms | 1ms to 1h |
/// | `otlp.tls.reload_interval` | 60s | any duration |
///
/// The resource (`resource:` and the service name) must leave a request
/// room for a record at the limit: more than `buffer_size_bytes` less
/// `max_record_bytes` less 160 bytes encoded is an error at build naming its
/// largest attribute (`service.telemetry.resource.service.name`), instead of
/// every record dropped as too large later.
///
/// # Examples
///
/// ```
/// use selftrace_itr::{Mode, ServiceConfig};
///
/// let config = ServiceConfig::from_yaml(
///     "service.yaml",
///     "service:\n  telemetry:\n    logs:\n      internal_collection:\n        enabled: true\n      processors: []\n",
/// )?;
/// assert_eq!(config.telemetry.logs.mode(), Mode::ItrOnly);
/// # Ok::<(), selftrace_itr::config::YamlError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServiceConfig {
    /// `service.telemetry`.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceDocument {
    #[serde(default)]
    service: ServiceConfig,
}

impl ServiceConfig {
    /// Reads a document whose top-level key is `service` (the only key it
    /// may have); an empty document is the default configuration.
    ///
    /// # Errors
    ///
    /// A [`YamlError`] with the key path, line and column.
    pub fn from_yaml(source: &str, text: &str) -> Result<Self, YamlError> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        from_yaml::<ServiceDocument>(source, text).map(|doc| doc.service)
    }
}

/// `service.telemetry`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TelemetryConfig {
    /// Resource attributes of every request. `service.name` here wins over
    /// the name the engine gives.
    #[serde(default)]
    pub resource: BTreeMap<String, String>,
    /// `service.telemetry.logs`.
    #[serde(default)]
    pub logs: LogsConfig,
    /// `service.telemetry.metrics`: selftrace's own counters as OpenTelemetry
    /// instruments.
    #[serde(default)]
    pub metrics: MetricsConfig,
}

/// `service.telemetry.metrics`: every counter of selftrace (the layer, the
/// node logs, each receiver, the SDK bridge, each native exporter) as
/// observable instruments on the engine's OpenTelemetry `Meter`
/// (`SelfTelemetryBuilder::with_meter`, else the global meter provider's
/// meter `selftrace`). Needs the `metrics` feature of selftrace-itr. The
/// instruments are listed in [`selftrace::instruments`] and the crates'
/// `instruments` modules.
///
/// ```yaml
/// metrics:
///   enabled: true   # default false
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MetricsConfig {
    /// Register the instruments.
    #[serde(default)]
    pub enabled: bool,
}

/// `service.telemetry.logs`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsConfig {
    #[serde(default)]
    level: Option<LogLevel>,
    #[serde(default)]
    internal_collection: Option<Spanned<InternalCollection>>,
    #[serde(default)]
    processors: Option<Spanned<Vec<SdkProcessor>>>,
    #[serde(default)]
    nodes: BTreeMap<String, Spanned<NodeOverride>>,
    #[serde(default)]
    transport: Option<Spanned<TransportConfig>>,
    #[serde(default)]
    flood_control: FloodControl,
    #[serde(default, deserialize_with = "within_option::<_, 0, MAX_BYTES>")]
    startup_buffer_bytes: Option<usize>,
    #[serde(default)]
    span_fields: SpanFieldsConfig,
    #[serde(default)]
    code_location: bool,
    #[serde(default)]
    console: Option<ConsoleConfig>,
}

/// `span_fields`: each record carries the fields of the spans its event is
/// inside (see [`selftrace::spans`]). Off by default.
///
/// ```yaml
/// span_fields:
///   enabled: true       # default false
///   spans: [request]    # only these spans' fields; left out: every span
///   max_fields: 32      # per record, 1 to 64
///   max_bytes: 4096     # of encoded span fields per record, 1 to 1048576
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "SpanFieldsAsWritten")]
pub struct SpanFieldsConfig {
    fields: Option<SpanFields>,
}

impl SpanFieldsConfig {
    /// The span fields, `None` when not enabled.
    pub fn fields(&self) -> Option<&SpanFields> {
        self.fields.as_ref()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpanFieldsAsWritten {
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    spans: Option<Vec<String>>,
    #[serde(default, deserialize_with = "within_option::<_, 1, MAX_SPAN_FIELDS>")]
    max_fields: Option<usize>,
    #[serde(default, deserialize_with = "within_option::<_, 1, MAX_SPAN_FIELD_BYTES>")]
    max_bytes: Option<usize>,
}

impl TryFrom<SpanFieldsAsWritten> for SpanFieldsConfig {
    type Error = selftrace::spans::SpanFieldsError;

    fn try_from(written: SpanFieldsAsWritten) -> Result<Self, Self::Error> {
        let fields = match written.spans {
            Some(names) => SpanFields::named(names),
            None => SpanFields::all(),
        };
        let fields = fields.with_bounds(
            written.max_fields.unwrap_or(selftrace::spans::DEFAULT_MAX_SPAN_FIELDS),
            written.max_bytes.unwrap_or(selftrace::spans::DEFAULT_MAX_SPAN_FIELD_BYTES),
        )?;
        Ok(Self { fields: written.enabled.then_some(fields) })
    }
}

/// `console`: how the console prints, in `console` mode and for nodes whose
/// logger is `console`.
///
/// ```yaml
/// console:
///   format: otlp_json   # text (default) | otlp_json: one OTLP/JSON request per line
///   stream: stdout      # stderr (default) | stdout; otlp_json only
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "ConsoleAsWritten")]
pub struct ConsoleConfig {
    format: ConsoleFormat,
}

impl ConsoleConfig {
    /// The format (and stream) written.
    pub fn format(&self) -> ConsoleFormat {
        self.format
    }
}

/// A console as written: a format and a stream.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsoleAsWritten {
    #[serde(default)]
    format: ConsoleFormatName,
    #[serde(default)]
    stream: Option<StreamName>,
}

#[derive(Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum ConsoleFormatName {
    #[default]
    Text,
    OtlpJson,
}

#[derive(Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum StreamName {
    Stderr,
    Stdout,
}

impl TryFrom<ConsoleAsWritten> for ConsoleFormat {
    type Error = String;

    fn try_from(written: ConsoleAsWritten) -> Result<Self, Self::Error> {
        let stream = match written.stream {
            Some(StreamName::Stdout) => ConsoleStream::Stdout,
            _ => ConsoleStream::Stderr,
        };
        match (written.format, written.stream) {
            (ConsoleFormatName::Text, Some(StreamName::Stdout)) => {
                Err("the text console writes to stderr; `stream` is for `format: otlp_json`".into())
            }
            (ConsoleFormatName::Text, _) => Ok(ConsoleFormat::Text),
            (ConsoleFormatName::OtlpJson, _) => Ok(ConsoleFormat::OtlpJson(stream)),
        }
    }
}

impl TryFrom<ConsoleAsWritten> for ConsoleConfig {
    type Error = String;

    fn try_from(written: ConsoleAsWritten) -> Result<Self, Self::Error> {
        ConsoleFormat::try_from(written).map(|format| Self { format })
    }
}

/// `flood_control`, in `logs` and in a `nodes:` entry: a repeated event
/// (the same callsite, and the same node) past `events` per `window` is
/// suppressed and summarised in one record per window (see
/// [`selftrace::flood`]).
///
/// ```yaml
/// flood_control:
///   enabled: true      # default
///   events: 10         # default; 1 or more
///   window: 10s        # default; 1ms to 24h
/// ```
///
/// # Examples
///
/// ```
/// use selftrace_itr::{ServiceConfig, config::FloodControl};
/// use std::time::Duration;
///
/// let config = ServiceConfig::from_yaml(
///     "service.yaml",
///     "service:\n  telemetry:\n    logs:\n      flood_control: { events: 100, window: 1m }\n      nodes:\n        main/debug: { flood_control: { enabled: false } }\n",
/// )?;
/// let limit = config.telemetry.logs.flood_limit().expect("enabled");
/// assert_eq!((limit.events(), limit.window()), (100, Duration::from_secs(60)));
/// assert_eq!(config.telemetry.logs.node("main/debug").and_then(|o| o.flood_control).map(FloodControl::limit), Some(None));
///
/// let zero = ServiceConfig::from_yaml("service.yaml", "service:\n  telemetry:\n    logs:\n      flood_control: { events: 0 }\n");
/// assert!(zero.unwrap_err().to_string().contains("at least 1"));
/// # Ok::<(), selftrace_itr::config::YamlError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "FloodControlAsWritten")]
pub struct FloodControl {
    limit: Option<FloodLimit>,
}

impl FloodControl {
    /// The limit, or `None` when `enabled: false`.
    pub fn limit(self) -> Option<FloodLimit> {
        self.limit
    }
}

impl Default for FloodControl {
    fn default() -> Self {
        Self { limit: Some(FloodLimit::DEFAULT) }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FloodControlAsWritten {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    events: Option<u32>,
    #[serde(default, deserialize_with = "crate::receiver::duration_option")]
    window: Option<Duration>,
}

fn yes() -> bool {
    true
}

impl TryFrom<FloodControlAsWritten> for FloodControl {
    type Error = selftrace::flood::FloodLimitError;

    fn try_from(written: FloodControlAsWritten) -> Result<Self, Self::Error> {
        let limit = FloodLimit::new(
            written.events.unwrap_or(FloodLimit::DEFAULT.events()),
            written.window.unwrap_or(FloodLimit::DEFAULT.window()),
        )?;
        Ok(Self { limit: written.enabled.then_some(limit) })
    }
}

/// `service.telemetry.logs.transport`: the transport crates' own events.
/// They never reach a destination that exports over the network (the
/// exporters of `processors`, the `internal_telemetry` receivers): each
/// export would log events for the next one. To debug a transport, print
/// them:
///
/// ```yaml
/// transport:
///   targets: [h2, hyper, hyper_util, tonic, tower, reqwest, rustls]   # the default; add your own
///   logger: console      # noop (default) | console | raw
///   level: debug         # for console and raw (default warn)
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TransportConfig {
    /// Targets (and those below them on `::`), default
    /// [`TRANSPORT_TARGETS`](selftrace::TRANSPORT_TARGETS).
    #[serde(default = "transport_targets")]
    pub targets: Vec<String>,
    /// Where their events go: `noop`, `console` or `raw` (`default`, the
    /// exporting destination, is rejected at build).
    #[serde(default = "noop", deserialize_with = "node_logger")]
    pub logger: NodeLogger,
    /// The most verbose level printed by `console` or `raw` (default `warn`).
    #[serde(default, deserialize_with = "level_option")]
    pub level: Option<LevelFilter>,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self { targets: transport_targets(), logger: NodeLogger::Noop, level: None }
    }
}

fn transport_targets() -> Vec<String> {
    selftrace::TRANSPORT_TARGETS.iter().map(|t| (*t).to_owned()).collect()
}

fn noop() -> NodeLogger {
    NodeLogger::Noop
}

/// Where logs go, from `internal_collection.enabled` and `processors`
/// (the design rule "an ITR pipeline must not use the ITR").
///
/// | mode | `enabled` | `processors` | component logs | third-party logs |
/// |---|---|---|---|---|
/// | [`SdkOnly`](Mode::SdkOnly) (default) | false | not empty | SDK | SDK |
/// | [`Hybrid`](Mode::Hybrid) | true | not empty | ITR | SDK |
/// | [`ItrOnly`](Mode::ItrOnly) | true | `[]` | ITR | ITR |
/// | [`Console`](Mode::Console) | false | `[]` | console | console |
///
/// Leaving `processors` out is one `batch` processor with the `console`
/// exporter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    /// Everything through the OpenTelemetry SDK.
    SdkOnly,
    /// Component logs into the engine's pipeline, third-party logs through
    /// the SDK.
    Hybrid,
    /// Everything into the engine's pipeline; no SDK.
    ItrOnly,
    /// Neither SDK nor pipeline: every event printed on stderr as it
    /// happens (the fallback of a configuration that names no destination).
    Console,
}

impl Mode {
    /// Whether component logs go to the `internal_telemetry` receivers.
    pub fn collects_internally(self) -> bool {
        matches!(self, Mode::Hybrid | Mode::ItrOnly)
    }

    /// The name used in configuration docs and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::SdkOnly => "sdk-only",
            Mode::Hybrid => "hybrid",
            Mode::ItrOnly => "itr-only",
            Mode::Console => "console",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl LogsConfig {
    /// The routing mode this configuration selects.
    pub fn mode(&self) -> Mode {
        match (self.internal_collection().enabled, self.processors().is_empty()) {
            (false, false) => Mode::SdkOnly,
            (true, false) => Mode::Hybrid,
            (true, true) => Mode::ItrOnly,
            (false, true) => Mode::Console,
        }
    }

    /// `level`: the most verbose level collected, when written (see
    /// [`level_source`](Self::level_source) for what applies when it is
    /// not).
    pub fn written_level(&self) -> Option<LevelFilter> {
        self.level.map(LogLevel::filter)
    }

    /// Where the layer's level comes from, as upstream (the OpenTelemetry
    /// Collector's Rust peers, `tracing-subscriber`) settled it: `level`
    /// when written; else `rust_log` (the `RUST_LOG` environment variable,
    /// full `EnvFilter` syntax) when set and not blank; else
    /// [`DEFAULT_DIRECTIVES`](selftrace::levels::DEFAULT_DIRECTIVES) (`info`, the transport crates `off`).
    pub fn level_source(&self, rust_log: Option<&str>) -> LevelSource {
        match (self.written_level(), rust_log.map(str::trim).filter(|v| !v.is_empty())) {
            (Some(level), _) => LevelSource::Config(level),
            (None, Some(directives)) => LevelSource::Env(directives.to_owned()),
            (None, None) => LevelSource::Default,
        }
    }

    /// `span_fields`: the span fields records carry, `None` when off.
    pub fn span_fields(&self) -> Option<&SpanFields> {
        self.span_fields.fields()
    }

    /// `code_location`: records carry `code.file.path`,
    /// `code.line.number` and `code.module.name` (default false).
    pub fn code_location(&self) -> bool {
        self.code_location
    }

    /// `console`: how the console prints, when written (left out: text on
    /// stderr in `console` mode; nodes whose logger is `console` print as
    /// their node logs' output does when it is a console, else text).
    pub fn console_format(&self) -> Option<ConsoleFormat> {
        self.console.map(|c| c.format())
    }

    /// `flood_control`: the limit of repeated events (default 10 per 10 s),
    /// `None` when disabled. A node's `flood_control` wins for that node.
    pub fn flood_limit(&self) -> Option<FloodLimit> {
        self.flood_control.limit()
    }

    /// `startup_buffer_bytes`: in ITR-only mode, how many bytes of encoded
    /// third-party events the layer keeps until the receivers are mounted
    /// (default 1 MiB, at most 256 MiB; 0 keeps none, counting them).
    pub fn startup_buffer_bytes(&self) -> usize {
        self.startup_buffer_bytes.unwrap_or(selftrace::startup::DEFAULT_STARTUP_BUFFER_BYTES)
    }

    /// `internal_collection` (defaults when left out).
    pub fn internal_collection(&self) -> &InternalCollection {
        static DEFAULT: InternalCollection = InternalCollection::DEFAULT;
        self.internal_collection.as_ref().map_or(&DEFAULT, |s| &s.value)
    }

    /// `processors`: when left out, one `batch` processor with the
    /// `console` exporter.
    pub fn processors(&self) -> &[SdkProcessor] {
        static DEFAULT: [SdkProcessor; 1] =
            [SdkProcessor::Batch(ProcessorConfig { exporter: SdkExporter::Console(None) })];
        self.processors.as_ref().map_or(&DEFAULT[..], |s| &s.value[..])
    }

    /// `nodes`: the per-node overrides, by node id.
    pub fn nodes(&self) -> impl Iterator<Item = (&str, &NodeOverride)> {
        self.nodes.iter().map(|(id, o)| (id.as_str(), &o.value))
    }

    /// `transport` (defaults when left out).
    pub fn transport(&self) -> TransportConfig {
        self.transport.as_ref().map(|t| t.value.clone()).unwrap_or_default()
    }

    pub(crate) fn transport_location(&self) -> Option<(usize, usize)> {
        self.transport.as_ref().map(|o| location(&o.referenced))
    }

    /// The `nodes:` override of node `id`.
    pub fn node(&self, id: &str) -> Option<&NodeOverride> {
        self.nodes.get(id).map(|o| &o.value)
    }

    /// Where the override of node `id` is written (line, column).
    pub(crate) fn node_location(&self, id: &str) -> Option<(usize, usize)> {
        self.nodes.get(id).map(|o| location(&o.referenced))
    }

    /// Where `internal_collection` is written (line, column).
    pub(crate) fn internal_collection_location(&self) -> Option<(usize, usize)> {
        self.internal_collection.as_ref().map(|o| location(&o.referenced))
    }

    /// Where `processors` is written (line, column).
    pub(crate) fn processors_location(&self) -> Option<(usize, usize)> {
        self.processors.as_ref().map(|o| location(&o.referenced))
    }
}

fn location(at: &serde_saphyr::Location) -> (usize, usize) {
    let n = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    (n(at.line()), n(at.column()))
}

// The directives that apply when neither `level` nor `RUST_LOG` says (the
// same for every selftrace product).

/// Where the level of selftrace's layer comes from
/// ([`LogsConfig::level_source`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LevelSource {
    /// `level`, as written.
    Config(LevelFilter),
    /// `RUST_LOG`'s directives, read once when the telemetry is built.
    Env(String),
    /// [`DEFAULT_DIRECTIVES`](selftrace::levels::DEFAULT_DIRECTIVES).
    Default,
}

/// `level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Off,
}

impl LogLevel {
    fn filter(self) -> LevelFilter {
        match self {
            LogLevel::Trace => LevelFilter::TRACE,
            LogLevel::Debug => LevelFilter::DEBUG,
            LogLevel::Info => LevelFilter::INFO,
            LogLevel::Warn => LevelFilter::WARN,
            LogLevel::Error => LevelFilter::ERROR,
            LogLevel::Off => LevelFilter::OFF,
        }
    }
}

/// `internal_collection`: the node logs' buffers, and the defaults of
/// every `internal_telemetry` receiver.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct InternalCollection {
    /// Component logs go to the `internal_telemetry` receivers.
    pub enabled: bool,
    /// The per-thread encoder buffer (default 64 KiB; 1 KiB to 256 MiB).
    #[serde(deserialize_with = "within::<_, MIN_BUFFER_CAPACITY, MAX_BYTES>")]
    pub buffer_size_bytes: usize,
    /// The largest record (default 16383: a 2-byte length; 128 bytes to
    /// 256 MiB, and at most `buffer_size_bytes` less 512).
    #[serde(deserialize_with = "within::<_, MIN_MAX_RECORD_BYTES, MAX_BYTES>")]
    pub max_record_bytes: usize,
    /// The largest string value before truncation (default 8 KiB; 1 byte to
    /// 256 MiB).
    #[serde(deserialize_with = "within::<_, 1, MAX_BYTES>")]
    pub max_value_bytes: usize,
    /// The queue size of a receiver that does not set `channel_capacity`
    /// (requests; default 1000; 1 to 1 000 000).
    #[serde(deserialize_with = "within::<_, 1, MAX_COUNT>")]
    pub max_record_count: usize,
    /// The flush interval of a receiver that does not set
    /// `flush_interval` (default 1 s; 1ms to 1h).
    #[serde(deserialize_with = "interval")]
    pub flush_interval: Duration,
}

impl InternalCollection {
    const DEFAULT: InternalCollection = InternalCollection {
        enabled: false,
        buffer_size_bytes: DEFAULT_BUFFER_CAPACITY,
        max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
        max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
        max_record_count: DEFAULT_CHANNEL_CAPACITY,
        flush_interval: DEFAULT_FLUSH_INTERVAL,
    };
}

impl Default for InternalCollection {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One entry of `processors`: an OpenTelemetry SDK log processor.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SdkProcessor {
    /// `batch`: the SDK's batch processor (its own thread, exports in the
    /// background).
    Batch(ProcessorConfig),
    /// `simple`: exports each record as it comes.
    Simple(ProcessorConfig),
}

impl SdkProcessor {
    /// Whether this is a `batch` processor with an `otlp` exporter, which
    /// selftrace runs natively (the encoded bytes sent as they are, no SDK).
    pub fn is_native_export(&self) -> bool {
        matches!(self, SdkProcessor::Batch(ProcessorConfig { exporter: SdkExporter::Otlp(_) }))
    }

    /// Where a `console` exporter with `format: otlp_json` writes (in a
    /// `batch` or `simple` processor alike: selftrace writes the lines,
    /// synchronously, from the encoded bytes); `None` for any other.
    pub fn otlp_json_console(&self) -> Option<ConsoleStream> {
        match self.exporter() {
            SdkExporter::Console(Some(console)) => console.otlp_json(),
            _ => None,
        }
    }

    /// The processor's exporter.
    pub fn exporter(&self) -> &SdkExporter {
        match self {
            SdkProcessor::Batch(c) | SdkProcessor::Simple(c) => &c.exporter,
        }
    }
}

/// The settings of an [`SdkProcessor`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ProcessorConfig {
    /// `exporter`.
    pub exporter: SdkExporter,
}

/// An SDK exporter.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SdkExporter {
    /// `console:`: without settings (or `format: text`), the OpenTelemetry
    /// SDK's `opentelemetry-stdout`; `console: { format: otlp_json, stream:
    /// stdout }` (stream `stdout` by default), selftrace's OTLP/JSON lines
    /// written from the encoded bytes, no SDK (see
    /// [`selftrace::json`]).
    Console(Option<ConsoleExporter>),
    /// `otlp: { endpoint, protocol }`: `opentelemetry-otlp`.
    Otlp(OtlpExporterConfig),
}

/// The settings of a `console` exporter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "ConsoleAsWritten")]
pub struct ConsoleExporter {
    /// `Some(stream)` for `format: otlp_json`; `None` for the SDK's exporter.
    json: Option<ConsoleStream>,
}

impl ConsoleExporter {
    /// Where OTLP/JSON lines go, for `format: otlp_json`; `None` for the
    /// SDK's `opentelemetry-stdout`.
    pub fn otlp_json(&self) -> Option<ConsoleStream> {
        self.json
    }
}

impl TryFrom<ConsoleAsWritten> for ConsoleExporter {
    type Error = String;

    fn try_from(written: ConsoleAsWritten) -> Result<Self, Self::Error> {
        match (written.format, written.stream) {
            (ConsoleFormatName::Text, None) => Ok(Self { json: None }),
            (ConsoleFormatName::Text, Some(_)) => {
                Err("the SDK's console exporter writes to stdout; `stream` is for `format: otlp_json`".into())
            }
            (ConsoleFormatName::OtlpJson, Some(StreamName::Stderr)) => Ok(Self { json: Some(ConsoleStream::Stderr) }),
            (ConsoleFormatName::OtlpJson, _) => Ok(Self { json: Some(ConsoleStream::Stdout) }),
        }
    }
}

/// `otlp:` exporter settings.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(from = "RawOtlpExporterConfig")]
#[non_exhaustive]
pub struct OtlpExporterConfig {
    /// Where to send. For `http/protobuf`, a URL without a path gets
    /// `/v1/logs`. Left out: `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`, else
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, else the protocol's default.
    pub endpoint: Option<String>,
    /// `http/protobuf`, `http/json` or `grpc`. Left out: `OTEL_EXPORTER_OTLP_LOGS_PROTOCOL`,
    /// else `OTEL_EXPORTER_OTLP_PROTOCOL`, else `http/protobuf`.
    pub protocol: Option<OtlpProtocol>,
    /// Headers (gRPC metadata) of every request. Left out: from
    /// `OTEL_EXPORTER_OTLP_LOGS_HEADERS`, else `OTEL_EXPORTER_OTLP_HEADERS`.
    pub headers: Option<BTreeMap<String, String>>,
    /// `gzip` or `none`. Left out: from `OTEL_EXPORTER_OTLP_*COMPRESSION`,
    /// else `none`.
    pub compression: Option<OtlpCompression>,
    /// The longest one request may take (`10s`, `500ms`). Left out: from
    /// `OTEL_EXPORTER_OTLP_*TIMEOUT`, else 10 s.
    pub timeout: Option<Duration>,
    /// The most bytes the exporter holds in memory. Left out: 32 MiB.
    /// Native export only (a `batch` processor).
    pub max_queue_bytes: Option<usize>,
    /// A disk spool: batches survive an endpoint outage and a crash.
    /// Native export only (a `batch` processor).
    pub spool: Option<SpoolConfig>,
    /// TLS: a private CA, a client certificate (mutual TLS), reloaded when
    /// the files change. Native export only (a `batch` processor).
    pub tls: Option<Box<OtlpTlsConfig>>,
    /// Where each key written stands (line, column), for errors found when
    /// the exporter is built.
    locations: BTreeMap<&'static str, (usize, usize)>,
}

impl OtlpExporterConfig {
    /// Where `key` (`endpoint`, `headers`, ...) is written, if it is.
    #[cfg_attr(
        not(any(feature = "otlp-http", feature = "otlp-grpc")),
        expect(dead_code, reason = "used by the native exporter's setup")
    )]
    pub(crate) fn location_of(&self, key: &str) -> Option<(usize, usize)> {
        self.locations.get(key).copied()
    }
}

/// [`OtlpExporterConfig`] as read, with where its keys stand.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOtlpExporterConfig {
    #[serde(default)]
    endpoint: Option<Spanned<String>>,
    #[serde(default)]
    protocol: Option<OtlpProtocol>,
    #[serde(default)]
    headers: Option<Spanned<BTreeMap<String, String>>>,
    #[serde(default)]
    compression: Option<Spanned<OtlpCompression>>,
    #[serde(default, deserialize_with = "crate::receiver::duration_option")]
    timeout: Option<Duration>,
    #[serde(default, deserialize_with = "within_option::<_, { 64 << 10 }, MAX_BYTES>")]
    max_queue_bytes: Option<usize>,
    #[serde(default)]
    spool: Option<Spanned<SpoolConfig>>,
    #[serde(default)]
    tls: Option<Spanned<OtlpTlsConfig>>,
}

impl From<RawOtlpExporterConfig> for OtlpExporterConfig {
    fn from(raw: RawOtlpExporterConfig) -> Self {
        let mut locations = BTreeMap::new();
        let mut at = |key: &'static str, span: Option<&serde_saphyr::Location>| {
            if let Some(span) = span {
                locations.insert(key, location(span));
            }
        };
        at("endpoint", raw.endpoint.as_ref().map(|s| &s.referenced));
        at("headers", raw.headers.as_ref().map(|s| &s.referenced));
        at("compression", raw.compression.as_ref().map(|s| &s.referenced));
        at("spool", raw.spool.as_ref().map(|s| &s.referenced));
        at("tls", raw.tls.as_ref().map(|s| &s.referenced));
        Self {
            endpoint: raw.endpoint.map(|s| s.value),
            protocol: raw.protocol,
            headers: raw.headers.map(|s| s.value),
            compression: raw.compression.map(|s| s.value),
            timeout: raw.timeout,
            max_queue_bytes: raw.max_queue_bytes,
            spool: raw.spool.map(|s| s.value),
            tls: raw.tls.map(|s| Box::new(s.value)),
            locations,
        }
    }
}

/// `spool:` of an `otlp` exporter: where and how much it keeps on disk (see
/// `selftrace_bridge::OtlpExporterBuilder::with_spool` for the guarantee).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SpoolConfig {
    /// The directory (created `0700` if missing; one exporter at a time).
    pub dir: std::path::PathBuf,
    /// The most bytes on disk; past it the newest batches are refused.
    /// Left out: 1 GiB.
    #[serde(default, deserialize_with = "crate::bounds::spool_bytes_option")]
    pub max_bytes: Option<u64>,
    /// How often the spool is flushed to the disk (`500ms`). Left out:
    /// 500 ms.
    #[serde(default, deserialize_with = "crate::bounds::interval_option")]
    pub sync: Option<Duration>,
}

/// `tls:` of an `otlp` exporter: the Collector's `configtls` settings.
/// Each one left out comes from the environment
/// (`OTEL_EXPORTER_OTLP_[LOGS_]CERTIFICATE`, `..._CLIENT_CERTIFICATE`,
/// `..._CLIENT_KEY`, `..._INSECURE`), else its default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OtlpTlsConfig {
    /// CA certificates (PEM) to trust instead of the platform's roots.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// The client certificate chain (PEM), for mutual TLS; needs `key_file`.
    #[serde(default)]
    pub cert_file: Option<std::path::PathBuf>,
    /// The client certificate's private key (PEM); needs `cert_file`.
    #[serde(default)]
    pub key_file: Option<std::path::PathBuf>,
    /// gRPC to an endpoint without a scheme: plaintext when `true`.
    #[serde(default)]
    pub insecure: Option<bool>,
    /// Accept any server certificate (a test bench only; warned once).
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// The name the server's certificate is checked against, instead of
    /// the endpoint's host.
    #[serde(default)]
    pub server_name: Option<String>,
    /// The lowest TLS version: `"1.2"` (the default) or `"1.3"`.
    #[serde(default)]
    pub min_version: Option<TlsMinVersion>,
    /// How often the certificate files are checked for a change (`60s`,
    /// the default).
    #[serde(default, deserialize_with = "crate::receiver::duration_option")]
    pub reload_interval: Option<Duration>,
}

/// The lowest TLS version an `otlp` exporter accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub enum TlsMinVersion {
    /// TLS 1.2 and 1.3.
    #[serde(rename = "1.2")]
    Tls12,
    /// TLS 1.3 only.
    #[serde(rename = "1.3")]
    Tls13,
}

/// Compression of an `otlp` exporter's requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum OtlpCompression {
    /// gzip.
    Gzip,
    /// None.
    None,
}

/// The OTLP transport.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub enum OtlpProtocol {
    /// `http/protobuf` (the OpenTelemetry default).
    #[default]
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    /// `http/json`: OTLP/JSON bodies (selftrace's own exporter, a `batch`
    /// processor).
    #[serde(rename = "http/json")]
    HttpJson,
    /// `grpc` (needs this crate's `otlp-grpc` feature).
    #[serde(rename = "grpc")]
    Grpc,
}

/// One entry of `nodes`: what a node logs through, and how much.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct NodeOverride {
    /// `default` (the node logs of the mode), `noop`, `console` or `raw`.
    /// Nodes of the anti-recursion zone take `noop`, `console` or `raw`
    /// only.
    #[serde(default, deserialize_with = "node_logger_option")]
    pub logger: Option<NodeLogger>,
    /// The node's most verbose level.
    #[serde(default, deserialize_with = "level_option")]
    pub level: Option<LevelFilter>,
    /// The node's own flood control (of its records and of the third-party
    /// events in its scope), instead of `logs.flood_control`.
    #[serde(default)]
    pub flood_control: Option<FloodControl>,
}

/// A [`NodeLogger`] as the configuration names it: `default`, `noop`,
/// `console` or `raw`.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum LoggerName {
    Default,
    Noop,
    Console,
    Raw,
}

impl From<LoggerName> for NodeLogger {
    fn from(name: LoggerName) -> Self {
        match name {
            LoggerName::Default => NodeLogger::Default,
            LoggerName::Noop => NodeLogger::Noop,
            LoggerName::Console => NodeLogger::Console,
            LoggerName::Raw => NodeLogger::Raw,
        }
    }
}

fn node_logger<'de, D: serde::Deserializer<'de>>(d: D) -> Result<NodeLogger, D::Error> {
    LoggerName::deserialize(d).map(NodeLogger::from)
}

fn node_logger_option<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<NodeLogger>, D::Error> {
    Option::<LoggerName>::deserialize(d).map(|l| l.map(NodeLogger::from))
}

fn level_option<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<LevelFilter>, D::Error> {
    Option::<LogLevel>::deserialize(d).map(|l| l.map(LogLevel::filter))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn logs(yaml: &str) -> Result<LogsConfig, YamlError> {
        ServiceConfig::from_yaml("t.yaml", yaml).map(|c| c.telemetry.logs)
    }

    #[test]
    fn an_empty_document_is_sdk_only_to_the_console() {
        let config = ServiceConfig::from_yaml("t.yaml", "").unwrap();
        assert_eq!(config.telemetry.logs.mode(), Mode::SdkOnly);
        assert_eq!(
            config.telemetry.logs.processors(),
            &[SdkProcessor::Batch(ProcessorConfig { exporter: SdkExporter::Console(None) })]
        );
        assert_eq!(config.telemetry.logs.written_level(), None);
    }

    #[test]
    fn the_four_combinations_give_the_four_modes() {
        let doc = |enabled: bool, processors: &str| {
            format!(
                "service:\n  telemetry:\n    logs:\n      internal_collection:\n        enabled: {enabled}\n      processors: {processors}\n"
            )
        };
        let some = "[{simple: {exporter: {console: }}}]";
        assert_eq!(logs(&doc(false, some)).unwrap().mode(), Mode::SdkOnly);
        assert_eq!(logs(&doc(true, some)).unwrap().mode(), Mode::Hybrid);
        assert_eq!(logs(&doc(true, "[]")).unwrap().mode(), Mode::ItrOnly);
        assert_eq!(logs(&doc(false, "[]")).unwrap().mode(), Mode::Console);
    }

    #[test]
    fn overrides_and_protocols_parse() {
        let config = logs(
            "service:\n  telemetry:\n    logs:\n      level: debug\n      processors:\n        - simple:\n            exporter:\n              otlp:\n                endpoint: http://127.0.0.1:4317\n                protocol: grpc\n      nodes:\n        main/exporter: { logger: raw, level: error }\n",
        )
        .unwrap();
        assert_eq!(config.written_level(), Some(LevelFilter::DEBUG));
        let SdkExporter::Otlp(otlp) = config.processors()[0].exporter() else { panic!("otlp") };
        assert_eq!(otlp.protocol, Some(OtlpProtocol::Grpc));
        let (id, o) = config.nodes().next().unwrap();
        assert_eq!((id, o.logger, o.level), ("main/exporter", Some(NodeLogger::Raw), Some(LevelFilter::ERROR)));
        assert_eq!(config.node_location("main/exporter"), Some((12, 24)));
    }
}
