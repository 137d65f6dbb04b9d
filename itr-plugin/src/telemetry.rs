//! [`InternalTelemetry`]: the node logs, the router and the receivers of one
//! engine (or one core of a thread-per-core engine).

use std::{
    fmt,
    sync::{Arc, Mutex},
};

use selftrace::{
    Destination, EncoderLimits, NodeLogs, NodeMetrics, OtlpBytesSender, encoder::ResourceValue, node::NodeLogsBuilder,
};
use tracing_core::LevelFilter;

use crate::receiver::{
    ConfigError, InternalTelemetryReceiver, ReceiverConfig, ReceiverCounters, ReceiverMetrics,
    router::{QueueCounters, Router, RouterSink},
    snapshot,
};

/// The name the receiver is registered under in a pipeline configuration.
pub const RECEIVER_NAME: &str = "internal_telemetry";

/// The engine's internal telemetry: a [`NodeLogs`] whose records go to a
/// router, and the `internal_telemetry` receivers the router feeds.
///
/// ```text
///  nodes: otel_info!(telemetry, ..)      third-party events (ITR-only mode)
///        │ per-thread buffers                │ OtlpTracingLayer
///        ▼ (flushed by the receivers' timers) ▼
///        └──────────────► router ◄────────────┘
///                           │ one bounded queue per receiver
///                ┌──────────┴──────────┐
///                ▼                     ▼
///        receiver "itr.0"      receiver "itr.debug"    (each: batches → output)
/// ```
///
/// Cloning is cheap; every clone is the same. A thread-per-core engine makes
/// one per core, so that each core's receiver flushes that core's local
/// buffers and the records of a node stay in order.
///
/// # Examples
///
/// ```
/// use selftrace::{Node, otel_info};
/// use selftrace_itr::{InternalTelemetry, ReceiverConfig};
///
/// let telemetry = InternalTelemetry::builder().with_service_name("my-engine").build();
/// let receiver = telemetry.receiver("itr", ReceiverConfig::default()).unwrap();
///
/// let node = telemetry.node_logs().shared(Node::new("receiver.otlp.0"));
/// otel_info!(node, "receiver.started", port = 4317_i64);
/// assert_eq!(telemetry.node_logs().metrics().events_buffered(), 1);
/// # drop(receiver);
/// ```
#[derive(Clone)]
pub struct InternalTelemetry {
    inner: Arc<Inner>,
}

struct Inner {
    node_logs: NodeLogs,
    /// Its buffers hold spans (`for_traces`): its destination refuses
    /// records (its node logs refuse them themselves).
    traces: bool,
    router: Arc<Router>,
    sender: OtlpBytesSender,
    /// Every receiver made, for the metrics (also after it is gone).
    receivers: Mutex<Vec<Made>>,
}

/// A receiver made: its id, its queue's counters and its own.
type Made = (String, Arc<QueueCounters>, Arc<ReceiverCounters>);

impl fmt::Debug for InternalTelemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InternalTelemetry")
            .field("node_logs", &self.inner.node_logs)
            .field("router", &self.inner.router)
            .finish()
    }
}

/// Builds an [`InternalTelemetry`]; the settings are those of its
/// [`NodeLogs`]. An example is at [`InternalTelemetry`].
#[derive(Debug)]
pub struct InternalTelemetryBuilder {
    node_logs: NodeLogsBuilder,
    router: Arc<Router>,
    sender: OtlpBytesSender,
    traces: bool,
}

impl InternalTelemetryBuilder {
    /// Sets `service.name` on the resource (default `unknown_service`).
    pub fn with_service_name(mut self, name: impl Into<String>) -> Self {
        self.node_logs = self.node_logs.with_service_name(name);
        self
    }

    /// Adds a resource attribute.
    pub fn with_resource_attribute(mut self, key: impl Into<String>, value: impl Into<ResourceValue>) -> Self {
        self.node_logs = self.node_logs.with_resource_attribute(key, value);
        self
    }

