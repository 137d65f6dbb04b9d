//! [`NodeLogs`]: the handle an engine gives its nodes to log through.

use std::{fmt, sync::Arc, sync::atomic::Ordering};

use tracing_core::LevelFilter;

use super::{
    FlushReason, LocalTelemetry, Node, SharedTelemetry,
    buffer::{LogsInner, Output},
};
use crate::{
    console::ConsoleFormat,
    encoder::{EncoderLimits, EncoderSettings},
    flood::FloodLimit,
    metrics::{LayerMetrics, NodeMetrics},
    spans::SpanFields,
    view::LogRecordView,
};

/// The node logs: the buffers, the destination and the counters that an
/// engine's nodes log through.
///
/// Make one per engine, then hand each node a
/// [`LocalTelemetry`](crate::LocalTelemetry) ([`local`](Self::local)) or a
/// [`SharedTelemetry`](crate::SharedTelemetry) ([`shared`](Self::shared)).
/// Cloning is cheap and every clone is the same node logs.
///
/// Memory is bounded by `threads × 2 × buffer capacity` (each buffer and the
/// hand-off block its requests are split off) plus what the destination's
/// channel holds.
///
/// # Examples
///
/// ```
/// use selftrace::{Destination, FlushReason, Node, NodeLogs, OtlpBytesChannel, otel_info};
///
/// let channel = OtlpBytesChannel::new(100);
/// let logs = NodeLogs::builder(Destination::Channel(channel.sender()))
///     .with_service_name("my-engine")
///     .build();
/// let telemetry = logs.shared(Node::new("receiver.otlp.0"));
///
/// otel_info!(telemetry, "receiver.started", port = 4317_i64, "listening");
/// assert_eq!(logs.metrics().events_buffered(), 1);
///
/// logs.flush(FlushReason::Timer); // what the ITR's timer does
/// assert_eq!(channel.receiver().len(), 1);
/// assert_eq!(logs.metrics().events_delivered, 1);
/// ```
#[derive(Clone)]
pub struct NodeLogs {
    pub(crate) inner: Arc<LogsInner>,
}

