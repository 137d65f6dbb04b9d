//! [`SelfTelemetry`]: the admin side. It resolves the routing mode from a
//! [`TelemetryConfig`] and the engine's pipeline graph, builds what the mode
//! needs (SDK bridge, node logs, receivers, the layer) and wires it.

mod check;
mod error;
mod exporting;
#[cfg(feature = "sdk")]
mod fanout;
#[cfg(any(feature = "otlp-http", feature = "otlp-grpc"))]
mod native;
#[cfg(feature = "sdk")]
mod sdk;

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    sync::Mutex,
};

use selftrace::{
    Destination, DestinationHandle, EncoderLimits, LayerMetrics, LocalTelemetry, Node, NodeLogger, NodeLogs,
    NodeMetrics, OtlpTracingLayer, SharedTelemetry,
    console::ConsoleFormat,
    encoder::EncoderSettings,
    levels::{DynamicFilter, LevelError, LevelHandle},
    startup::StartupBuffer,
};
use tracing_core::{LevelFilter, Subscriber};
use tracing_subscriber::{Layer, registry::LookupSpan};

pub use self::error::SetupError;
use self::exporting::Exporting;
use crate::{
    config::{LevelSource, LogsConfig, Mode, SdkExporter, TelemetryConfig},
    receiver::{InternalTelemetryReceiver, ReceiverMetrics, ReceiverSettings},
    telemetry::InternalTelemetry,
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
///    [`shutdown`](Self::shutdown) (the node logs and the SDK drain).
///
/// | mode | node logs (component logs) | layer (third-party logs) |
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
/// With one `otlp` exporter and nothing else, the layer and the node logs
/// batch in that exporter's per-thread buffers, which it flushes on its
/// timer.
///
/// In ITR-only mode the layer starts on a startup buffer
/// (`logs.startup_buffer_bytes`, 1 MiB by default) and is swapped to the
/// router when the engine takes the last receiver to mount it: the events
/// kept meanwhile go to the router first, in order. An engine that never
/// takes them has them printed on the console at shutdown.
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
/// assert_eq!(metrics.node_logs.events_received, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SelfTelemetry {
    mode: Mode,
    zone_logger: NodeLogger,
    logs: LogsConfig,
    zone: Zone,
    nodes: BTreeSet<String>,
    /// Nodes the builder was not told about are accepted
    /// ([`SelfTelemetryBuilder::with_runtime_nodes`]).
    runtime_nodes: bool,
    /// Every node handed out, by id, with its own `level` (from `nodes:`)
    /// and its cap (ERROR for the zone's): what level changes update.
    made: Mutex<Made>,
    node_logs: NodeLogs,
    layer: OtlpTracingLayer,
    filter: DynamicFilter,
    /// Where the layer's level came from at build.
    level_source: LevelSource,
    handle: DestinationHandle,
    internal: Option<InternalTelemetry>,
    receivers: Mutex<BTreeMap<String, InternalTelemetryReceiver>>,
    #[cfg(feature = "sdk")]
    bridge: Option<selftrace_bridge::SdkBridge>,
    #[cfg(any(feature = "otlp-http", feature = "otlp-grpc"))]
    exporters: Vec<selftrace_bridge::OtlpExporter>,
}

/// The level set last, and the nodes made.
struct Made {
    level: LevelFilter,
    /// The most verbose `level` of `nodes:`.
    configured: LevelFilter,
    nodes: BTreeMap<String, MadeNode>,
}

impl Made {
    /// The node logs' level: the most verbose of `level` and the nodes' own
    /// (a node's level can only restrict its node logs').
    fn ceiling(&self, level: LevelFilter) -> LevelFilter {
        self.nodes.values().filter_map(|m| m.own_level).fold(level.max(self.configured), LevelFilter::max)
    }
}

/// A node [`SelfTelemetry::node`] made.
struct MadeNode {
    node: Node,
    own_level: Option<LevelFilter>,
    cap: LevelFilter,
}