    /// Sets the limits of every per-thread buffer.
    pub fn with_limits(mut self, limits: EncoderLimits) -> Self {
        self.node_logs = self.node_logs.with_limits(limits);
        self
    }

    /// Sets the resource and the limits at once.
    pub fn with_encoder_settings(mut self, settings: selftrace::encoder::EncoderSettings) -> Self {
        self.node_logs = self.node_logs.with_encoder_settings(settings);
        self
    }

    /// Records above `level` are not produced.
    pub fn with_max_level(mut self, level: LevelFilter) -> Self {
        self.node_logs = self.node_logs.with_max_level(level);
        self
    }

    /// Flood control of the nodes' records (see
    /// [`NodeLogsBuilder::with_flood_limit`](selftrace::node::NodeLogsBuilder::with_flood_limit));
    /// default 10 events per 10 s per callsite and node, `None`: off.
    pub fn with_flood_limit(mut self, limit: Option<selftrace::flood::FloodLimit>) -> Self {
        self.node_logs = self.node_logs.with_flood_limit(limit);
        self
    }

    /// Records logged straight to a node carry the fields of the current
    /// spans (see
    /// [`NodeLogsBuilder::with_span_fields`](selftrace::node::NodeLogsBuilder::with_span_fields)).
    pub fn with_span_fields(mut self, fields: Option<selftrace::spans::SpanFields>) -> Self {
        self.node_logs = self.node_logs.with_span_fields(fields);
        self
    }

    /// How nodes whose logger is `console` print (see
    /// [`NodeLogsBuilder::with_console_format`](selftrace::node::NodeLogsBuilder::with_console_format)).
    pub fn with_console_format(mut self, format: selftrace::console::ConsoleFormat) -> Self {
        self.node_logs = self.node_logs.with_console_format(format);
        self
    }

    /// Carries spans instead of log records: its receivers send
    /// `ExportTraceServiceRequest` batches (mount them on a traces
    /// pipeline), fed by [`span_layer`](InternalTelemetry::span_layer). An
    /// engine with both makes one of each. Its [`node_logs`](InternalTelemetry::node_logs) and
    /// [`destination`](InternalTelemetry::destination) refuse records
    /// (counted as discarded, noted on the raw logger): a batch never mixes
    /// spans and records.
    #[cfg(feature = "traces")]
    pub fn for_traces(mut self) -> Self {
        self.traces = true;
        self.node_logs = self.node_logs.for_spans();
        self
    }

    /// Builds it.
    pub fn build(self) -> InternalTelemetry {
        InternalTelemetry {
            inner: Arc::new(Inner {
                traces: self.traces,
                node_logs: self.node_logs.build(),
                router: self.router,
                sender: self.sender,
                receivers: Mutex::default(),
            }),
        }
    }
}

impl Default for InternalTelemetry {
    fn default() -> Self {
        Self::builder().build()
    }
}

impl InternalTelemetry {
    /// A builder with the default node logs settings.
    pub fn builder() -> InternalTelemetryBuilder {
        let router = Arc::new(Router::default());
        let sender = OtlpBytesSender::from_sink(Arc::new(RouterSink(router.clone())));
        InternalTelemetryBuilder {
            node_logs: NodeLogs::builder(Destination::Channel(sender.clone())),
            router,
            sender,
            traces: false,
        }
    }

    /// The node logs: give each ordinary node its telemetry from here
    /// ([`NodeLogs::shared`], [`NodeLogs::local`]).
    pub fn node_logs(&self) -> &NodeLogs {
        &self.inner.node_logs
    }

    /// A layer that turns each closed `tracing` span into an OTLP span
    /// batched in the per-thread buffers the receivers flush (see
    /// [`OtlpSpanLayer`](selftrace::traces::OtlpSpanLayer)), with the node
    /// logs' resource and limits. Spans made in the zone (the receiver's
    /// scope and its pipeline's nodes, a zone thread) are not traced.
    ///
    /// For an internal telemetry [built for traces](InternalTelemetryBuilder::for_traces):
    /// on one of logs the layer's spans are refused (counted in
    /// [`SpanMetrics::dropped_channel_closed`](selftrace::traces::SpanMetrics::dropped_channel_closed))
    /// and a note says so on the raw logger.
    #[cfg(feature = "traces")]
    pub fn span_layer(&self) -> selftrace::traces::OtlpSpanLayer {
        selftrace::traces::OtlpSpanLayer::buffered(self.inner.node_logs.clone()).build()
    }

