//! [`SelfTelemetry`]: the admin side. It resolves the routing mode from a
//! [`TelemetryConfig`] and the engine's pipeline graph, builds what the mode
//! needs (SDK bridge, node path, receivers, the layer) and wires it.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    sync::Mutex,
};

use selftrace::{
    Destination, DestinationHandle, EncoderLimits, LayerMetrics, LocalTelemetry, Node, NodeLogger, NodeMetrics,
    NodePath, OtlpTracingLayer, SharedTelemetry,
};
use tracing_core::{Metadata, Subscriber};
use tracing_subscriber::{Layer, filter::filter_fn, registry::LookupSpan};

use crate::{
    config::{LoggerChoice, LogsConfig, Mode, SdkExporter, SdkProcessor, TelemetryConfig},
    receiver::{ConfigError, InternalTelemetryReceiver, ReceiverConfig, ReceiverMetrics, ReceiverSettings},
    telemetry::{InternalTelemetry, RECEIVER_NAME},
    zone::Zone,
};

/// An engine's self telemetry, wired for the [`Mode`] its configuration
/// selects.
///
/// The engine describes its pipeline graph (every node, the
/// `internal_telemetry` receivers with their settings, the edges), then:
///
/// 1. installs [`layer`](Self::layer) in its `tracing` subscriber;
/// 2. creates each node with [`node`](Self::node) and its telemetry with
///    [`shared`](Self::shared) or [`local`](Self::local): the node's id, its
///    overrides from `nodes:`, and the anti-recursion zone applied;
/// 3. mounts each receiver it gets from
///    [`take_receiver`](Self::take_receiver);
/// 4. at shutdown, calls [`begin_shutdown`](Self::begin_shutdown) (the layer
///    goes back to the console: third-party events no longer need the
///    receivers), stops its pipelines (each receiver drains), then
///    [`shutdown`](Self::shutdown) (the node path and the SDK drain).
///
/// | mode | node path (component logs) | layer (third-party logs) |
/// |---|---|---|
/// | SDK only | the processors | the processors |
/// | hybrid | receivers | the processors |
/// | ITR only | receivers | receivers, transport crates outside nodes filtered out |
/// | console | console | console |
///
/// "The processors" are selftrace's own [`OtlpExporter`](selftrace_bridge::OtlpExporter)
/// for each `batch` processor with an `otlp` exporter (the bytes as they
/// are, no SDK), and the SDK bridge for the others (`simple`, `console`) or
/// for a provider given with `with_sdk_provider`; each gets every record.
/// With one `otlp` exporter and nothing else, the layer and the node path
/// batch in that exporter's per-thread buffers, which it flushes on its
/// timer.
///
/// In ITR-only mode the layer starts on the console and is swapped to the
/// router once the receivers exist, through its destination handle; every
/// event goes to exactly one of the two.
///
/// # Errors at build
///
/// Every configuration that would loop or lose logs is a [`SetupError`]
/// naming the key path and, where written, its line and column: an
/// `internal_telemetry` receiver with `internal_collection.enabled: false`
/// (or none with `true`), a `nodes:` override giving a node of the zone a
/// logger that feeds the receivers, an override for a node that does not
/// exist, an edge into a receiver, limits out of range, an exporter that
/// cannot be built.
///
/// # Examples
///
/// ```
/// use selftrace::otel_info;
/// use selftrace_itr::{Mode, ReceiverSettings, SelfTelemetry, ServiceConfig};
/// use tracing_subscriber::layer::SubscriberExt as _;
///
/// let config = ServiceConfig::from_yaml(
///     "service.yaml",
///     "service:\n  telemetry:\n    logs:\n      internal_collection: { enabled: true }\n      processors: []\n",
/// )?;
/// let telemetry = SelfTelemetry::builder(&config.telemetry)
///     .with_service_name("my-engine")
///     .receiver("itr", ReceiverSettings::default())
///     .node("itr/exporter")
///     .edge("itr", "itr/exporter")
///     .node("main/receiver")
///     .build()?;
/// assert_eq!(telemetry.mode(), Mode::ItrOnly);
/// let subscriber = tracing_subscriber::registry().with(telemetry.layer());
///
/// let node = telemetry.shared("main/receiver")?;
/// otel_info!(node, "receiver.started", port = 4317_i64);
/// let receiver = telemetry.take_receiver("itr").unwrap(); // mount it in the engine
/// # drop((receiver, subscriber));
/// telemetry.begin_shutdown();
/// let metrics = telemetry.shutdown();
/// assert_eq!(metrics.node_path.events_received(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SelfTelemetry {
    mode: Mode,
    zone_logger: NodeLogger,
    logs: LogsConfig,
    zone: Zone,
    nodes: BTreeSet<String>,
    path: NodePath,
    layer: OtlpTracingLayer,
    handle: DestinationHandle,
    internal: Option<InternalTelemetry>,
    receivers: Mutex<BTreeMap<String, InternalTelemetryReceiver>>,
    #[cfg(feature = "sdk")]
    bridge: Option<selftrace_bridge::SdkBridge>,
    #[cfg(any(feature = "otlp-http", feature = "otlp-grpc"))]
    exporters: Vec<selftrace_bridge::OtlpExporter>,
}