/// What [`SelfTelemetry::builder`] collects: the engine's graph (its
/// receivers, nodes and edges) and what the YAML cannot say (a meter, an SDK
/// provider of the engine's own). An example is at [`SelfTelemetry`].
#[derive(Debug)]
#[must_use = "a builder does nothing until built"]
pub struct SelfTelemetryBuilder {
    config: TelemetryConfig,
    service_name: String,
    nodes: BTreeSet<String>,
    runtime_nodes: bool,
    receivers: Vec<(String, ReceiverSettings)>,
    edges: Vec<(String, String)>,
    #[cfg(feature = "sdk")]
    provider: Option<opentelemetry_sdk::logs::SdkLoggerProvider>,
    #[cfg(feature = "metrics")]
    meter: Option<opentelemetry::metrics::Meter>,
}

const LOGS: &str = "service.telemetry.logs";

impl SelfTelemetry {
    /// Registers every counter as observable instruments on `meter`: the
    /// layer's and the node logs' ([`selftrace::instruments`]), each
    /// receiver's ([`instruments`](crate::instruments)), the SDK bridge's
    /// and each native exporter's (`selftrace_bridge::instruments`; an
    /// exporter's series carry `exporter`, its index in `processors`).
    /// Read at collection only: the event path does not change. `build`
    /// calls it when `service.telemetry.metrics.enabled`; call it once per
    /// meter (a second call reports every series twice).
    #[cfg(feature = "metrics")]
    pub fn observe(&self, meter: &opentelemetry::metrics::Meter) {
        selftrace::instruments::observe_layer(meter, &self.handle);
        selftrace::instruments::observe_node_logs(meter, &self.node_logs, &[]);
        if let Some(internal) = &self.internal {
            crate::instruments::observe_receivers(meter, internal);
        }
        #[cfg(feature = "sdk")]
        if let Some(bridge) = &self.bridge {
            bridge.observe(meter, &[]);
        }
        #[cfg(any(feature = "otlp-http", feature = "otlp-grpc"))]
        for (i, exporter) in self.exporters.iter().enumerate() {
            exporter.observe(meter, &[opentelemetry::KeyValue::new("exporter", i as i64)]);
        }
    }

    /// Starts describing an engine configured by `config`.
    pub fn builder(config: &TelemetryConfig) -> SelfTelemetryBuilder {
        SelfTelemetryBuilder {
            config: config.clone(),
            service_name: "unknown_service".into(),
            nodes: BTreeSet::new(),
            runtime_nodes: false,
            receivers: Vec::new(),
            edges: Vec::new(),
            #[cfg(feature = "sdk")]
            provider: None,
            #[cfg(feature = "metrics")]
            meter: None,
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
        self.layer.clone().with_filter(self.filter.clone())
    }

    /// Changes the level of everything now: the layer's filter (its
    /// directives are replaced), the node logs, and every node without a
    /// `level` of its own in `nodes:` (the zone's nodes stay at ERROR at
    /// most). A lowered level takes effect at once, a raised one makes the
    /// callsites above it cost nothing again; an event racing the change
    /// obeys the old or the new level.
    ///
    /// ```
    /// # use selftrace_itr::{SelfTelemetry, ServiceConfig};
    /// # use tracing::level_filters::LevelFilter;
    /// # let config = ServiceConfig::from_yaml("s.yaml", "service:\n  telemetry:\n    logs:\n      processors: []\n")?;
    /// let telemetry = SelfTelemetry::builder(&config.telemetry).node("main/batch").build()?;
    /// let batch = telemetry.shared("main/batch")?;
    /// assert!(!batch.enabled(tracing::Level::DEBUG));
    /// telemetry.set_level(LevelFilter::DEBUG);
    /// assert!(batch.enabled(tracing::Level::DEBUG));
    /// assert_eq!(telemetry.level_handle().current()?, "debug");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_level(&self, level: LevelFilter) {
        let _ = self.filter.handle().set_level(level);
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        made.level = level;
        self.node_logs.set_max_level(made.ceiling(level));
        for m in made.nodes.values().filter(|m| m.own_level.is_none()) {
            m.node.set_max_level(level.min(m.cap));
        }
    }

    /// Replaces the layer's filter with `EnvFilter` directives
    /// (`"info,h2=off,my_crate=debug"`) for third-party events; nodes keep
    /// their levels.
    ///
    /// # Errors
    ///
    /// [`LevelError::Directives`] when they do not parse; the filter keeps
    /// what it had.
    pub fn set_directives(&self, directives: &str) -> Result<(), LevelError> {
        self.filter.handle().set_directives(directives)
    }

