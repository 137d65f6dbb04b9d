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
    NodeMetrics, OtlpTracingLayer, SharedTelemetry, encoder::EncoderSettings,
};
use tracing_core::{Metadata, Subscriber};
use tracing_subscriber::{Layer, filter::filter_fn, registry::LookupSpan};

pub use self::error::SetupError;
use self::exporting::Exporting;
use crate::{
    config::{LogsConfig, Mode, SdkExporter, TelemetryConfig},
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
/// assert_eq!(metrics.node_logs.events_received, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SelfTelemetry {
    mode: Mode,
    zone_logger: NodeLogger,
    logs: LogsConfig,
    zone: Zone,
    nodes: BTreeSet<String>,
    path: NodeLogs,
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

const LOGS: &str = "service.telemetry.logs";

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
    /// node logs unless overridden.
    ///
    /// # Errors
    ///
    /// Only for a node the builder was not told about and that the zone
    /// rejects; the overrides were checked at build.
    pub fn node(&self, id: &str) -> Result<Node, SetupError> {
        let o = self.logs.node(id).copied().unwrap_or_default();
        let logger = o.logger;
        let node = if self.zone.contains(id) {
            let node = check::zone_node(&self.zone, &self.logs, id)?;
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
        // Whichever node logs the mode uses, the configured flood control.
        let flood = o.flood_control.map_or(self.logs.flood_limit(), |f| f.limit());
        Ok(node.with_flood_limit(flood))
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

    /// The node logs component logs go through.
    pub fn node_logs(&self) -> &NodeLogs {
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
            node_logs: self.path.metrics(),
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
        self.path.flush_summaries();
        let _ = self.handle.set(Destination::Console);
    }

    /// The last step: the node logs drain into its destination and shuts
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
        let encoding = resource.encoder_settings(check::limits(&logs)?);

        // The SDK modes' processors, and where they take requests.
        #[cfg(feature = "sdk")]
        let exporting = Exporting::build(&logs, &resource, &encoding, self.provider)?;
        #[cfg(not(feature = "sdk"))]
        let exporting = Exporting::build(&logs)?;

        // The node logs, the receivers and the layer.
        let internal = mode.collects_internally().then(|| {
            InternalTelemetry::builder()
                .with_encoder_settings(encoding.clone())
                .with_max_level(logs.level())
                .with_flood_limit(logs.flood_limit())
                .build()
        });
        let mut receivers = BTreeMap::new();
        if let Some(internal) = &internal {
            for (id, config) in receiver_configs {
                let receiver = internal.receiver(&id, config).map_err(|e| check::invalid_receiver(&id, &e))?;
                receivers.insert(id, receiver);
            }
        }
        let path = match (&internal, &exporting.buffers, &exporting.destination) {
            (Some(internal), ..) => internal.node_logs().clone(),
            (None, Some(buffers), _) => buffers.clone(),
            (None, None, destination) => NodeLogs::builder(destination.clone().unwrap_or(Destination::Console))
                .with_encoder_settings(encoding.clone())
                .with_max_level(logs.level())
                .with_flood_limit(logs.flood_limit())
                .build(),
        };
        // ITR only: on the console until the receivers exist, then swapped.
        let initial = match &exporting.buffers {
            Some(buffers) => Destination::Buffered(buffers.clone()),
            None => exporting.destination.clone().unwrap_or(Destination::Console),
        };
        let mut layer =
            OtlpTracingLayer::builder(initial).with_encoder_settings(encoding).with_flood_limit(logs.flood_limit());
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
            bridge: exporting.bridge,
            #[cfg(any(feature = "otlp-http", feature = "otlp-grpc"))]
            exporters: exporting.exporters,
        })
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
    fn a_setup_error_gives_the_error_it_wraps_as_its_source() {
        use std::error::Error as _;
        let yaml = "service:\n  telemetry:\n    logs:\n      internal_collection: { enabled: true, buffer_size_bytes: 100 }\n      processors: []\n";
        let config = ServiceConfig::from_yaml("t.yaml", yaml).unwrap();
        let error =
            SelfTelemetry::builder(&config.telemetry).receiver("itr", ReceiverSettings::default()).build().unwrap_err();
        assert_eq!(error.path(), "service.telemetry.logs.internal_collection");
        let source = error.source().expect("the encoder limits' error");
        assert!(source.is::<selftrace::encoder::LimitsError>(), "{source:?}");
        assert_eq!(source.to_string(), error.message());
        // Without a wrapped error there is none.
        let error = SelfTelemetry::builder(&config.telemetry).build().unwrap_err();
        assert!(error.source().is_none(), "{error}");
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
        (layer.dropped(selftrace::DropReason::Discarded), layer.delivered)
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