/// What [`SelfTelemetry::builder`] collects.
#[derive(Debug)]
#[must_use = "a builder does nothing until built"]
pub struct SelfTelemetryBuilder {
    config: TelemetryConfig,
    service_name: String,
    nodes: BTreeSet<String>,
    receivers: Vec<(String, ReceiverSettings)>,
    edges: Vec<(String, String)>,
    #[cfg(feature = "sdk")]
    provider: Option<opentelemetry_sdk::logs::SdkLoggerProvider>,
}

/// A configuration [`SelfTelemetry`] cannot run: where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetupError {
    path: String,
    at: Option<(usize, usize)>,
    message: String,
    cause: Option<Cause>,
}

/// The error another one wraps, for [`source`](std::error::Error::source).
/// Not compared: two errors are equal when what they say is.
#[derive(Clone)]
struct Cause(std::sync::Arc<dyn std::error::Error + Send + Sync>);

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl PartialEq for Cause {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Cause {}

impl SetupError {
    fn new(path: impl Into<String>, at: Option<(usize, usize)>, message: impl Into<String>) -> Self {
        Self { path: path.into(), at, message: message.into(), cause: None }
    }

    /// This error, caused by `cause`.
    fn caused_by(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.cause = Some(Cause(std::sync::Arc::new(cause)));
        self
    }

    /// The key path at fault, e.g. `service.telemetry.logs.nodes.x.logger`,
    /// or `pipelines` for the graph.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Line and column (from 1), when the key is written in the source.
    pub fn location(&self) -> Option<(usize, usize)> {
        self.at
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some((line, column)) => write!(f, "`{}` (line {line}, column {column}): {}", self.path, self.message),
            None => write!(f, "`{}`: {}", self.path, self.message),
        }
    }
}

impl std::error::Error for SetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_ref().map(|c| &*c.0 as &(dyn std::error::Error + 'static))
    }
}

const LOGS: &str = "service.telemetry.logs";

/// `processors` entries with their index.
type Processors<'a> = Vec<(usize, &'a SdkProcessor)>;

impl SelfTelemetry {
    /// Starts describing an engine configured by `config`.
    pub fn builder(config: &TelemetryConfig) -> SelfTelemetryBuilder {
        SelfTelemetryBuilder {
            config: config.clone(),
            service_name: "unknown_service".into(),
            nodes: BTreeSet::new(),
            receivers: Vec::new(),
            edges: Vec::new(),
            #[cfg(feature = "sdk")]
            provider: None,
        }
    }

    /// The routing mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The layer for the engine's `tracing` subscriber, at the configured
    /// level. Where logs are exported over the network (the ITR, an `otlp`
    /// exporter, a provider of the engine's own), the transport crates'
    /// events (`service.telemetry.logs.transport`) are kept out of it,
    /// counted as discarded, or printed when the configuration asks. Every
    /// call gives the same layer.
    pub fn layer<S>(&self) -> impl Layer<S> + use<S>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let level = self.logs.level();
        let level_filter = filter_fn(move |meta: &Metadata<'_>| *meta.level() <= level).with_max_level_hint(level);
        self.layer.clone().with_filter(level_filter)
    }

    /// The node `id`, with its `nodes:` override and the zone's rules: a
    /// node of the anti-recursion zone logs through its receiver's
    /// pipeline logger (at ERROR at most), any other through the mode's
    /// node path unless overridden.
    ///
    /// # Errors
    ///
    /// Only for a node the builder was not told about and that the zone
    /// rejects; the overrides were checked at build.
    pub fn node(&self, id: &str) -> Result<Node, SetupError> {
        let o = self.logs.node(id).copied().unwrap_or_default();
        let logger = o.logger.map(NodeLogger::from);
        let node = if self.zone.contains(id) {
            let node = zone_node(&self.zone, &self.logs, id)?;
            match o.level {
                Some(level) => {
                    let capped = level.min(node.max_level());
                    node.with_max_level(capped)
                }
                None => node,
            }
        } else {
            let node = Node::new(id).with_logger(logger.unwrap_or(NodeLogger::Default));
            node.with_max_level(o.level.unwrap_or(self.logs.level()))
        };
        Ok(node)
    }