    /// Changes node `id`'s level now (capped at ERROR for the zone's nodes),
    /// for every handle of it; it keeps that level through [`set_level`](Self::set_level).
    ///
    /// # Errors
    ///
    /// A [`SetupError`] when the builder was not told about node `id`.
    pub fn set_node_level(&self, id: &str, level: LevelFilter) -> Result<(), SetupError> {
        if !self.nodes.contains(id) {
            let known: Vec<&str> = self.nodes.iter().map(String::as_str).collect();
            return Err(SetupError::new("nodes", None, format!("no node `{id}` (nodes: {})", known.join(", "))));
        }
        self.node(id)?;
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = made.nodes.get_mut(id) {
            m.own_level = Some(level.min(m.cap));
            m.node.set_max_level(level.min(m.cap));
        }
        self.node_logs.set_max_level(made.ceiling(made.level));
        Ok(())
    }

    /// The handle of the layer's filter (shaped like
    /// `tracing_subscriber::reload::Handle`): what [`set_level`](Self::set_level)
    /// and [`set_directives`](Self::set_directives) change for third-party
    /// events.
    pub fn level_handle(&self) -> LevelHandle {
        self.filter.handle()
    }

    /// The node `id`, with its `nodes:` override and the zone's rules: a
    /// node of the anti-recursion zone logs through its receiver's
    /// pipeline logger (at ERROR at most), any other through the mode's
    /// node logs unless overridden.
    ///
    /// # Errors
    ///
    /// A node the builder was not told about, when it was told about some
    /// (a typo would otherwise carry the typo as its records' scope): the
    /// error names the known nodes. Engines that add nodes at run time say
    /// so with [`SelfTelemetryBuilder::with_runtime_nodes`]; each such node
    /// is then noted once on the raw logger. Also a node the zone rejects;
    /// the overrides were checked at build.
    pub fn node(&self, id: &str) -> Result<Node, SetupError> {
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = made.nodes.get(id) {
            return Ok(m.node.clone());
        }
        if !self.nodes.is_empty() && !self.nodes.contains(id) {
            let known: Vec<&str> = self.nodes.iter().map(String::as_str).collect();
            if !self.runtime_nodes {
                return Err(SetupError::new(
                    "node",
                    None,
                    format!(
                        "no node `{id}` in the pipelines (nodes: {}); a node added at run time needs `SelfTelemetryBuilder::with_runtime_nodes`",
                        known.join(", ")
                    ),
                ));
            }
            selftrace::raw::write_raw_note(
                "selftrace-itr",
                format_args!("node `{id}` is not in the pipelines built with (nodes: {})", known.join(", ")),
            );
        }
        let o = self.logs.node(id).copied().unwrap_or_default();
        let logger = o.logger;
        let (node, cap) = if self.zone.contains(id) {
            let node = check::zone_node(&self.zone, &self.logs, id)?;
            let cap = node.max_level();
            let node = match o.level {
                Some(level) => node.with_max_level(level.min(cap)),
                None => node,
            };
            (node, cap)
        } else {
            let node = Node::new(id).with_logger(logger.unwrap_or(NodeLogger::Default));
            (node.with_max_level(o.level.unwrap_or(made.level)), LevelFilter::TRACE)
        };
        // Whichever node logs the mode uses, the configured flood control.
        let flood = o.flood_control.map_or(self.logs.flood_limit(), |f| f.limit());
        let node = node.with_flood_limit(flood);
        // One node per id: its level changes reach every handle of it, and
        // its flood control counts all of them together.
        made.nodes.insert(id.to_owned(), MadeNode { node: node.clone(), own_level: o.level.map(|l| l.min(cap)), cap });
        Ok(node)
    }

    /// [`node`](Self::node)'s telemetry for a `Send` node.
    ///
    /// # Errors
    ///
    /// As for [`node`](Self::node).
    pub fn shared(&self, id: &str) -> Result<SharedTelemetry, SetupError> {
        Ok(self.node_logs.shared(self.node(id)?))
    }

    /// [`node`](Self::node)'s telemetry for a `!Send` node (per-thread
    /// buffers flushed on the thread that logs).
    ///
    /// # Errors
    ///
    /// As for [`node`](Self::node).
    pub fn local(&self, id: &str) -> Result<LocalTelemetry, SetupError> {
        Ok(self.node_logs.local(self.node(id)?))
    }