    /// The router as a destination: for the third-party layer in the
    /// ITR-only mode (`OtlpTracingLayer::new(telemetry.destination())`, or a
    /// [`DestinationHandle::set`](selftrace::DestinationHandle::set)).
    pub fn destination(&self) -> Destination {
        if self.inner.traces {
            selftrace::raw::write_raw_note(
                "itr",
                format_args!(
                    "InternalTelemetry::destination of an internal telemetry of traces: its records are refused"
                ),
            );
            return Destination::Noop;
        }
        Destination::Channel(self.inner.sender.clone())
    }

    /// A receiver with id `id`, fed by the router from now on.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when `config` does not [validate](ReceiverConfig::validate).
    pub fn receiver(&self, id: &str, config: ReceiverConfig) -> Result<InternalTelemetryReceiver, ConfigError> {
        config.validate()?;
        let receiver =
            InternalTelemetryReceiver::new(id, config, self.inner.node_logs.clone(), self.inner.router.clone());
        self.lock().push((id.to_owned(), receiver.queue_counters(), receiver.counters()));
        Ok(receiver)
    }

    /// The factory a host registers under [`RECEIVER_NAME`].
    pub fn factory(&self) -> ReceiverFactory {
        ReceiverFactory { telemetry: self.clone() }
    }

    /// A snapshot of every counter: the node logs' and each receiver's
    /// (also of receivers that are gone).
    pub fn metrics(&self) -> TelemetryMetrics {
        let node_logs = &self.inner.node_logs;
        let receivers = self
            .lock()
            .iter()
            .map(|(id, queue, counters)| snapshot(id, &self.inner.router, queue, counters, node_logs))
            .collect();
        TelemetryMetrics { node_logs: node_logs.metrics(), receivers }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Made>> {
        self.inner.receivers.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A snapshot of an [`InternalTelemetry`]'s counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TelemetryMetrics {
    /// The node logs' counters.
    pub node_logs: NodeMetrics,
    /// Each receiver's, in the order they were made.
    pub receivers: Vec<ReceiverMetrics>,
}

/// Makes `internal_telemetry` receivers from a host's pipeline
/// configuration.
///
/// A host registers it under [`name`](Self::name) next to its own receiver
/// factories; its configuration loader deserializes the node's settings into
/// a [`ReceiverConfig`] and calls [`create`](Self::create).
///
/// # Examples
///
/// ```
/// use std::collections::HashMap;
/// use selftrace_itr::{InternalTelemetry, ReceiverConfig, telemetry::ReceiverFactory};
///
/// let telemetry = InternalTelemetry::default();
/// let mut factories: HashMap<&'static str, ReceiverFactory> = HashMap::new();
/// let factory = telemetry.factory();
/// factories.insert(factory.name(), factory);
///
/// // pipelines: [{ receivers: [internal_telemetry], ... }]
/// let receiver = factories["internal_telemetry"].create("itr.0", ReceiverConfig::default()).unwrap();
/// assert_eq!(receiver.id(), "itr.0");
/// ```
#[derive(Clone, Debug)]
pub struct ReceiverFactory {
    telemetry: InternalTelemetry,
}

impl ReceiverFactory {
    /// [`RECEIVER_NAME`]: `internal_telemetry`.
    pub fn name(&self) -> &'static str {
        RECEIVER_NAME
    }

    /// A receiver for node `id` (see [`InternalTelemetry::receiver`]).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when `config` does not validate.
    pub fn create(&self, id: &str, config: ReceiverConfig) -> Result<InternalTelemetryReceiver, ConfigError> {
        self.telemetry.receiver(id, config)
    }
}