    /// [`node`](Self::node)'s telemetry for a `Send` node.
    ///
    /// # Errors
    ///
    /// As for [`node`](Self::node).
    pub fn shared(&self, id: &str) -> Result<SharedTelemetry, SetupError> {
        Ok(self.path.shared(self.node(id)?))
    }

    /// [`node`](Self::node)'s telemetry for a `!Send` node (per-thread
    /// buffers flushed on the thread that logs).
    ///
    /// # Errors
    ///
    /// As for [`node`](Self::node).
    pub fn local(&self, id: &str) -> Result<LocalTelemetry, SetupError> {
        Ok(self.path.local(self.node(id)?))
    }

    /// The logger for the zone's threads: give
    /// `selftrace::pipeline::zone_thread_start(telemetry.zone_logger())` to the
    /// runtime the internal pipelines run on (the receivers' pipeline
    /// logger: `Noop` unless one asks for `console` or `raw`).
    pub fn zone_logger(&self) -> NodeLogger {
        self.zone_logger
    }

    /// The node path component logs go through.
    pub fn node_path(&self) -> &NodePath {
        &self.path
    }

    /// The `internal_telemetry` receiver `id`, once, for the engine to
    /// mount. `None` when there is no such receiver or it was taken.
    pub fn take_receiver(&self, id: &str) -> Option<InternalTelemetryReceiver> {
        self.receivers.lock().unwrap_or_else(|p| p.into_inner()).remove(id)
    }

    /// Counters of everything, at any time.
    pub fn metrics(&self) -> SelfTelemetryMetrics {
        SelfTelemetryMetrics {
            mode: self.mode,
            layer: self.handle.metrics(),
            node_path: self.path.metrics(),
            receivers: self.internal.as_ref().map(|i| i.metrics().receivers).unwrap_or_default(),
            #[cfg(feature = "sdk")]
            sdk: self.bridge.as_ref().map(|b| b.metrics()),
            #[cfg(any(feature = "otlp-http", feature = "otlp-grpc"))]
            exporters: self.exporters.iter().map(|e| e.metrics()).collect(),
        }
    }

    /// The first step of shutdown: the layer goes back to the console, so
    /// that third-party events keep a destination while the receivers and
    /// the SDK stop. Idempotent.
    pub fn begin_shutdown(&self) {
        let _ = self.handle.set(Destination::Console);
    }

    /// The last step: the node path drains into its destination and shuts
    /// down (later component logs are counted as dropped), then the SDK
    /// bridge emits what it holds and shuts its provider down. Call it
    /// after the engine's pipelines (and so the receivers) have stopped.
    pub fn shutdown(&self) -> SelfTelemetryMetrics {
        self.begin_shutdown();
        self.path.shutdown();
        #[cfg(any(feature = "otlp-http", feature = "otlp-grpc"))]
        for exporter in &self.exporters {
            if let Err(error) = exporter.shutdown() {
                selftrace::raw::write_raw_note("selftrace-itr", format_args!("OTLP exporter shutdown: {error}"));
            }
        }
        #[cfg(feature = "sdk")]
        if let Some(bridge) = &self.bridge
            && let Err(error) = bridge.shutdown()
        {
            selftrace::raw::write_raw_note("selftrace-itr", format_args!("SDK bridge shutdown: {error}"));
        }
        self.metrics()
    }
}

/// Node `id` of the zone with its `nodes:` logger, or the error naming
/// where that logger is written (`default` would feed the receivers with
/// their own pipeline's logs).
fn zone_node(zone: &Zone, logs: &LogsConfig, id: &str) -> Result<Node, SetupError> {
    let logger = logs.node(id).and_then(|o| o.logger).map(NodeLogger::from);
    zone.node(id, logger).map_err(|e| {
        SetupError::new(format!("{LOGS}.nodes.{id}.logger"), logs.node_location(id), e.to_string()).caused_by(e)
    })
}

/// A receiver's settings out of range, named by the receiver.
fn invalid_receiver(id: &str, error: &ConfigError) -> SetupError {
    SetupError::new(format!("pipelines.{id}.{}", error.key()), None, error.to_string()).caused_by(error.clone())
}

impl fmt::Debug for SelfTelemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelfTelemetry")
            .field("mode", &self.mode)
            .field("nodes", &self.nodes)
            .field("metrics", &self.metrics())
            .finish_non_exhaustive()
    }
}