    /// The logger for the zone's threads: give
    /// `selftrace::pipeline::zone_thread_start(telemetry.zone_logger())` to the
    /// runtime the internal pipelines run on (the receivers' pipeline
    /// logger: `Noop` unless one asks for `console` or `raw`).
    pub fn zone_logger(&self) -> NodeLogger {
        self.zone_logger
    }

    /// Where the layer's level came from when it was built: `level` in the
    /// configuration, `RUST_LOG`, or the default directives (also when
    /// `RUST_LOG` did not parse).
    pub fn level_source(&self) -> &LevelSource {
        &self.level_source
    }

    /// The OTLP exporter the configuration built (the first `batch`
    /// processor with an `otlp` exporter), if any: an internal pipeline's
    /// exporter node ships its batches through it with
    /// [`sender`](selftrace_bridge::OtlpExporter::sender) (the requests as
    /// they are: one connection, one accounting, no second exporter). Its
    /// thread is a zone thread, so nothing it logs feeds the pipeline. See
    /// the `engine_walkthrough` example.
    #[cfg(any(feature = "otlp-http", feature = "otlp-grpc"))]
    pub fn otlp_exporter(&self) -> Option<&selftrace_bridge::OtlpExporter> {
        self.exporters.first()
    }

    /// The node logs component logs go through.
    pub fn node_logs(&self) -> &NodeLogs {
        &self.node_logs
    }

    /// The `internal_telemetry` receiver `id`, once, for the engine to
    /// mount. `None` when there is no such receiver or it was taken.
    ///
    /// In ITR-only mode, taking the last one hands the layer's startup
    /// buffer (the third-party events logged so far) to the receivers'
    /// router, and the layer sends there from then on.
    pub fn take_receiver(&self, id: &str) -> Option<InternalTelemetryReceiver> {
        let mut receivers = self.receivers.lock().unwrap_or_else(|p| p.into_inner());
        let receiver = receivers.remove(id);
        if receiver.is_some()
            && receivers.is_empty()
            && self.mode == Mode::ItrOnly
            && let Some(internal) = &self.internal
        {
            let _ = self.handle.set(internal.destination());
        }
        receiver
    }

    /// Counters of everything, at any time.
    pub fn metrics(&self) -> SelfTelemetryMetrics {
        SelfTelemetryMetrics {
            mode: self.mode,
            layer: self.handle.metrics(),
            node_logs: self.node_logs.metrics(),
            receivers: self.internal.as_ref().map(|i| i.metrics().receivers).unwrap_or_default(),
            #[cfg(feature = "sdk")]
            sdk: self.bridge.as_ref().map(|b| b.metrics()),
            #[cfg(any(feature = "otlp-http", feature = "otlp-grpc"))]
            exporters: self.exporters.iter().map(|e| e.metrics()).collect(),
        }
    }

    /// The first step of shutdown: the layer writes its pending flood
    /// summaries, then goes back to the console, so that third-party events
    /// keep a destination while the receivers and the SDK stop. Idempotent.
    pub fn begin_shutdown(&self) {
        // The flood summaries still pending go where their events went,
        // while the receivers still run.
        let _ = self.handle.flush_summaries();
        self.node_logs.flush_summaries();
        let _ = self.handle.set(Destination::Console);
    }

