//! The `service.telemetry` section of an engine's configuration, and the
//! routing mode it selects.

use std::{collections::BTreeMap, fmt, time::Duration};

use selftrace::{
    DEFAULT_CHANNEL_CAPACITY, NodeLogger,
    encoder::{DEFAULT_BUFFER_CAPACITY, DEFAULT_MAX_RECORD_BYTES, DEFAULT_MAX_VALUE_BYTES},
    flood::FloodLimit,
};
use serde::Deserialize;
use serde_saphyr::Spanned;
use tracing_core::LevelFilter;

mod yaml;

pub use self::yaml::{YamlError, from_yaml};
use crate::receiver::{DEFAULT_FLUSH_INTERVAL, duration};

/// The `service` section of an engine's configuration: the part selftrace
/// reads. An engine embeds it in its own configuration type, or reads a
/// whole document with [`ServiceConfig::from_yaml`].
///
/// ```yaml
/// service:
///   telemetry:
///     resource:                      # resource attributes of every request
///       service.name: my-engine
///     logs:
///       level: info                  # trace, debug, info, warn, error, off
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
///                 protocol: http/protobuf   # or grpc
///       startup_buffer_bytes: 1048576 # ITR only: events kept until the receivers are mounted
///       flood_control:               # repeated events past 10 per 10 s are summarised
///         events: 10
///         window: 10s
///       nodes:                       # per-node overrides
///         main/exporter/otlp: { logger: console, level: debug, flood_control: { enabled: false } }
/// ```
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
}

/// `service.telemetry.logs`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsConfig {
    #[serde(default)]
    level: LogLevel,
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
    #[serde(default)]
    startup_buffer_bytes: Option<usize>,
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

    /// `level`: the most verbose level collected (default `info`).
    pub fn level(&self) -> LevelFilter {
        self.level.filter()
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

/// `level`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum LogLevel {
    Trace,
    Debug,
    #[default]
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
    /// The per-thread encoder buffer (default 64 KiB).
    pub buffer_size_bytes: usize,
    /// The largest record (default 16383: a 2-byte length).
    pub max_record_bytes: usize,
    /// The largest string value before truncation (default 8 KiB).
    pub max_value_bytes: usize,
    /// The queue size of a receiver that does not set `channel_capacity`
    /// (requests; default 1000).
    pub max_record_count: usize,
    /// The flush interval of a receiver that does not set
    /// `flush_interval` (default 1 s).
    #[serde(deserialize_with = "duration")]
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
    /// `console:` (no settings): `opentelemetry-stdout`.
    Console(Option<NoSettings>),
    /// `otlp: { endpoint, protocol }`: `opentelemetry-otlp`.
    Otlp(OtlpExporterConfig),
}

/// An exporter that takes no settings (`console:` or `console: {}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}

/// `otlp:` exporter settings.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OtlpExporterConfig {
    /// Where to send. For `http/protobuf`, a URL without a path gets
    /// `/v1/logs`. Left out: `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`, else
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, else the protocol's default.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// `http/protobuf` or `grpc`. Left out: `OTEL_EXPORTER_OTLP_LOGS_PROTOCOL`,
    /// else `OTEL_EXPORTER_OTLP_PROTOCOL`, else `http/protobuf`.
    #[serde(default)]
    pub protocol: Option<OtlpProtocol>,
    /// Headers (gRPC metadata) of every request. Left out: from
    /// `OTEL_EXPORTER_OTLP_LOGS_HEADERS`, else `OTEL_EXPORTER_OTLP_HEADERS`.
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    /// `gzip` or `none`. Left out: from `OTEL_EXPORTER_OTLP_*COMPRESSION`,
    /// else `none`.
    #[serde(default)]
    pub compression: Option<OtlpCompression>,
    /// The longest one request may take (`10s`, `500ms`). Left out: from
    /// `OTEL_EXPORTER_OTLP_*TIMEOUT`, else 10 s.
    #[serde(default, deserialize_with = "crate::receiver::duration_option")]
    pub timeout: Option<Duration>,
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
        assert_eq!(config.telemetry.logs.level(), LevelFilter::INFO);
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
        assert_eq!(config.level(), LevelFilter::DEBUG);
        let SdkExporter::Otlp(otlp) = config.processors()[0].exporter() else { panic!("otlp") };
        assert_eq!(otlp.protocol, Some(OtlpProtocol::Grpc));
        let (id, o) = config.nodes().next().unwrap();
        assert_eq!((id, o.logger, o.level), ("main/exporter", Some(NodeLogger::Raw), Some(LevelFilter::ERROR)));
        assert_eq!(config.node_location("main/exporter"), Some((12, 24)));
    }
}