/// A snapshot of every counter of a [`SelfTelemetry`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SelfTelemetryMetrics {
    /// The routing mode.
    pub mode: Mode,
    /// The layer: third-party events.
    pub layer: LayerMetrics,
    /// The node path: component logs. With one `otlp` exporter and no
    /// other processor, the exporter's per-thread buffers, which the layer's
    /// events go through too.
    pub node_path: NodeMetrics,
    /// Every `internal_telemetry` receiver, also those that have stopped.
    pub receivers: Vec<ReceiverMetrics>,
    /// The SDK bridge, when a processor goes through the SDK (`console`,
    /// `simple`, or a provider of the engine's own).
    #[cfg(feature = "sdk")]
    pub sdk: Option<selftrace_bridge::BridgeMetrics>,
    /// The native OTLP exporters (`batch` processors with an `otlp`
    /// exporter), in `processors` order.
    #[cfg(any(feature = "otlp-http", feature = "otlp-grpc"))]
    pub exporters: Vec<selftrace_bridge::ExporterMetrics>,
}

impl SelfTelemetryBuilder {
    /// The `service.name` of every request, unless the configuration's
    /// `resource` sets one.
    pub fn with_service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = name.into();
        self
    }

    /// The SDK modes use `provider` instead of one built from
    /// `processors` (which still select the mode): several exporters of
    /// your own, custom processors, an in-memory exporter in tests.
    #[cfg(feature = "sdk")]
    pub fn with_sdk_provider(mut self, provider: opentelemetry_sdk::logs::SdkLoggerProvider) -> Self {
        self.provider = Some(provider);
        self
    }

    /// A node of the engine's pipeline graph.
    pub fn node(mut self, id: impl Into<String>) -> Self {
        self.nodes.insert(id.into());
        self
    }

    /// An `internal_telemetry` receiver of the graph, with the settings its
    /// pipeline entry writes (the rest from `internal_collection`).
    pub fn receiver(mut self, id: impl Into<String>, settings: ReceiverSettings) -> Self {
        let id = id.into();
        self.nodes.insert(id.clone());
        self.receivers.push((id, settings));
        self
    }

    /// An edge of the graph: `from` sends its output to `to`.
    pub fn edge(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.edges.push((from.into(), to.into()));
        self
    }

    /// Resolves the mode, checks the configuration against the graph, and
    /// builds and wires everything.
    ///
    /// # Errors
    ///
    /// See [`SelfTelemetry`].
    pub fn build(self) -> Result<SelfTelemetry, SetupError> {
        let logs = self.config.logs.clone();
        let mode = logs.mode();
        let collection = logs.internal_collection();
        let ic_path = format!("{LOGS}.internal_collection");

        // The mode and the graph agree.
        if mode.collects_internally() && self.receivers.is_empty() {
            return Err(SetupError::new(
                format!("{ic_path}.enabled"),
                logs.internal_collection_location(),
                format!(
                    "internal collection is enabled but no pipeline has an `{RECEIVER_NAME}` receiver: component logs would go nowhere"
                ),
            ));
        }
        if !mode.collects_internally()
            && let Some((id, _)) = self.receivers.first()
        {
            return Err(SetupError::new(
                format!("{ic_path}.enabled"),
                logs.internal_collection_location(),
                format!(
                    "receiver `{id}` is an `{RECEIVER_NAME}` receiver but internal collection is not enabled: set `enabled: true`, or remove the receiver"
                ),
            ));
        }

        // Where logs leave over the network, the transport crates' events
        // must not follow them.
        #[cfg(feature = "sdk")]
        let own_provider = self.provider.is_some();
        #[cfg(not(feature = "sdk"))]
        let own_provider = false;
        let exports = mode.collects_internally()
            || own_provider
            || logs.processors().iter().any(|p| matches!(p.exporter(), SdkExporter::Otlp(_)));
        if exports && logs.transport().logger == LoggerChoice::Default {
            return Err(SetupError::new(
                format!("{LOGS}.transport.logger"),
                logs.transport_location(),
                "the transport crates' events cannot go where logs are exported: every export would log more of them for the next one (a feedback loop); use `console` or `raw` to see them",
            ));
        }

        let limits =
            EncoderLimits::new(collection.buffer_size_bytes, collection.max_record_bytes, collection.max_value_bytes)
                .map_err(|e| {
                SetupError::new(ic_path.clone(), logs.internal_collection_location(), e.to_string()).caused_by(e)
            })?;
        let defaults = ReceiverConfig {
            flush_interval: collection.flush_interval,
            channel_capacity: collection.max_record_count,
            ..ReceiverConfig::default()
        };
        let receiver_configs: Vec<(String, ReceiverConfig)> =
            self.receivers.iter().map(|(id, s)| (id.clone(), s.resolve(defaults.clone()))).collect();
        for (id, config) in &receiver_configs {
            config.validate().map_err(|e| invalid_receiver(id, &e))?;
        }
        // The most verbose of the receivers' pipeline loggers.
        let zone_logger = receiver_configs
            .iter()
            .map(|(_, c)| c.logger.node_logger())
            .max_by_key(|l| match l {
                NodeLogger::Console => 2,
                NodeLogger::Raw => 1,
                _ => 0,
            })
            .unwrap_or(NodeLogger::Noop);

        // The zone, and every override checked against it.
        let mut zone = Zone::builder();
        for (id, config) in &receiver_configs {
            zone = zone.receiver(id.clone(), config.logger);
        }
        for (from, to) in &self.edges {
            zone = zone.edge(from.clone(), to.clone());
        }
        let zone = zone.build().map_err(|e| SetupError::new("pipelines", None, e.to_string()).caused_by(e))?;
        for (id, _) in logs.nodes() {
            if !self.nodes.contains(id) {
                let known: Vec<&str> = self.nodes.iter().map(String::as_str).collect();
                return Err(SetupError::new(
                    format!("{LOGS}.nodes.{id}"),
                    logs.node_location(id),
                    format!("no node `{id}` in the pipelines (nodes: {})", known.join(", ")),
                ));
            }
            if zone.contains(id) {
                zone_node(&zone, &logs, id)?;
            }
        }

        // The resource.
        let service_name =
            self.config.resource.get("service.name").cloned().unwrap_or_else(|| self.service_name.clone());
        let attributes: Vec<(String, String)> = self
            .config
            .resource
            .iter()
            .filter(|(k, _)| k.as_str() != "service.name")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        macro_rules! described {
            ($builder:expr) => {{
                let mut b = $builder.with_service_name(service_name.clone()).with_limits(limits);
                for (k, v) in &attributes {
                    b = b.with_resource_attribute(k.clone(), v.clone());
                }
                b
            }};
        }

        // The SDK modes: `batch` processors with an `otlp` exporter are
        // native exporters (the bytes as they are); the others go through
        // the SDK bridge, and so does everything when the engine gives its
        // own provider.
        let (native, through_sdk): (Processors<'_>, Processors<'_>) =
            logs.processors().iter().enumerate().partition(|(_, p)| !own_provider && p.is_native_export());
        #[cfg(any(feature = "otlp-http", feature = "otlp-grpc"))]
        let exporters = native
            .iter()
            .map(|(i, p)| {
                export::exporter(&logs, *i, p.exporter(), described!(selftrace_bridge::OtlpExporter::builder()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        #[cfg(not(any(feature = "otlp-http", feature = "otlp-grpc")))]
        if let Some((i, _)) = native.first() {
            return Err(SetupError::new(
                format!("{LOGS}.processors[{i}].exporter.otlp"),
                logs.processors_location(),
                "the `otlp` exporter needs the `otlp-http` or `otlp-grpc` feature of selftrace-itr",
            ));
        }
        #[cfg(feature = "sdk")]
        let bridge = if through_sdk.is_empty() && !own_provider {
            None
        } else {
            let mut resource = opentelemetry_sdk::Resource::builder().with_service_name(service_name.clone());
            for (k, v) in &attributes {
                resource = resource.with_attribute(opentelemetry::KeyValue::new(k.clone(), v.clone()));
            }
            let provider = match self.provider {
                Some(provider) => provider,
                None => sdk::provider(&logs, &through_sdk, resource.build())?,
            };
            let bridge = selftrace_bridge::SdkBridge::builder(provider).spawn().map_err(|e| {
                SetupError::new(format!("{LOGS}.processors"), logs.processors_location(), e.to_string())
            })?;
            Some(bridge)
        };
        #[cfg(not(feature = "sdk"))]
        if !through_sdk.is_empty() {
            return Err(SetupError::new(
                format!("{LOGS}.processors"),
                logs.processors_location(),
                "SDK processors need the `sdk` feature of selftrace-itr (or `processors: []`)",
            ));
        }
        #[cfg_attr(not(feature = "sdk"), expect(unused_mut, reason = "filled by the SDK features"))]
        let mut exporting: Vec<Destination> = Vec::new();
        #[cfg(any(feature = "otlp-http", feature = "otlp-grpc"))]
        exporting.extend(exporters.iter().map(|e| e.destination()));
        #[cfg(feature = "sdk")]
        exporting.extend(bridge.as_ref().map(|b| b.destination()));
        let sdk_destination = fanout::destination(exporting);
        // One native exporter and nothing else: the layer's events and the
        // nodes' records batch in its per-thread buffers, which it flushes.
        #[cfg(any(feature = "otlp-http", feature = "otlp-grpc"))]
        let exporter_path = match &exporters[..] {
            [exporter] if bridge.is_none() => Some(exporter.node_path()),
            _ => None,
        };
        #[cfg(not(any(feature = "otlp-http", feature = "otlp-grpc")))]
        let exporter_path: Option<NodePath> = None;

        // The node path, the receivers and the layer.
        let internal = mode
            .collects_internally()
            .then(|| described!(InternalTelemetry::builder()).with_max_level(logs.level()).build());
        let mut receivers = BTreeMap::new();
        if let Some(internal) = &internal {
            for (id, config) in receiver_configs {
                let receiver = internal.receiver(&id, config).map_err(|e| invalid_receiver(&id, &e))?;
                receivers.insert(id, receiver);
            }
        }
        let path = match (&internal, &exporter_path, &sdk_destination) {
            (Some(internal), ..) => internal.node_path().clone(),
            (None, Some(path), _) => path.clone(),
            (None, None, Some(sdk)) => described!(NodePath::builder(sdk.clone())).with_max_level(logs.level()).build(),
            (None, None, None) => {
                described!(NodePath::builder(Destination::Console)).with_max_level(logs.level()).build()
            }
        };
        // ITR only: on the console until the receivers exist, then swapped.
        let initial = match &exporter_path {
            Some(path) => Destination::Buffered(path.clone()),
            None => sdk_destination.unwrap_or(Destination::Console),
        };
        let mut layer = described!(OtlpTracingLayer::builder(initial));
        if exports {
            let transport = logs.transport();
            layer = layer.with_denied_targets_to(
                transport.targets,
                NodeLogger::from(transport.logger),
                transport.level.unwrap_or(tracing_core::LevelFilter::WARN),
            );
        }
        let layer = layer.build();
        let handle = layer.handle();
        if mode == Mode::ItrOnly
            && let Some(internal) = &internal
        {
            let _ = handle.set(internal.destination());
        }

        Ok(SelfTelemetry {
            mode,
            zone_logger,
            logs,
            zone,
            nodes: self.nodes,
            path,
            layer,
            handle,
            internal,
            receivers: Mutex::new(receivers),
            #[cfg(feature = "sdk")]
            bridge,
            #[cfg(any(feature = "otlp-http", feature = "otlp-grpc"))]
            exporters,
        })
    }
}

/// The destination of the exporting side: one exporter or bridge as it is,
/// several through a fan-out, none: the console.
mod fanout {
    use std::sync::Arc;

    use selftrace::{Destination, OtlpBytes, OtlpBytesSender, TrySendError, channel::OtlpSink};

    pub(super) fn destination(mut destinations: Vec<Destination>) -> Option<Destination> {
        if destinations.len() <= 1 {
            return destinations.pop();
        }
        let senders = destinations
            .into_iter()
            .filter_map(|d| match d {
                Destination::Channel(sender) => Some(sender),
                _ => None,
            })
            .collect();
        Some(Destination::Channel(OtlpBytesSender::from_sink(Arc::new(Fanout(senders)))))
    }

    /// Every request to every sender (a `Bytes` clone each); each counts
    /// its own refusals.
    #[derive(Debug)]
    struct Fanout(Vec<OtlpBytesSender>);

    impl OtlpSink for Fanout {
        fn try_send(&self, bytes: OtlpBytes) -> Result<(), TrySendError> {
            let (mut taken, mut full) = (false, false);
            for sender in &self.0 {
                match sender.try_send(bytes.clone()) {
                    Ok(()) => taken = true,
                    Err(e) => full |= e.is_full(),
                }
            }
            match (taken, full) {
                (true, _) => Ok(()),
                (false, true) => Err(TrySendError::Full(bytes)),
                (false, false) => Err(TrySendError::Closed(bytes)),
            }
        }

        fn capacity(&self) -> usize {
            self.0.iter().map(OtlpBytesSender::capacity).min().unwrap_or(0)
        }

        fn queued(&self) -> usize {
            self.0.iter().map(OtlpBytesSender::len).max().unwrap_or(0)
        }

        fn is_closed(&self) -> bool {
            self.0.iter().all(OtlpBytesSender::is_closed)
        }
    }
}

/// `batch` processors with an `otlp` exporter: selftrace's own exporter.
#[cfg(any(feature = "otlp-http", feature = "otlp-grpc"))]
mod export {
    use selftrace_bridge::{
        OtlpExporter, OtlpExporterBuilder,
        export::{Compression, ExportError, Protocol},
    };

    use super::{LOGS, SetupError};
    use crate::config::{LogsConfig, OtlpCompression, OtlpProtocol, SdkExporter};

    /// The exporter of `processors[i]`, from `builder` (the resource and
    /// limits set).
    pub(super) fn exporter(
        logs: &LogsConfig,
        i: usize,
        exporter: &SdkExporter,
        mut builder: OtlpExporterBuilder,
    ) -> Result<OtlpExporter, SetupError> {
        let path = format!("{LOGS}.processors[{i}].exporter.otlp");
        let SdkExporter::Otlp(otlp) = exporter else {
            return Err(SetupError::new(path, logs.processors_location(), "not an otlp exporter"));
        };
        if let Some(protocol) = otlp.protocol {
            let (protocol, feature, built) = match protocol {
                OtlpProtocol::HttpProtobuf => (Protocol::HttpProtobuf, "otlp-http", cfg!(feature = "otlp-http")),
                OtlpProtocol::Grpc => (Protocol::Grpc, "otlp-grpc", cfg!(feature = "otlp-grpc")),
            };
            if !built {
                return Err(SetupError::new(
                    format!("{path}.protocol"),
                    logs.processors_location(),
                    format!("this protocol needs the `{feature}` feature of selftrace-itr"),
                ));
            }
            builder = builder.with_protocol(protocol);
        }
        if let Some(endpoint) = &otlp.endpoint {
            builder = builder.with_endpoint(match otlp.protocol {
                Some(OtlpProtocol::Grpc) => endpoint.clone(),
                _ => super::sdk::with_logs_path(endpoint),
            });
        }
        for (name, value) in otlp.headers.iter().flatten() {
            builder = builder.with_header(name.clone(), value.clone());
        }
        if let Some(compression) = otlp.compression {
            builder = builder.with_compression(match compression {
                OtlpCompression::Gzip => Compression::Gzip,
                OtlpCompression::None => Compression::None,
            });
        }
        if let Some(timeout) = otlp.timeout {
            builder = builder.with_timeout(timeout);
        }
        builder.build().map_err(|e| match e {
            // A builder setting is a key under this exporter; an
            // environment variable is named as it is.
            ExportError::Config(c) if c.key.starts_with("OTEL_") => {
                SetupError::new(c.key.clone(), None, format!("{} (read for {path})", c.message))
            }
            ExportError::Config(c) => {
                SetupError::new(format!("{path}.{}", c.key), logs.processors_location(), c.message)
            }
            other => SetupError::new(path, logs.processors_location(), other.to_string()),
        })
    }
}

#[cfg(feature = "sdk")]
mod sdk {
    use opentelemetry_sdk::{
        Resource,
        logs::{LogExporter, LoggerProviderBuilder, SdkLoggerProvider},
    };

    use super::{LOGS, SetupError};
    use crate::config::{LogsConfig, OtlpProtocol, SdkExporter, SdkProcessor};

    /// A provider with one processor per entry of `processors` (those that
    /// go through the SDK).
    pub(super) fn provider(
        logs: &LogsConfig,
        processors: &[(usize, &SdkProcessor)],
        resource: Resource,
    ) -> Result<SdkLoggerProvider, SetupError> {
        let mut builder = SdkLoggerProvider::builder().with_resource(resource);
        for &(i, processor) in processors {
            let batch = matches!(processor, SdkProcessor::Batch(_));
            let path = format!("{LOGS}.processors[{i}]");
            builder = match processor.exporter() {
                SdkExporter::Console(_) => add(builder, batch, opentelemetry_stdout::LogExporter::default()),
                SdkExporter::Otlp(otlp) => match otlp.protocol.unwrap_or_default() {
                    OtlpProtocol::HttpProtobuf => {
                        #[cfg(feature = "otlp-http")]
                        {
                            let endpoint = with_logs_path(otlp.endpoint.as_deref().unwrap_or("http://localhost:4318"));
                            let exporter = selftrace_bridge::otlp_http_exporter(&endpoint)
                                .map_err(|e| bad_endpoint(&path, logs, e))?;
                            add(builder, batch, exporter)
                        }
                        #[cfg(not(feature = "otlp-http"))]
                        return Err(missing(&path, logs, "http/protobuf", "otlp-http"));
                    }
                    OtlpProtocol::Grpc => {
                        #[cfg(feature = "otlp-grpc")]
                        {
                            let endpoint = otlp.endpoint.as_deref().unwrap_or("http://localhost:4317");
                            let exporter = selftrace_bridge::otlp_grpc_exporter(endpoint)
                                .map_err(|e| bad_endpoint(&path, logs, e))?;
                            add(builder, batch, exporter)
                        }
                        #[cfg(not(feature = "otlp-grpc"))]
                        return Err(missing(&path, logs, "grpc", "otlp-grpc"));
                    }
                },
            };
        }
        Ok(builder.build())
    }

    #[allow(dead_code, reason = "used when a transport feature is on")]
    fn bad_endpoint(path: &str, logs: &LogsConfig, error: impl std::fmt::Display) -> SetupError {
        SetupError::new(format!("{path}.exporter.otlp.endpoint"), logs.processors_location(), error.to_string())
    }

    #[allow(dead_code, reason = "used when a transport feature is off")]
    fn missing(path: &str, logs: &LogsConfig, protocol: &str, feature: &str) -> SetupError {
        SetupError::new(
            format!("{path}.exporter.otlp.protocol"),
            logs.processors_location(),
            format!("protocol `{protocol}` needs the `{feature}` feature of selftrace-itr"),
        )
    }

    fn add<E: LogExporter + 'static>(
        builder: LoggerProviderBuilder,
        batch: bool,
        exporter: E,
    ) -> LoggerProviderBuilder {
        if batch { builder.with_batch_exporter(exporter) } else { builder.with_simple_exporter(exporter) }
    }

    /// `http://host:4318` → `http://host:4318/v1/logs`; a URL with a path
    /// is kept.
    #[allow(dead_code, reason = "used with the otlp-http feature")]
    pub(super) fn with_logs_path(endpoint: &str) -> String {
        // Without a scheme it is not a URL: kept, for the error to show it.
        let Some((_, after_scheme)) = endpoint.split_once("://") else { return endpoint.to_owned() };
        match after_scheme.find('/') {
            None => format!("{endpoint}/v1/logs"),
            Some(i) if after_scheme[i..] == *"/" => format!("{endpoint}v1/logs"),
            Some(_) => endpoint.to_owned(),
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn endpoints_get_the_logs_path_when_they_have_none() {
            assert_eq!(super::with_logs_path("http://h:4318"), "http://h:4318/v1/logs");
            assert_eq!(super::with_logs_path("http://h:4318/"), "http://h:4318/v1/logs");
            assert_eq!(super::with_logs_path("http://h:4318/custom/logs"), "http://h:4318/custom/logs");
            assert_eq!(super::with_logs_path("h:4318"), "h:4318");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;
    use crate::config::ServiceConfig;

    fn telemetry(yaml: &str) -> SelfTelemetry {
        let config = ServiceConfig::from_yaml("t.yaml", yaml).unwrap();
        SelfTelemetry::builder(&config.telemetry)
            .receiver("itr", ReceiverSettings::default())
            .node("main")
            .build()
            .unwrap()
    }

    /// Events of `hyper`, `hyper::client::pool` and `hyperloop` outside any
    /// node, then `hyper::client::pool` inside `main`: (discarded, delivered)
    /// by the layer.
    fn transport_events(telemetry: &SelfTelemetry) -> (u64, u64) {
        let subscriber = tracing_subscriber::registry().with(telemetry.layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(target: "hyper", "outside");
            tracing::error!(target: "hyper::client::pool", "outside");
            tracing::error!(target: "hyperloop", "outside");
            let node = telemetry.shared("main").unwrap();
            node.in_scope(|| tracing::error!(target: "hyper::client::pool", "inside"));
        });
        let layer = telemetry.metrics().layer;
        (layer.dropped(selftrace::DropReason::Discarded), layer.delivered())
    }

    #[test]
    fn transport_crates_never_reach_an_exporting_destination() {
        let itr_only = telemetry(
            "service:\n  telemetry:\n    logs:\n      internal_collection: { enabled: true }\n      processors: []\n",
        );
        assert_eq!(itr_only.mode(), Mode::ItrOnly);
        assert_eq!(transport_events(&itr_only), (3, 1), "only `hyperloop` gets through, inside a node or not");
        let hybrid = telemetry(
            "service:\n  telemetry:\n    logs:\n      internal_collection: { enabled: true }\n      processors: [{simple: {exporter: {console: }}}]\n",
        );
        assert_eq!(transport_events(&hybrid), (3, 1), "the ITR exports: the same in hybrid mode");
        hybrid.shutdown();
        itr_only.shutdown();

        // Nothing is exported in console mode: they are printed like the rest.
        let config =
            ServiceConfig::from_yaml("t.yaml", "service:\n  telemetry:\n    logs:\n      processors: []\n").unwrap();
        let console = SelfTelemetry::builder(&config.telemetry).node("main").build().unwrap();
        assert_eq!(console.mode(), Mode::Console);
        assert_eq!(transport_events(&console), (0, 4));
    }

    #[test]
    fn transport_events_into_an_exporting_destination_are_rejected() {
        let config = ServiceConfig::from_yaml(
            "t.yaml",
            "service:\n  telemetry:\n    logs:\n      internal_collection: { enabled: true }\n      processors: []\n      transport:\n        logger: default\n        level: trace\n",
        )
        .unwrap();
        let error = SelfTelemetry::builder(&config.telemetry)
            .receiver("itr", ReceiverSettings::default())
            .build()
            .expect_err("a feedback loop");
        assert_eq!(
            error.to_string(),
            "`service.telemetry.logs.transport.logger` (line 7, column 9): the transport crates' events cannot go where logs are exported: every export would log more of them for the next one (a feedback loop); use `console` or `raw` to see them"
        );
    }
}