    /// The last step: the node logs drain into its destination and shuts
    /// down (later component logs are counted as dropped), then the SDK
    /// bridge emits what it holds and shuts its provider down. Call it
    /// after the engine's pipelines (and so the receivers) have stopped.
    pub fn shutdown(&self) -> SelfTelemetryMetrics {
        self.begin_shutdown();
        self.node_logs.shutdown();
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
            // The error, then its cause (the SDK's), each once.
            let cause = std::error::Error::source(&error).map(|c| format!(": {c}")).unwrap_or_default();
            selftrace::raw::write_raw_note("selftrace-itr", format_args!("SDK bridge shutdown: {error}{cause}"));
        }
        self.metrics()
    }
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
    /// The node logs (component logs). With one `otlp` exporter and no
    /// other processor, the exporter's per-thread buffers, which the layer's
    /// events go through too.
    pub node_logs: NodeMetrics,
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

    /// The meter `service.telemetry.metrics` registers selftrace's counters
    /// on (default: the global meter provider's meter `selftrace`).
    #[cfg(feature = "metrics")]
    pub fn with_meter(mut self, meter: opentelemetry::metrics::Meter) -> Self {
        self.meter = Some(meter);
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

    /// Accepts nodes the builder was not told about in
    /// [`SelfTelemetry::node`] (and `shared`, `local`), for engines that add
    /// nodes at run time; each is noted once on the raw logger. Off by
    /// default: a node id the graph does not have is an error, so a typo
    /// cannot pass silently. Without any [`node`](Self::node) or
    /// [`receiver`](Self::receiver), every id is accepted.
    pub fn with_runtime_nodes(mut self, enabled: bool) -> Self {
        self.runtime_nodes = enabled;
        self
    }

    /// An edge of the graph: `from` sends its output to `to`; both must be
    /// nodes (or receivers) of the builder's.
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
        #[cfg(not(feature = "metrics"))]
        if self.config.metrics.enabled {
            return Err(SetupError::new(
                "service.telemetry.metrics.enabled",
                None,
                "selftrace's metrics need the `metrics` feature of selftrace-itr",
            ));
        }
        let logs = self.config.logs.clone();
        let mode = logs.mode();
        check::mode_matches_graph(&logs, mode, &self.receivers)?;
        #[cfg(feature = "sdk")]
        let own_provider = self.provider.is_some();
        #[cfg(not(feature = "sdk"))]
        let own_provider = false;
        let exports = mode.collects_internally()
            || own_provider
            || logs.processors().iter().any(|p| matches!(p.exporter(), SdkExporter::Otlp(_)));
        check::transport_is_not_exported(&logs, exports)?;
        let receiver_configs = check::receiver_configs(&logs, &self.receivers)?;
        let zone_logger = check::zone_logger(&receiver_configs);
        let zone = check::zone(&logs, &receiver_configs, &self.edges, &self.nodes)?;

        // Every encoder's resource and limits.
        let resource = Resource::of(&self.config, &self.service_name);
        let limits = check::limits(&logs)?;
        let encoding = resource.encoder_settings(limits);
        resource.fits(&encoding, &self.config)?;

        // The SDK modes' processors, and where they take requests.
        #[cfg(feature = "sdk")]
        let exporting = Exporting::build(&logs, &resource, &encoding, self.provider)?;
        #[cfg(not(feature = "sdk"))]
        let exporting = Exporting::build(&logs)?;

        // The layer's level: `level`, else `RUST_LOG`, else the default.
        let (filter, level_source) = level_filter(&logs);
        let level = filter.max_level();

        // The node logs, the receivers and the layer.
        let internal = mode.collects_internally().then(|| {
            let internal = InternalTelemetry::builder()
                .with_encoder_settings(encoding.clone())
                .with_max_level(level)
                .with_flood_limit(logs.flood_limit())
                .with_span_fields(logs.span_fields().cloned());
            match logs.console_format() {
                Some(format) => internal.with_console_format(format),
                None => internal,
            }
            .build()
        });
        let mut receivers = BTreeMap::new();
        if let Some(internal) = &internal {
            for (id, config) in receiver_configs {
                let receiver = internal.receiver(&id, config).map_err(|e| check::invalid_receiver(&id, &e))?;
                receivers.insert(id, receiver);
            }
        }
        let node_logs = match (&internal, &exporting.buffers, &exporting.destination) {
            (Some(internal), ..) => internal.node_logs().clone(),
            (None, Some(buffers), _) => buffers.clone(),
            (None, None, destination) => {
                let node_logs = NodeLogs::builder(destination.clone().unwrap_or_else(|| console(&logs)))
                    .with_encoder_settings(encoding.clone())
                    .with_max_level(level)
                    .with_flood_limit(logs.flood_limit())
                    .with_span_fields(logs.span_fields().cloned());
                match logs.console_format() {
                    Some(format) => node_logs.with_console_format(format),
                    None => node_logs,
                }
                .build()
            }
        };
        // ITR only: a startup buffer until the engine has taken every
        // receiver to mount it, then the router.
        let initial = match (&exporting.buffers, mode) {
            (Some(buffers), _) => Destination::Buffered(buffers.clone()),
            (None, Mode::ItrOnly) => Destination::Startup(StartupBuffer::new(logs.startup_buffer_bytes())),
            (None, _) => exporting.destination.clone().unwrap_or_else(|| console(&logs)),
        };
        let mut layer = OtlpTracingLayer::builder(initial)
            .with_encoder_settings(encoding)
            .with_flood_limit(logs.flood_limit())
            .with_span_fields(logs.span_fields().cloned())
            .with_code_location(logs.code_location());
        if exports {
            let transport = logs.transport();
            layer = layer.with_denied_targets_to(
                transport.targets,
                transport.logger,
                transport.level.unwrap_or(tracing_core::LevelFilter::WARN),
            );
        }
        let layer = layer.build();
        let handle = layer.handle();
        // The node logs' level is a ceiling over every node's: the most
        // verbose of the level and the `nodes:` levels.
        let configured = logs.nodes().filter_map(|(_, o)| o.level).fold(LevelFilter::OFF, LevelFilter::max);
        let made = Made { level, configured, nodes: BTreeMap::new() };
        node_logs.set_max_level(made.ceiling(level));

        #[cfg(feature = "metrics")]
        let meter = self
            .config
            .metrics
            .enabled
            .then(|| self.meter.clone().unwrap_or_else(|| opentelemetry::global::meter("selftrace")));
        let telemetry = SelfTelemetry {
            mode,
            zone_logger,
            logs,
            zone,
            nodes: self.nodes,
            runtime_nodes: self.runtime_nodes,
            made: Mutex::new(made),
            node_logs,
            layer,
            filter,
            level_source,
            handle,
            internal,
            receivers: Mutex::new(receivers),
            #[cfg(feature = "sdk")]
            bridge: exporting.bridge,
            #[cfg(any(feature = "otlp-http", feature = "otlp-grpc"))]
            exporters: exporting.exporters,
        };
        #[cfg(feature = "metrics")]
        if let Some(meter) = meter {
            telemetry.observe(&meter);
        }
        Ok(telemetry)
    }
}