impl fmt::Debug for NodeLogs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeLogs")
            .field("output", &self.inner.output)
            .field("limits", &self.inner.limits)
            .field("max_level", &self.max_level())
            .field("shut_down", &self.inner.shut_down.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl NodeLogs {
    /// A `NodeLogs` sending to `output` (a [`Destination`](crate::Destination))
    /// with the default limits.
    pub fn new(output: impl Into<Output>) -> Self {
        Self::builder(output).build()
    }

    /// A builder for a `NodeLogs` sending to `output`, usually a
    /// [`Destination`](crate::Destination).
    ///
    /// `Channel` batches records in per-thread buffers (`Buffered(node_logs)`:
    /// as `node_logs`'s channel); `Console` prints each record when it is logged;
    /// `Noop` discards (and counts) them.
    pub fn builder(output: impl Into<Output>) -> NodeLogsBuilder {
        NodeLogsBuilder {
            output: output.into(),
            settings: EncoderSettings::default(),
            max_level: LevelFilter::TRACE,
            flood: Some(FloodLimit::DEFAULT),
            span_fields: None,
            console_format: None,
            spans: false,
        }
    }

    /// Telemetry for a `!Send` node running on this thread; it logs into
    /// this thread's local buffer.
    pub fn local(&self, node: Node) -> LocalTelemetry {
        LocalTelemetry::new(node, self.inner.clone(), self.inner.local_buffer())
    }

    /// Telemetry for a `Send` node; it logs into the shared buffer of
    /// whichever thread it runs on.
    pub fn shared(&self, node: Node) -> SharedTelemetry {
        SharedTelemetry::new(node, self.inner.clone())
    }

    /// Flushes the shared buffers of every thread and this thread's local
    /// buffer; returns how many requests were flushed.
    ///
    /// Local buffers of other threads are flushed by their own thread (a
    /// thread-per-core engine runs a flush on each core).
    pub fn flush(&self, reason: FlushReason) -> usize {
        self.inner.flush(reason, None)
    }

    /// As [`flush`](Self::flush), handing each request to `sink` instead
    /// of the output: for the owner of the node logs' channel (an
    /// exporter's worker), whose own flush must never be refused by its own
    /// channel. Plumbing for `selftrace-bridge`; not part of the semver
    /// surface.
    #[doc(hidden)]
    pub fn flush_into(&self, reason: FlushReason, sink: &mut dyn FnMut(crate::encoder::OtlpBytes)) -> usize {
        self.inner.flush(reason, Some(sink))
    }

    /// As [`shutdown`](Self::shutdown), draining into `sink` (see
    /// [`flush_into`](Self::flush_into)). Plumbing for `selftrace-bridge`.
    #[doc(hidden)]
    pub fn shutdown_into(&self, sink: &mut dyn FnMut(crate::encoder::OtlpBytes)) {
        self.inner.shutdown(Some(sink));
    }

    /// Writes now the flood control summary of every key whose events are
    /// being suppressed, whether or not its window has ended (into this
    /// thread's buffer, through each node's logger); returns how many.
    /// [`shutdown`](Self::shutdown) does it too, but an engine whose
    /// receivers stop first calls this before stopping them.
    pub fn flush_summaries(&self) -> usize {
        self.inner.write_summaries(crate::clock::now_unix_nanos(), true)
    }

    /// Writes the pending flood summaries (of the nodes, and of the layers
    /// that write here), drains the shared buffers of every thread and this
    /// thread's local buffer, then refuses new records: they go to the raw
    /// logger, counted as [`DropReason::ShutDown`](crate::DropReason::ShutDown).
    /// Idempotent.
    pub fn shutdown(&self) {
        self.inner.shutdown(None);
    }

    /// The counters of the layers whose destination is these node logs
    /// ([`Destination::Buffered`](crate::Destination::Buffered) at build),
    /// summed: what they delivered here, and what they dropped on the way
    /// (flood control's `Suppressed` among them).
    pub fn layer_metrics(&self) -> LayerMetrics {
        self.inner.layer_metrics()
    }

    /// Whether [`shutdown`](Self::shutdown) ran.
    pub fn is_shut_down(&self) -> bool {
        self.inner.shut_down.load(Ordering::Acquire)
    }

    /// A snapshot of the node logs' counters.
    pub fn metrics(&self) -> NodeMetrics {
        self.inner.metrics()
    }

    /// The most verbose level produced, for every node (a node's own level
    /// can only restrict it).
    pub fn max_level(&self) -> LevelFilter {
        crate::levels::level_from_u8(self.inner.max_level.load(Ordering::Relaxed))
    }

    /// Changes [`max_level`](Self::max_level) now, for every node and
    /// handle; a record racing the change obeys the old or the new level.
    pub fn set_max_level(&self, level: LevelFilter) {
        self.inner.max_level.store(crate::levels::level_to_u8(level), Ordering::Relaxed);
    }

    /// The encoder limits of every buffer.
    pub fn limits(&self) -> EncoderLimits {
        self.inner.limits
    }

    /// The resource of every buffer's requests.
    #[cfg(feature = "traces")]
    pub(crate) fn resource(&self) -> &crate::encoder::OtlpResource {
        self.inner.resource()
    }

    /// Buffers a third-party event that belongs to no node
    /// (`Destination::Buffered`) in this thread's shared buffer, under
    /// `scope`; the reason when refused, for the caller to count.
    pub(crate) fn log_unattributed<R: LogRecordView + ?Sized>(
        &self,
        scope: &str,
        record: &R,
        kept: Option<&super::ThreadBuffer>,
    ) -> Result<(), crate::DropReason> {
        self.inner.log_unattributed(scope, record, kept)
    }

    /// This thread's buffer, for a caller that keeps it between records it
    /// logs from this thread (see `log_unattributed`).
    pub(crate) fn thread_buffer(&self) -> Option<super::ThreadBuffer> {
        self.inner.thread_buffer()
    }

    /// Buffers a closed span (see `LogsInner::log_span`).
    #[cfg(feature = "traces")]
    pub(crate) fn log_span(
        &self,
        scope: &str,
        span: &(impl crate::span_view::SpanView + ?Sized),
    ) -> Result<u32, crate::DropReason> {
        self.inner.log_span(scope, span)
    }

    /// Where the node logs' flushed requests go.
    pub(crate) fn output(&self) -> &Output {
        &self.inner.output
    }
}

/// Builds a [`NodeLogs`].
///
/// # Examples
///
/// ```
/// use selftrace::{Destination, Node, NodeLogs, OtlpBytesChannel, otel_warn};
/// use tracing_core::LevelFilter;
///
/// let channel = OtlpBytesChannel::new(64);
/// let logs = NodeLogs::builder(Destination::Channel(channel.sender()))
///     .with_service_name("my-engine")
///     .with_max_level(LevelFilter::INFO)
///     .with_flood_limit(None) // every record, even repeated ones
///     .build();
/// let node = logs.shared(Node::new("exporter.otlp.0"));
/// otel_warn!(node, "export.retry", attempt = 2_i64);
/// logs.flush(selftrace::FlushReason::Explicit);
/// assert_eq!(channel.receiver().len(), 1);
/// ```
#[derive(Debug)]
pub struct NodeLogsBuilder {
    output: Output,
    settings: EncoderSettings,
    max_level: LevelFilter,
    flood: Option<FloodLimit>,
    span_fields: Option<SpanFields>,
    console_format: Option<ConsoleFormat>,
    spans: bool,
}
impl NodeLogsBuilder {
    crate::__encoder_settings_setters!(settings);

    /// Records above `level` are not produced by the `otel_*!` macros and
    /// third-party events above it inside a node scope are discarded
    /// (default: everything).
    pub fn with_max_level(mut self, level: LevelFilter) -> Self {
        self.max_level = level;
        self
    }

    /// Flood control of the nodes' records and of the third-party events in
    /// their scopes, per callsite and node (see [`flood`](crate::flood)):
    /// `limit` events pass per window, the rest are suppressed and
    /// summarised; `None` turns it off. A node's own limit
    /// ([`Node::with_flood_limit`](crate::Node::with_flood_limit)) wins.
    /// Default: [`FloodLimit::DEFAULT`], 10 events per 10 s.
    pub fn with_flood_limit(mut self, limit: Option<FloodLimit>) -> Self {
        self.flood = limit;
        self
    }

    /// Records logged straight to a node (`otel_*!`, `log_event`) carry the
    /// fields of the spans current on the logging thread, as the
    /// [`OtlpTracingLayer`](crate::OtlpTracingLayer) recorded them (give it
    /// [`with_span_fields`](crate::OtlpTracingLayerBuilder::with_span_fields)
    /// too; the subscriber must be a `tracing_subscriber::Registry` with
    /// layers). `fields` bounds them per record, as on the layer. Events
    /// that reach a node through the layer carry the layer's span fields
    /// whatever this says. `None` (the default): none, and no lookup.
    pub fn with_span_fields(mut self, fields: Option<SpanFields>) -> Self {
        self.span_fields = fields;
        self
    }

    /// How records printed on the console (nodes whose logger is
    /// [`NodeLogger::Console`](crate::NodeLogger::Console), every node when
    /// the output is the console) are written. Default: the output's format
    /// when it is the console ([`Destination::Console`](crate::Destination::Console):
    /// text, [`Destination::OtlpJson`](crate::Destination::OtlpJson): OTLP/JSON),
    /// else text.
    pub fn with_console_format(mut self, format: ConsoleFormat) -> Self {
        self.console_format = Some(format);
        self
    }

    /// Node logs whose buffers hold spans (an `OtlpSpanLayer` built with
    /// `buffered`), not log records: records given to them are refused,
    /// counted as discarded (and spans given to other node logs are): a
    /// request never mixes the two. Noted once on the raw logger. Plumbing
    /// for `selftrace-bridge` and `selftrace-itr`; not part of the semver
    /// surface.
    #[doc(hidden)]
    pub fn for_spans(mut self) -> Self {
        self.spans = true;
        self
    }

    /// Builds the node logs.
    pub fn build(self) -> NodeLogs {
        // The record clock calibrates here, not at the first event.
        crate::clock::warm();
        let (limits, resource) = (self.settings.limits(), self.settings.resource());
        let mut inner = LogsInner::new(
            self.output,
            limits,
            resource,
            self.max_level,
            self.flood,
            self.span_fields,
            self.console_format,
        );
        inner.spans = self.spans;
        NodeLogs { inner: Arc::new(inner) }
    }
}