/// The console destination `console` names.
fn console(logs: &LogsConfig) -> Destination {
    match logs.console_format() {
        Some(ConsoleFormat::OtlpJson(stream)) => Destination::OtlpJson(stream),
        _ => Destination::Console,
    }
}

/// The layer's filter and where its level came from: `level`, else
/// `RUST_LOG` (read once, here), else the default directives. A `RUST_LOG`
/// that does not parse is told on stderr, naming the variable, and the
/// default applies.
fn level_filter(logs: &LogsConfig) -> (DynamicFilter, LevelSource) {
    // One reading of `RUST_LOG`, one default: the layer's own rule
    // (`DynamicFilter::from_env`), with `level` first.
    const LABEL: &str = "selftrace-itr";
    let rust_log = selftrace::levels::read_rust_log(LABEL);
    match logs.level_source(rust_log.as_deref()) {
        LevelSource::Config(level) => (DynamicFilter::new(level).0, LevelSource::Config(level)),
        LevelSource::Env(directives) => match DynamicFilter::from_rust_log(Some(&directives), LABEL) {
            (filter, true) => (filter, LevelSource::Env(directives)),
            (filter, false) => (filter, LevelSource::Default),
        },
        _ => (DynamicFilter::from_rust_log(None, LABEL).0, LevelSource::Default),
    }
}

/// The resource every request carries: the configuration's `resource`,
/// `service.name` from it or from the builder.
pub(super) struct Resource {
    service_name: String,
    /// The other attributes.
    attributes: Vec<(String, String)>,
}

impl Resource {
    fn of(config: &TelemetryConfig, service_name: &str) -> Self {
        let service_name = config.resource.get("service.name").cloned().unwrap_or_else(|| service_name.to_owned());
        let attributes = config
            .resource
            .iter()
            .filter(|(k, _)| k.as_str() != "service.name")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Self { service_name, attributes }
    }

    /// selftrace's encoders' settings: this resource and `limits`.
    fn encoder_settings(&self, limits: EncoderLimits) -> EncoderSettings {
        let settings = EncoderSettings::new().with_service_name(self.service_name.clone()).with_limits(limits);
        self.attributes.iter().fold(settings, |s, (k, v)| s.with_resource_attribute(k.clone(), v.clone()))
    }

    /// Whether the encoded resource leaves room for a record at the limit
    /// ([`EncoderLimits::resource_room`]); else an error naming its largest
    /// attribute, instead of every record dropped as too large later.
    fn fits(&self, encoding: &EncoderSettings, config: &TelemetryConfig) -> Result<(), SetupError> {
        let limits = encoding.limits();
        let (size, room) = (encoding.resource().encoded().len(), limits.resource_room());
        if size <= room {
            return Ok(());
        }
        let name = ("service.name", self.service_name.as_str());
        let attributes = self.attributes.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let (key, value) =
            std::iter::once(name).chain(attributes).max_by_key(|(k, v)| k.len() + v.len()).unwrap_or(name);
        let path = if key == "service.name" && !config.resource.contains_key(key) {
            "the service name the engine gives".to_owned()
        } else {
            format!("service.telemetry.resource.{key}")
        };
        Err(SetupError::new(
            path,
            None,
            format!(
                "the resource takes {size} bytes encoded ({} of them this attribute's value), more than the {room} bytes a request has room for beside a record at the limit (`internal_collection.buffer_size_bytes` {} less `max_record_bytes` {} less {} for the envelope): every record would be dropped as too large",
                value.len(),
                limits.buffer_capacity(),
                limits.max_record_bytes(),
                selftrace::encoder::RESOURCE_ROOM_ENVELOPE_BYTES,
            ),
        ))
    }

    /// The SDK's resource.
    #[cfg(feature = "sdk")]
    pub(super) fn sdk_resource(&self) -> opentelemetry_sdk::Resource {
        let builder = opentelemetry_sdk::Resource::builder().with_service_name(self.service_name.clone());
        self.attributes
            .iter()
            .fold(builder, |b, (k, v)| b.with_attribute(opentelemetry::KeyValue::new(k.clone(), v.clone())))
            .build()
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

    #[test]
    fn levels_change_at_runtime_and_nodes_keep_their_own_and_their_cap() {
        let yaml = "service:\n  telemetry:\n    logs:\n      level: info\n      internal_collection: { enabled: true }\n      processors: []\n      nodes:\n        main/verbose: { level: debug }\n";
        let config = ServiceConfig::from_yaml("t.yaml", yaml).unwrap();
        let telemetry = SelfTelemetry::builder(&config.telemetry)
            .receiver("itr", ReceiverSettings::default())
            .node("itr/exporter")
            .edge("itr", "itr/exporter")
            .node("main/quiet")
            .node("main/verbose")
            .build()
            .unwrap();
        let (quiet, verbose, zone) = (
            telemetry.node("main/quiet").unwrap(),
            telemetry.node("main/verbose").unwrap(),
            telemetry.node("itr/exporter").unwrap(),
        );
        let levels = || (quiet.max_level(), verbose.max_level(), zone.max_level(), telemetry.node_logs().max_level());
        assert_eq!(levels(), (LevelFilter::INFO, LevelFilter::DEBUG, LevelFilter::ERROR, LevelFilter::DEBUG));
        // A later handle is the same node: a change reaches it too.
        let quiet_handle = telemetry.shared("main/quiet").unwrap();
        telemetry.set_level(LevelFilter::WARN);
        assert_eq!(levels(), (LevelFilter::WARN, LevelFilter::DEBUG, LevelFilter::ERROR, LevelFilter::DEBUG));
        assert!(!quiet_handle.enabled(tracing_core::Level::INFO));
        telemetry.set_level(LevelFilter::TRACE);
        assert_eq!(levels(), (LevelFilter::TRACE, LevelFilter::DEBUG, LevelFilter::ERROR, LevelFilter::TRACE));
        telemetry.set_node_level("itr/exporter", LevelFilter::TRACE).unwrap();
        assert_eq!(zone.max_level(), LevelFilter::ERROR, "the zone's nodes stay capped");
        telemetry.set_node_level("main/quiet", LevelFilter::ERROR).unwrap();
        telemetry.set_level(LevelFilter::INFO);
        assert_eq!(levels(), (LevelFilter::ERROR, LevelFilter::DEBUG, LevelFilter::ERROR, LevelFilter::DEBUG));
        assert!(telemetry.set_node_level("main/unknown", LevelFilter::INFO).is_err());
        assert!(telemetry.set_directives("info,[").is_err());
        assert_eq!(telemetry.level_handle().current().unwrap(), "info", "kept");
    }

    #[test]
    fn a_setup_error_says_the_error_it_is_made_from_once() {
        use std::error::Error as _;
        let yaml = "service:\n  telemetry:\n    logs:\n      internal_collection: { enabled: true, buffer_size_bytes: 4096, max_record_bytes: 4000 }\n      processors: []\n";
        let config = ServiceConfig::from_yaml("t.yaml", yaml).unwrap();
        let error =
            SelfTelemetry::builder(&config.telemetry).receiver("itr", ReceiverSettings::default()).build().unwrap_err();
        assert_eq!(error.path(), "service.telemetry.logs.internal_collection");
        // The encoder limits' error is the message; it has no cause, so
        // neither has the setup error (a report would say it twice).
        let limits = selftrace::EncoderLimits::new(4096, 4000, 8192).unwrap_err();
        assert_eq!(error.message(), limits.to_string());
        assert!(error.source().is_none(), "{error}");
        let error = SelfTelemetry::builder(&config.telemetry).build().unwrap_err();
        assert!(error.source().is_none(), "{error}");
    }

    /// Events of `hyper`, `hyper::client::pool` and `hyperloop` outside any
    /// node, then `hyper::client::pool` inside `main`: (discarded, taken) by
    /// the layer (delivered, or kept in ITR-only mode's startup buffer until
    /// the receivers are taken).
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
        (layer.dropped(selftrace::DropReason::Discarded), layer.delivered + layer.startup_buffered)
    }

    #[test]
    fn itr_only_keeps_early_events_until_the_last_receiver_is_taken() {
        let yaml =
            "service:\n  telemetry:\n    logs:\n      internal_collection: { enabled: true }\n      processors: []\n";
        let telemetry = telemetry(yaml);
        let offered = |t: &SelfTelemetry| t.metrics().receivers.iter().map(|r| r.offered).sum::<u64>();
        let subscriber = tracing_subscriber::registry().with(telemetry.layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(target: "early", "before the receivers");
            let m = telemetry.metrics().layer;
            assert_eq!((m.startup_buffered, m.delivered, offered(&telemetry)), (1, 0, 0));
            let receiver = telemetry.take_receiver("itr").expect("the receiver");
            let m = telemetry.metrics().layer;
            assert_eq!((m.startup_buffered, m.delivered, offered(&telemetry)), (0, 1, 1), "handed to the router");
            tracing::error!(target: "early", "after");
            assert_eq!(offered(&telemetry), 2);
            drop(receiver);
        });

        let too_big = yaml.replace("processors: []", "processors: []\n      startup_buffer_bytes: 1000000000");
        let error = ServiceConfig::from_yaml("t.yaml", &too_big).expect_err("over the bound");
        assert_eq!(error.path(), "service.telemetry.logs.startup_buffer_bytes");
        assert_eq!(
            error.to_string(),
            "t.yaml:6:29: `service.telemetry.logs.startup_buffer_bytes`: 1000000000 is out of range: 0 to 268435456"
        );
    }

    /// With `level` written: the default directives (the transport crates
    /// `off`) do not apply, the layer's own denial does.
    #[test]
    fn transport_crates_never_reach_an_exporting_destination() {
        let itr_only = telemetry(
            "service:\n  telemetry:\n    logs:\n      level: info\n      internal_collection: { enabled: true }\n      processors: []\n",
        );
        assert_eq!(itr_only.mode(), Mode::ItrOnly);
        assert_eq!(transport_events(&itr_only), (3, 1), "only `hyperloop` gets through, inside a node or not");
        let hybrid = telemetry(
            "service:\n  telemetry:\n    logs:\n      level: info\n      internal_collection: { enabled: true }\n      processors: [{simple: {exporter: {console: }}}]\n",
        );
        assert_eq!(transport_events(&hybrid), (3, 1), "the ITR exports: the same in hybrid mode");
        hybrid.shutdown();
        itr_only.shutdown();

        // Nothing is exported in console mode: they are printed like the rest.
        let config = ServiceConfig::from_yaml(
            "t.yaml",
            "service:\n  telemetry:\n    logs:\n      level: info\n      processors: []\n",
        )
        .unwrap();
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
