//! [`OtlpTracingLayer`]: every `tracing` event, encoded once into OTLP bytes.

use std::{
    cell::RefCell,
    fmt,
    sync::{
        Arc, Weak,
        atomic::{AtomicU64, Ordering},
    },
};

use arc_swap::ArcSwap;
use tracing_core::{Event, LevelFilter, Metadata, Subscriber, span};
use tracing_subscriber::{Layer, layer::Context, registry::LookupSpan};

use crate::{
    channel::OtlpBytesSender,
    clock::now_unix_nanos,
    console::{self, ConsoleStream},
    destination::Destination,
    encoder::OtlpBytes,
    encoder::{EncoderLimits, EncoderSettings, OtlpResource, StatefulOtlpEncoder},
    flood::{self, Admit, FloodLimit, FloodTable, Key, SiteInfo, SummaryRecord},
    logger::NodeLogger,
    metrics::{DropReason, LayerCounters, LayerMetrics, ThreadCounts, ThreadCountsGuard},
    node::{self, ThreadBuffer, is_under},
    pipeline::{LayerGuard, otel_suppressed, zone_thread_logger},
    raw::{raw_log, raw_log_lazy, raw_note},
    record::{self, TracingLogRecord},
    spans::{EventSpans, Recorded, SpanFields, SpanSource, fields_recorded, span_fields},
    startup::{self, Push, StartupBuffer},
    view::{LogRecordView, TraceContext},
};

/// A `tracing_subscriber` layer that encodes each event into one OTLP
/// `ExportLogsServiceRequest` and hands it to its [`Destination`].
///
/// * Each thread encodes into its own buffer: no lock is shared between
///   threads on the way of an event.
/// * Hand-off is `try_send` on a bounded channel: logging never blocks.
/// * An event that cannot be delivered (channel full or closed, record too
///   large, or raised from inside the layer itself) goes to the raw logger and
///   is counted by [`DropReason`]; see [`metrics`](Self::metrics).
///
/// Compose it like any layer, with `EnvFilter` or per-layer filters.
///
/// # Examples
///
/// ```
/// use selftrace::{Destination, OtlpBytesChannel, OtlpTracingLayer};
/// use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt};
///
/// let channel = OtlpBytesChannel::new(1000);
/// let layer = OtlpTracingLayer::builder(Destination::Channel(channel.sender()))
///     .with_service_name("my-engine")
///     .build();
/// let metrics = layer.handle();
/// let subscriber = tracing_subscriber::registry()
///     .with(layer.with_filter(EnvFilter::new("info")));
///
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info!(name: "engine.started", threads = 4, "started");
///     tracing::debug!("filtered out");
/// });
///
/// let request = channel.receiver().try_recv().expect("one request");
/// assert!(!request.is_empty());
/// assert_eq!(metrics.metrics().delivered, 1);
/// ```
#[derive(Clone)]
pub struct OtlpTracingLayer {
    shared: Arc<LayerState>,
}

/// State shared by a layer, its clones and its handles.
pub(crate) struct LayerState {
    destination: ArcSwap<Destination>,
    /// Which destination `destination` holds: a number no other layer's
    /// destination ever had (see [`DestinationStamp`]).
    stamp: AtomicU64,
    counters: Arc<LayerCounters>,
    limits: EncoderLimits,
    resource: OtlpResource,
    trace_context: bool,
    denied: Option<Denied>,
    flood: Option<LayerFlood>,
    span_fields: Option<SpanFields>,
    code_location: bool,
}

/// The layer's flood control (see [`flood`](crate::flood)).
struct LayerFlood {
    limit: FloodLimit,
    table: FloodTable,
}

/// Targets whose events never reach the destination (nor a node): the
/// transport crates, whose events an export would otherwise feed back.
struct Denied {
    targets: Box<[Box<str>]>,
    /// The first bytes of `targets`: most events are let through on one
    /// lookup.
    first_bytes: [bool; 256],
    /// Where their events go instead: `Noop` (counted as discarded),
    /// `Console` or `Raw` at `level` and above.
    logger: NodeLogger,
    level: LevelFilter,
}

impl Denied {
    #[inline]
    fn denies(&self, target: &str) -> bool {
        target.as_bytes().first().is_some_and(|b| self.first_bytes[usize::from(*b)])
            && self.targets.iter().any(|denied| is_under(target, denied))
    }
}

impl fmt::Debug for OtlpTracingLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpTracingLayer")
            .field("destination", &**self.shared.destination.load())
            .field("limits", &self.shared.limits)
            .field("resource", &self.shared.resource)
            .finish()
    }
}

impl OtlpTracingLayer {
    /// A layer sending to `destination` with the default limits; equal to
    /// `OtlpTracingLayer::builder(destination).build()`.
    pub fn new(destination: Destination) -> Self {
        Self::builder(destination).build()
    }

    /// A builder for a layer sending to `destination`.
    pub fn builder(destination: Destination) -> OtlpTracingLayerBuilder {
        OtlpTracingLayerBuilder {
            destination,
            settings: EncoderSettings::default(),
            trace_context: false,
            denied: None,
            // An application's logs are its own: nothing suppressed unless
            // asked (engines' self telemetry turns it on: SelfTelemetry, YAML).
            flood: None,
            span_fields: None,
            code_location: false,
        }
    }

    /// A handle that swaps this layer's destination at runtime.
    pub fn handle(&self) -> DestinationHandle {
        DestinationHandle { shared: Arc::downgrade(&self.shared), counters: self.shared.counters.clone() }
    }

    /// A snapshot of the delivered and dropped counters.
    pub fn metrics(&self) -> LayerMetrics {
        self.shared.counters.snapshot()
    }
}

// === impl OtlpTracingLayerBuilder ===

/// Builds an [`OtlpTracingLayer`].
///
/// # Examples
///
/// ```
/// use selftrace::{Destination, OtlpTracingLayer, flood::FloodLimit};
///
/// let layer = OtlpTracingLayer::builder(Destination::Console)
///     .with_service_name("my-engine")
///     .with_resource_attribute("service.version", "1.4.2")
///     .with_flood_limit(Some(FloodLimit::DEFAULT)) // an engine's self telemetry: summarise floods
///     .with_code_location(true)
///     .build();
/// assert_eq!(layer.metrics().received(), 0);
/// ```
#[derive(Debug)]
pub struct OtlpTracingLayerBuilder {
    destination: Destination,
    settings: EncoderSettings,
    trace_context: bool,
    denied: Option<(Vec<String>, NodeLogger, LevelFilter)>,
    flood: Option<FloodLimit>,
    span_fields: Option<SpanFields>,
    code_location: bool,
}

impl OtlpTracingLayerBuilder {
    crate::__encoder_settings_setters!(settings);

    /// Sets the initial destination.
    pub fn with_destination(mut self, destination: Destination) -> Self {
        self.destination = destination;
        self
    }

    /// Flood control of the events sent to the destination (see
    /// [`flood`](crate::flood)): each callsite passes `limit` events per
    /// window, the rest are suppressed and summarised; `None` turns it off.
    /// Default: off, as every exporter of an application's logs does: a
    /// service that logs a line per request exports every line. An engine's
    /// self telemetry turns it on ([`FloodLimit::DEFAULT`], 10 events per
    /// 10 s, is what `selftrace-itr`'s configuration and [`NodeLogs`](crate::NodeLogs) use):
    /// one noisy node or library cannot drown the rest. Events inside a node
    /// scope follow their node logs' limit instead.
    ///
    /// ```
    /// use selftrace::{Destination, DropReason, OtlpBytesChannel, OtlpTracingLayer, flood::FloodLimit};
    /// use std::time::Duration;
    /// use tracing_subscriber::layer::SubscriberExt;
    ///
    /// let channel = OtlpBytesChannel::new(100);
    /// let layer = OtlpTracingLayer::builder(Destination::Channel(channel.sender()))
    ///     .with_flood_limit(Some(FloodLimit::new(5, Duration::from_secs(60))?))
    ///     .build();
    /// let handle = layer.handle();
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///     for i in 0..50 {
    ///         tracing::warn!(attempt = i, "connection refused");
    ///     }
    ///     assert_eq!(channel.receiver().len(), 5);
    ///     // One summary, "suppressed 45 events in the last 60 s": after the
    ///     // window with the next event, or now (at shutdown, and when the
    ///     // layer is dropped).
    ///     assert_eq!(handle.flush_summaries(), Ok(1));
    /// });
    /// assert_eq!(channel.receiver().len(), 6);
    /// let metrics = handle.metrics();
    /// assert_eq!(metrics.dropped(DropReason::Suppressed), 45);
    /// assert_eq!(metrics.received(), 51); // 50 events and the summary
    /// # Ok::<(), selftrace::flood::FloodLimitError>(())
    /// ```
    pub fn with_flood_limit(mut self, limit: Option<FloodLimit>) -> Self {
        self.flood = limit;
        self
    }

    /// Adds the fields of the spans each event is inside to its record (see
    /// [`spans`](crate::spans)); `None` (the default) adds none. Needs a
    /// subscriber that stores spans (`tracing_subscriber::registry()`).
    pub fn with_span_fields(mut self, fields: Option<SpanFields>) -> Self {
        self.span_fields = fields;
        self
    }

    /// Writes where each event was emitted as its first attributes:
    /// `code.file.path`, `code.line.number`, `code.module.name`
    /// ([`CodeLocation`](crate::view::CodeLocation)), encoded once per
    /// callsite. Off by default.
    ///
    /// ```
    /// use selftrace::{Destination, OtlpBytesChannel, OtlpTracingLayer};
    /// use selftrace::{decode::LogsRequest, view::{AnyValue, LogRecordView, RecordVisitor}};
    /// use tracing_subscriber::layer::SubscriberExt;
    ///
    /// let channel = OtlpBytesChannel::new(8);
    /// let layer = OtlpTracingLayer::builder(Destination::Channel(channel.sender()))
    ///     .with_code_location(true)
    ///     .build();
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///     tracing::info!("located");
    /// });
    ///
    /// struct Attributes(Vec<(String, String)>);
    /// impl RecordVisitor for Attributes {
    ///     fn visit_body(&mut self, _: AnyValue<'_>) {}
    ///     fn visit_attribute(&mut self, key: &str, value: AnyValue<'_>) {
    ///         self.0.push((key.into(), format!("{value:?}")));
    ///     }
    /// }
    /// let request = channel.receiver().try_recv().unwrap();
    /// let mut seen = Attributes(Vec::new());
    /// LogsRequest::new(request.as_bytes()).for_each_record(|_, record| record.visit(&mut seen))?;
    /// let keys: Vec<&str> = seen.0.iter().map(|(k, _)| k.as_str()).collect();
    /// assert_eq!(keys, ["code.file.path", "code.line.number", "code.module.name"]);
    /// assert!(seen.0[0].1.ends_with(".rs\")"), "{}", seen.0[0].1);
    /// # Ok::<(), selftrace::decode::DecodeError>(())
    /// ```
    pub fn with_code_location(mut self, enabled: bool) -> Self {
        self.code_location = enabled;
        self
    }

    /// Reads trace and span ids from the active OpenTelemetry `Context` into
    /// each record (off by default; costs one thread-local read per event).
    #[cfg(feature = "trace")]
    pub fn with_trace_context(mut self, enabled: bool) -> Self {
        self.trace_context = enabled;
        self
    }

    /// Keeps the events of `targets` (each target and those below it on a
    /// `::` boundary: `"hyper"` covers `hyper::proto::h1`, not `hyperlocal`)
    /// out of the destination and out of node scopes, whatever their level:
    /// they are counted as [`DropReason::Discarded`]. Meant for
    /// [`TRANSPORT_TARGETS`] in front of a destination that exports over
    /// the network, where every export would log events for the next one.
    /// One lookup per event for the others.
    ///
    /// ```
    /// use selftrace::{Destination, OtlpBytesChannel, OtlpTracingLayer, TRANSPORT_TARGETS};
    /// use tracing_subscriber::layer::SubscriberExt;
    ///
    /// let channel = OtlpBytesChannel::new(8);
    /// let layer = OtlpTracingLayer::builder(Destination::Channel(channel.sender()))
    ///     .with_denied_targets(TRANSPORT_TARGETS.iter().copied())
    ///     .build();
    /// let metrics = layer.handle();
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///     tracing::debug!(target: "hyper::client::pool", "idle connection");
    ///     tracing::info!(target: "my_app", "served");
    /// });
    /// assert_eq!(channel.receiver().len(), 1);
    /// assert_eq!(metrics.metrics().dropped(selftrace::DropReason::Discarded), 1);
    /// ```
    pub fn with_denied_targets<I: IntoIterator<Item = S>, S: Into<String>>(self, targets: I) -> Self {
        self.with_denied_targets_to(targets, NodeLogger::Noop, LevelFilter::OFF)
    }

    /// As [`with_denied_targets`](Self::with_denied_targets), but their
    /// events at `level` and above go to `logger` (`Console` or `Raw`, for
    /// debugging a transport; `Noop`: discarded; `Default` counts as `Noop`:
    /// the destination is what they must not reach).
    pub fn with_denied_targets_to<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        targets: I,
        logger: NodeLogger,
        level: LevelFilter,
    ) -> Self {
        self.denied = Some((targets.into_iter().map(Into::into).collect(), logger, level));
        self
    }

    /// Builds the layer.
    pub fn build(self) -> OtlpTracingLayer {
        // The record clock calibrates here, not at the first event.
        crate::clock::warm();
        let denied = self.denied.filter(|(targets, ..)| !targets.is_empty()).map(|(targets, logger, level)| {
            let mut first_bytes = [false; 256];
            for target in &targets {
                if let Some(b) = target.as_bytes().first() {
                    first_bytes[usize::from(*b)] = true;
                }
            }
            let logger = if logger == NodeLogger::Default { NodeLogger::Noop } else { logger };
            Denied { targets: targets.into_iter().map(String::into_boxed_str).collect(), first_bytes, logger, level }
        });
        let attach_to = match &self.destination {
            Destination::Buffered(node_logs) => Some(node_logs.clone()),
            _ => None,
        };
        if self.span_fields.is_some() {
            crate::spans::span_fields_layer_made();
        }
        let layer = OtlpTracingLayer {
            shared: Arc::new(LayerState {
                stamp: AtomicU64::new(DestinationStamp::next(&self.destination)),
                destination: ArcSwap::from_pointee(self.destination),
                counters: Arc::default(),
                limits: self.settings.limits(),
                resource: self.settings.resource(),
                trace_context: self.trace_context,
                denied,
                flood: self.flood.map(|limit| LayerFlood { limit, table: FloodTable::default() }),
                span_fields: self.span_fields,
                code_location: self.code_location,
            }),
        };
        // Node logs written into flush this layer's flood summaries before
        // they shut down: a process that bursts and exits loses none.
        if let Some(node_logs) = attach_to {
            node_logs.inner.attach(Box::new(AttachedLayer {
                layer: Arc::downgrade(&layer.shared),
                counters: Arc::clone(&layer.shared.counters),
            }));
        }
        layer
    }
}

/// A layer as node logs see it (see [`crate::NodeLogs::layer_metrics`]).
struct AttachedLayer {
    layer: std::sync::Weak<LayerState>,
    counters: Arc<LayerCounters>,
}

impl crate::node::Attached for AttachedLayer {
    fn flush_summaries(&self) {
        if let Some(shared) = self.layer.upgrade() {
            shared.flush_summaries();
        }
    }

    fn metrics(&self) -> LayerMetrics {
        self.counters.snapshot()
    }
}

/// The transport crates: HTTP/2, HTTP, gRPC, tower, reqwest and TLS. An
/// export goes through them, so their events must never reach a destination
/// that exports over the network: each export would log events for the
/// next one. [`OtlpTracingLayerBuilder::with_denied_targets`] keeps them out.
pub const TRANSPORT_TARGETS: &[&str] = &["h2", "hyper", "hyper_util", "tonic", "tower", "reqwest", "rustls"];

// === impl DestinationHandle ===

/// Changes a layer's destination at runtime.
///
/// Holds the layer weakly, like `tracing_subscriber::reload::Handle`: once
/// the layer is dropped, [`set`](Self::set) and [`get`](Self::get) return
/// [`HandleError`]. The layer's counters stay readable through
/// [`metrics`](Self::metrics) after the layer is gone, for a final report.
///
/// # Examples
///
/// ```
/// use selftrace::{Destination, OtlpBytesChannel, OtlpTracingLayer};
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let layer = OtlpTracingLayer::new(Destination::Console);
/// let handle = layer.handle();
/// let channel = OtlpBytesChannel::new(16);
/// let subscriber = tracing_subscriber::registry().with(layer);
/// tracing::subscriber::with_default(subscriber, || {
///     handle.set(Destination::Channel(channel.sender())).unwrap();
///     tracing::info!("to the channel");
/// });
/// assert_eq!(channel.receiver().len(), 1);
/// ```
#[derive(Clone)]
pub struct DestinationHandle {
    shared: Weak<LayerState>,
    counters: Arc<LayerCounters>,
}

impl fmt::Debug for DestinationHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DestinationHandle").field("layer_alive", &(self.shared.strong_count() > 0)).finish()
    }
}

/// The layer behind a [`DestinationHandle`] is gone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandleError(());

impl fmt::Display for HandleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the layer behind this handle was dropped")
    }
}

impl std::error::Error for HandleError {}

impl DestinationHandle {
    fn shared(&self) -> Result<Arc<LayerState>, HandleError> {
        self.shared.upgrade().ok_or(HandleError(()))
    }

    /// Makes `destination` the layer's destination and returns the previous
    /// one. Events already past their destination load finish where they
    /// were going.
    ///
    /// # Errors
    ///
    /// [`HandleError`] when the layer was dropped.
    pub fn set(&self, destination: Destination) -> Result<Destination, HandleError> {
        let shared = self.shared()?;
        let current = shared.destination.load_full();
        if let Destination::Startup(buffer) = &*current
            && !matches!(&destination, Destination::Startup(next) if next.same(buffer))
        {
            // What the buffer kept goes first; the swap happens under its
            // lock, so no new event passes the kept ones.
            let _guard = LayerGuard::enter();
            let next = Arc::new(destination);
            let mut previous = None;
            shared.hand_over(buffer, &next, || previous = Some(shared.swap_destination(next.clone())));
            return Ok(previous.map_or(Destination::Noop, Arc::unwrap_or_clone));
        }
        let previous = shared.swap_destination(Arc::new(destination));
        Ok(Arc::unwrap_or_clone(previous))
    }

    /// A copy of the current destination.
    ///
    /// # Errors
    ///
    /// [`HandleError`] when the layer was dropped.
    pub fn get(&self) -> Result<Destination, HandleError> {
        Ok(Destination::clone(&self.shared()?.destination.load()))
    }

    /// Writes now the summary of every callsite whose events flood control
    /// is suppressing, whether or not its window has ended (before a
    /// shutdown or a change of destination); returns how many it wrote.
    /// Dropping the layer does the same.
    ///
    /// # Errors
    ///
    /// [`HandleError`] when the layer was dropped.
    pub fn flush_summaries(&self) -> Result<usize, HandleError> {
        Ok(self.shared()?.flush_summaries())
    }

    /// A snapshot of the layer's counters (also after the layer is gone).
    pub fn metrics(&self) -> LayerMetrics {
        self.counters.snapshot()
    }
}

impl Drop for LayerState {
    /// A startup buffer nobody took is printed on the console, and the
    /// summaries of flood control still pending go out with the layer.
    fn drop(&mut self) {
        let Some(_guard) = LayerGuard::enter() else { return };
        let destination = self.destination.load_full();
        let target = match &*destination {
            Destination::Startup(buffer) => {
                let console = Destination::Console;
                self.hand_over(buffer, &console, || {});
                console
            }
            other => other.clone(),
        };
        let Some(flood) = &self.flood else { return };
        let now = now_unix_nanos();
        flood.table.sweep(now, true, |info, summary| {
            let record = SummaryRecord { info, summary, time: now };
            // Without this thread's encoder (it needs the `Arc`): one of
            // its own per summary, at the layer's end.
            let outcome = target.take_record(&info.to, &record, &|record| self.encode_one(&info.to, record));
            self.count(outcome, &info.to, &record);
        });
    }
}

// === impl Layer ===

impl<S: Subscriber + for<'l> LookupSpan<'l>> Layer<S> for OtlpTracingLayer {
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, cx: Context<'_, S>) {
        let Some(fields) = &self.shared.span_fields else { return };
        if attrs.fields().is_empty() || !fields.wants(attrs.metadata().name()) {
            return;
        }
        let Some(span) = cx.span(id) else { return };
        // Recorded once: another logs layer, or a span layer (which keeps
        // them with the span's ids), may have recorded them already.
        if fields_recorded(&span.extensions()) {
            return;
        }
        let recorded = Recorded::new(attrs, self.shared.limits.max_value_bytes());
        let mut extensions = span.extensions_mut();
        if !recorded.is_empty() && extensions.get_mut::<Recorded>().is_none() {
            extensions.insert(recorded);
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, cx: Context<'_, S>) {
        let Some(fields) = &self.shared.span_fields else { return };
        let Some(span) = cx.span(id) else { return };
        if !fields.wants(span.name()) {
            return;
        }
        let max_value = self.shared.limits.max_value_bytes();
        let mut extensions = span.extensions_mut();
        if let Some(recorded) = extensions.get_mut::<Recorded>() {
            return recorded.record(values, max_value);
        }
        // A span layer keeps them: it records what comes later.
        #[cfg(feature = "traces")]
        if crate::traces::records_fields(&mut extensions) {
            return;
        }
        let mut recorded = Recorded::default();
        recorded.record(values, max_value);
        if !recorded.is_empty() {
            extensions.insert(recorded);
        }
    }

    fn on_event(&self, event: &Event<'_>, cx: Context<'_, S>) {
        // The ids of the span the event is in, traced by an `OtlpSpanLayer`
        // (looked up only for an event that is delivered).
        #[cfg(feature = "traces")]
        let ids = || {
            crate::traces::any_span_layer()
                .then(|| cx.event_span(event))
                .flatten()
                .and_then(|span| crate::traces::trace_context(&span))
        };
        #[cfg(not(feature = "traces"))]
        let ids = || None;
        match &self.shared.span_fields {
            None => self.shared.on_event(event, None, ids),
            Some(fields) => {
                let source = EventScope { cx: &cx, event };
                self.shared.on_event(event, Some(EventSpans { fields, source: &source }), ids);
            }
        }
    }
}

/// The spans of an event, from the registry.
struct EventScope<'c, S> {
    cx: &'c Context<'c, S>,
    event: &'c Event<'c>,
}

impl<S: Subscriber + for<'l> LookupSpan<'l>> SpanSource for EventScope<'_, S> {
    fn for_each_span(&self, f: &mut dyn FnMut(&str, &Recorded)) {
        let Some(scope) = self.cx.event_scope(self.event) else { return };
        for span in scope {
            if let Some(recorded) = span_fields(&span.extensions()) {
                f(span.name(), recorded);
            }
        }
    }
}
thread_local! {
    /// The destination this thread last used for each live layer (usually
    /// one), with the stamp it was loaded at (only one that
    /// [`DestinationStamp::keeps`]) and this thread's counts for the layer.
    static KEPT: RefCell<Vec<KeptDestination>> = const { RefCell::new(Vec::new()) };
}

/// A destination a thread keeps between events, for one layer.
struct KeptDestination {
    /// The layer (weak: an entry does not keep it, and while the entry
    /// lives no other layer takes its address).
    owner: Weak<LayerState>,
    stamp: u64,
    destination: Arc<Destination>,
    /// Events this thread delivered there, counted without a locked
    /// instruction.
    counts: ThreadCountsGuard,
    /// This thread's buffer in the destination's node logs
    /// (`Destination::Buffered`): no lookup of the thread's buffers.
    buffer: Option<ThreadBuffer>,
}

impl KeptDestination {
    /// Keeps `layer`'s current destination (loaded after `stamp` was read:
    /// that destination or a newer one, which the next event's stamp
    /// replaces) and this thread's buffer where it is node logs.
    fn keep(&mut self, layer: &LayerState, stamp: u64) {
        self.destination = layer.destination.load_full();
        self.buffer = match &*self.destination {
            Destination::Buffered(node_logs) => node_logs.thread_buffer(),
            _ => None,
        };
        self.stamp = stamp;
    }
}

/// Stamps of destinations: each one a layer is built with or given gets a
/// number no destination had before, never 0 (odd: a thread may keep it between
/// events; see [`KEPT`]). A thread keeps only destinations that hold no
/// channel sender or startup buffer of their own (node logs, the console,
/// none): a sender kept by a thread that logs no more would keep its
/// channel open, and a consumer waiting for its senders to go would wait
/// for ever. A kept destination lives until the thread's next event through
/// the layer after a change, or until the thread ends, as the thread's
/// buffer in those node logs does.
struct DestinationStamp;

impl DestinationStamp {
    fn next(destination: &Destination) -> u64 {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let number = NEXT.fetch_add(1, Ordering::Relaxed) << 1;
        let keeps = !matches!(destination, Destination::Channel(_) | Destination::Startup(_));
        number | u64::from(keeps)
    }

    #[inline]
    fn keeps(stamp: u64) -> bool {
        stamp & 1 == 1
    }
}

thread_local! {
    /// This thread's encoder for each live layer (usually one).
    static ENCODERS: RefCell<Vec<LocalEncoder>> = const { RefCell::new(Vec::new()) };
}

struct LocalEncoder {
    owner: Weak<LayerState>,
    encoder: StatefulOtlpEncoder,
    counts: ThreadCountsGuard,
}
impl LayerState {
    fn on_event(
        self: &Arc<Self>,
        event: &Event<'_>,
        spans: Option<EventSpans<'_>>,
        ids: impl FnOnce() -> Option<TraceContext>,
    ) {
        // Already inside selftrace or a pipeline scope, or raised by the
        // OpenTelemetry pipeline itself (an exporter's transport, the SDK's
        // own diagnostics): never fed back in.
        let guard = LayerGuard::enter();
        if guard.is_none() || otel_suppressed() {
            // The transport crates' own rule first (their exporter's thread
            // logs at every request): kept out, printed only at its level.
            if let Some(denied) = &self.denied {
                let log_meta = record::log_metadata(event);
                let target = log_meta.as_ref().map_or(event.metadata().target(), |m| m.target());
                if denied.denies(target) {
                    return self.divert(denied.logger, denied.level, event, log_meta);
                }
            }
            let record = self.record(event);
            return self.drop_event(DropReason::Reentrant, record.target(), &record);
        }
        // `log` records (reqwest, rustls and others log through `log`) carry
        // their real target in their fields: recovered once, here.
        let mut log_meta = record::log_metadata(event);
        let target = log_meta.as_ref().map_or(event.metadata().target(), |m| m.target());
        // A zone thread: its own logger, never a destination or a node.
        if let Some(logger) = zone_thread_logger() {
            return self.divert(logger, LevelFilter::ERROR, event, log_meta);
        }
        // The transport crates: never exported, in a node scope or not.
        if let Some(denied) = &self.denied
            && denied.denies(target)
        {
            return self.divert(denied.logger, denied.level, event, log_meta);
        }
        // Inside a node scope the node decides: its logger, its attribution.
        let in_node = node::with_current(|node| {
            node.log_from_layer(target, &self.record_with(event, log_meta.take()).with_spans(spans))
        });
        if in_node.is_some() {
            return self.counters.delivered();
        }
        // Stamped (and given its trace context) once admitted: a suppressed
        // event mostly reads no clock, and does not load the destination.
        let mut record = TracingLogRecord::with_log_metadata(event, log_meta, 0)
            .with_spans(spans)
            .with_code_location(self.code_location);
        if let Some(flood) = &self.flood {
            let admitted = flood.table.admit(
                Key { site: record.flood_site(), node: 0 },
                flood.limit,
                now_unix_nanos,
                || SiteInfo::new(&record, record.target().into(), flood.limit),
                || flood::opts_out(&record),
                |info, summary| {
                    let time = now_unix_nanos();
                    self.deliver(&self.destination.load(), &info.to, &SummaryRecord { info, summary, time });
                },
            );
            match admitted {
                Admit::Pass => {}
                Admit::Suppress => return self.counters.dropped(DropReason::Suppressed),
                Admit::Untracked => self.counters.untracked(),
            }
        }
        self.deliver_to_current(&mut record, ids);
    }

    /// The end of `on_event`: `record` stamped, given its trace context and
    /// delivered to `destination` (not stamped where it is dropped).
    #[inline(always)]
    fn deliver_event(
        self: &Arc<Self>,
        destination: &Destination,
        record: &mut TracingLogRecord<'_>,
        ids: impl FnOnce() -> Option<TraceContext>,
        kept: Option<&KeptDestination>,
    ) {
        match destination {
            // Discarded on purpose: not even the clock is read.
            Destination::Noop => return self.counters.dropped(DropReason::Discarded),
            // Full since a send found it so: not encoded, not even stamped
            // unless the raw logger prints it.
            Destination::Channel(sender) if sender.is_refusing() => {
                self.counters.dropped(DropReason::ChannelFull);
                return raw_log_lazy(DropReason::ChannelFull, || {
                    record.stamp(now_unix_nanos());
                    &*record
                });
            }
            _ => {}
        }
        let now = now_unix_nanos();
        record.stamp(now);
        record.set_trace_context(self.current_trace_context().or_else(ids));
        if let Some(flood) = &self.flood
            && flood.table.is_due(now)
        {
            self.write_summaries(destination, now, false);
        }
        self.deliver_counted(destination, record.target(), &*record, kept);
    }

    /// Makes `next` the destination (and gives it a new stamp); returns the
    /// previous one.
    fn swap_destination(&self, next: Arc<Destination>) -> Arc<Destination> {
        let stamp = DestinationStamp::next(&next);
        let previous = self.destination.swap(next);
        // After the swap: a thread that reads the new stamp loads the new
        // destination.
        self.stamp.store(stamp, Ordering::Release);
        previous
    }

    /// Delivers `record` (see `deliver_event`) to the current destination:
    /// this thread's copy of it when it has the current stamp (no atomic
    /// read-modify-write), else loaded (and kept for the next events when
    /// it may be; see [`DestinationStamp`]).
    #[inline(always)]
    fn deliver_to_current(
        self: &Arc<Self>,
        record: &mut TracingLogRecord<'_>,
        ids: impl FnOnce() -> Option<TraceContext>,
    ) {
        let stamp = self.stamp.load(Ordering::Acquire);
        if !DestinationStamp::keeps(stamp) {
            return self.deliver_event(&self.destination.load(), record, ids, None);
        }
        let mut ids = Some(ids);
        let _ = KEPT.try_with(|cell| {
            let Ok(mut kept) = cell.try_borrow_mut() else { return };
            let Some(entry) = self.entry_in(
                &mut kept,
                |k| &k.owner,
                // Stamp 0, which no destination has: kept below.
                || KeptDestination {
                    owner: Arc::downgrade(self),
                    stamp: 0,
                    destination: Arc::new(Destination::Noop),
                    counts: self.counters.for_this_thread(),
                    buffer: None,
                },
            ) else {
                return;
            };
            if entry.stamp != stamp {
                entry.keep(self, stamp);
            }
            if let Some(ids) = ids.take() {
                self.deliver_event(&entry.destination, record, ids, Some(entry));
            }
        });
        // No thread-local (thread teardown) or already borrowed.
        if let Some(ids) = ids.take() {
            self.deliver_event(&self.destination.load(), record, ids, None);
        }
    }

    /// Hands one record to `destination`, counting it.
    #[inline]
    fn deliver<R: LogRecordView + ?Sized>(self: &Arc<Self>, destination: &Destination, scope: &str, record: &R) {
        self.deliver_counted(destination, scope, record, None);
    }

    /// One delivered event, in this thread's `counts` for the layer where
    /// given (no locked instruction), else in the layer's shared counters.
    #[inline(always)]
    fn count_delivered(&self, counts: Option<&ThreadCounts>) {
        match counts {
            Some(counts) => counts.delivered(),
            None => self.counters.delivered(),
        }
    }

    /// [`deliver`](Self::deliver) to `destination`, which this thread keeps
    /// as `kept` where given: a delivery to node logs or the console counted
    /// in the thread's counts for the layer, node logs' buffer for this
    /// thread kept with it.
    #[inline(always)]
    fn deliver_counted<R: LogRecordView + ?Sized>(
        self: &Arc<Self>,
        destination: &Destination,
        scope: &str,
        record: &R,
        kept: Option<&KeptDestination>,
    ) {
        let counts = kept.map(|kept| &*kept.counts);
        match destination {
            Destination::Noop => self.counters.dropped(DropReason::Discarded),
            Destination::Console => {
                console::print_console_line(scope, record);
                self.count_delivered(counts);
            }
            // Refused (shut down, no channel to buffer for): counted once,
            // here, not delivered here and dropped again there.
            Destination::Buffered(node_logs) => {
                match node_logs.log_unattributed(scope, record, kept.and_then(|kept| kept.buffer.as_ref())) {
                    Ok(()) => self.count_delivered(counts),
                    Err(DropReason::Discarded) => self.counters.dropped(DropReason::Discarded),
                    Err(reason) => self.drop_event(reason, scope, record),
                }
            }
            Destination::OtlpJson(stream) => self.print_json(*stream, scope, record),
            Destination::Channel(sender) => {
                // Counted in this thread's own counts where there are some.
                let refused =
                    self.with_encoder(|encoder, counts| self.encode_and_send(encoder, counts, sender, scope, record));
                if let Some(reason) = refused {
                    self.drop_event(reason, scope, record);
                }
            }
            Destination::Startup(buffer) => self.keep(buffer, scope, record),
        }
    }

    /// Encodes `record` as one request and prints it as an OTLP/JSON line.
    #[cold]
    fn print_json<R: LogRecordView + ?Sized>(self: &Arc<Self>, stream: ConsoleStream, scope: &str, record: &R) {
        let Some(request) = self.encode_alone(scope, record) else { return };
        crate::json::print_encoded(&request, stream);
        self.counters.delivered();
    }

    /// Keeps `record`, encoded, in a startup buffer.
    #[cold]
    fn keep<R: LogRecordView + ?Sized>(self: &Arc<Self>, buffer: &StartupBuffer, scope: &str, record: &R) {
        let Some(request) = self.encode_alone(scope, record) else { return };
        self.keep_request(buffer, request, record.time_unix_nano().unwrap_or(0));
    }

    /// `record` as a request of its own, from this thread's encoder, its
    /// cut values counted; `None` when it is too large (dropped, counted).
    fn encode_alone<R: LogRecordView + ?Sized>(self: &Arc<Self>, scope: &str, record: &R) -> Option<OtlpBytes> {
        let encoded = self.with_encoder(|encoder, _| {
            let cut = encoder.encode_log_record(scope, record).ok()?;
            Some((encoder.flush(), cut))
        });
        let Some((request, cut)) = encoded else {
            self.drop_event(DropReason::RecordTooLarge, scope, record);
            return None;
        };
        if cut > 0 {
            self.counters.truncated(cut);
        }
        Some(request)
    }

    /// Keeps an encoded request in a startup buffer, counted as buffered.
    fn keep_request(&self, buffer: &StartupBuffer, request: OtlpBytes, time: u64) {
        match buffer.push(request, time, Some(&self.counters)) {
            Push::Kept => {}
            // Counted; the hand-over adds one record that says how many.
            Push::Full => self.counters.dropped(DropReason::StartupBufferFull),
            // Handed over meanwhile: where the layer sends now (a buffer
            // handed over is never taken again: set it as the destination
            // anew and its events are refused).
            Push::Closed(request) => {
                let now = self.destination.load_full();
                match &*now {
                    Destination::Startup(again) if again.same(buffer) => {
                        self.counters.dropped(DropReason::StartupBufferFull)
                    }
                    now => self.send_request(now, request),
                }
            }
        }
    }

    /// Hands a kept request to `destination`, counting where it went.
    fn send_request(&self, destination: &Destination, request: OtlpBytes) {
        match destination {
            Destination::Startup(buffer) => self.keep_request(buffer, request, now_unix_nanos()),
            other => match other.take_request(request) {
                None => self.counters.delivered(),
                Some(reason) => {
                    self.counters.dropped(reason);
                    if reason != DropReason::Discarded {
                        raw_note(reason, format_args!("startup buffer: a request refused at the hand-over"));
                    }
                }
            },
        }
    }

    /// Hands what `buffer` kept to `next` (see [`StartupBuffer`]), `then`
    /// under its lock.
    fn hand_over(&self, buffer: &StartupBuffer, next: &Destination, then: impl FnOnce()) {
        let encode = |record: &dyn LogRecordView| self.encode_one(startup::OVERFLOW_SCOPE, record);
        let send_record = |record: &dyn LogRecordView| match next {
            Destination::Startup(_) => {
                if let Some(request) = encode(record) {
                    self.send_request(next, request);
                }
            }
            _ => {
                self.count(next.take_record(startup::OVERFLOW_SCOPE, record, &encode), startup::OVERFLOW_SCOPE, record)
            }
        };
        buffer.hand_over(Some(&self.counters), &|request| self.send_request(next, request), &send_record, then);
    }

    /// Counts a record handed on outside the event path: delivered, or
    /// dropped (and noted) for `outcome`.
    fn count<R: LogRecordView + ?Sized>(&self, outcome: Option<DropReason>, scope: &str, record: &R) {
        match outcome {
            None => self.counters.delivered(),
            Some(DropReason::Discarded) => self.counters.dropped(DropReason::Discarded),
            Some(reason) => self.drop_event(reason, scope, record),
        }
    }

    /// One record as a request of its own, with the layer's resource.
    fn encode_one(&self, scope: &str, record: &dyn LogRecordView) -> Option<OtlpBytes> {
        let mut encoder = self.new_encoder();
        encoder.encode_log_record(scope, record).ok()?;
        Some(encoder.flush())
    }

    /// Encodes `record` as one request and sends it; the reason when it was
    /// not delivered.
    #[inline]
    fn encode_and_send<R: LogRecordView + ?Sized>(
        &self,
        encoder: &mut StatefulOtlpEncoder,
        counts: Option<&ThreadCounts>,
        sender: &OtlpBytesSender,
        scope: &str,
        record: &R,
    ) -> Option<DropReason> {
        let truncated = match encoder.encode_log_record(scope, record) {
            Ok(truncated) => truncated,
            Err(_) => return Some(DropReason::RecordTooLarge),
        };
        let sent = sender.try_send(encoder.flush());
        match counts {
            Some(counts) => {
                if truncated > 0 {
                    counts.truncated(truncated);
                }
                if sent.is_ok() {
                    counts.delivered();
                }
            }
            None => {
                if truncated > 0 {
                    self.counters.truncated(truncated);
                }
                if sent.is_ok() {
                    self.counters.delivered();
                }
            }
        }
        sent.err().map(|refused| refused.drop_reason())
    }

    /// Writes every pending flood summary now, to the current destination,
    /// never fed back into the layer (a handle's `flush_summaries`, node
    /// logs shutting down).
    fn flush_summaries(self: &Arc<Self>) -> usize {
        let destination = self.destination.load();
        let Some(_guard) = LayerGuard::enter() else { return 0 };
        self.write_summaries(&destination, now_unix_nanos(), true)
    }

    /// Writes the summaries of flood control whose window ended by `now`
    /// (every pending one when `all`) to `destination`.
    #[cold]
    fn write_summaries(self: &Arc<Self>, destination: &Destination, now: u64, all: bool) -> usize {
        let Some(flood) = &self.flood else { return 0 };
        flood.table.sweep(now, all, |info, summary| {
            self.deliver(destination, &info.to, &SummaryRecord { info, summary, time: now });
        })
    }

    /// An event kept away from the destination (a denied target, a zone
    /// thread): to `logger` when it prints at `level`, else discarded (and
    /// not stamped).
    #[cold]
    fn divert<'a>(&self, logger: NodeLogger, level: LevelFilter, event: &'a Event<'a>, log_meta: Option<Metadata<'a>>) {
        let shown = *log_meta.as_ref().unwrap_or(event.metadata()).level() <= level;
        match logger {
            NodeLogger::Console if shown => {
                let record = self.record_with(event, log_meta);
                console::print_console_line(record.target(), &record);
                self.counters.delivered();
            }
            NodeLogger::Raw if shown => {
                let record = self.record_with(event, log_meta);
                crate::raw::raw_record(record.target(), &record);
                self.counters.delivered();
            }
            _ => self.counters.dropped(DropReason::Discarded),
        }
    }

    /// The view of `event`, stamped now.
    fn record<'a>(&self, event: &'a Event<'a>) -> TracingLogRecord<'a> {
        self.record_with(event, record::log_metadata(event))
    }

    /// The view of `event` with its `log` metadata already recovered,
    /// stamped now.
    fn record_with<'a>(&self, event: &'a Event<'a>, log_meta: Option<Metadata<'a>>) -> TracingLogRecord<'a> {
        TracingLogRecord::with_log_metadata(event, log_meta, now_unix_nanos())
            .with_trace_context(self.current_trace_context())
            .with_code_location(self.code_location)
    }

    fn drop_event<R: LogRecordView + ?Sized>(&self, reason: DropReason, scope: &str, record: &R) {
        self.counters.dropped(reason);
        raw_log(reason, scope, record);
    }

    /// Runs `f` with this thread's encoder for this layer, creating it on
    /// first use. The thread-local stays borrowed while `f` runs; the layer
    /// guard keeps this thread from coming back here meanwhile. During thread
    /// teardown, when thread-locals are gone, a temporary encoder is used.
    fn with_encoder<R>(self: &Arc<Self>, mut f: impl FnMut(&mut StatefulOtlpEncoder, Option<&ThreadCounts>) -> R) -> R {
        let ran = ENCODERS
            .try_with(|cell| {
                let mut list = cell.try_borrow_mut().ok()?;
                let local = self.entry_in(
                    &mut list,
                    |e| &e.owner,
                    || LocalEncoder {
                        owner: Arc::downgrade(self),
                        encoder: self.new_encoder(),
                        counts: self.counters.for_this_thread(),
                    },
                )?;
                Some(f(&mut local.encoder, Some(&local.counts)))
            })
            .ok()
            .flatten();
        match ran {
            Some(result) => result,
            None => f(&mut self.new_encoder(), None),
        }
    }

    /// This layer's entry in `list`, a thread-local list with an entry per
    /// live layer (`owner` names an entry's layer): found by the layer's
    /// address (its `Weak` in the entry keeps the address from being
    /// reused), or, on this layer's first use on the thread, made by `make`
    /// after the entries of layers that are gone are dropped.
    #[inline]
    fn entry_in<'l, T>(
        self: &Arc<Self>,
        list: &'l mut Vec<T>,
        owner: impl Fn(&T) -> &Weak<LayerState>,
        make: impl FnOnce() -> T,
    ) -> Option<&'l mut T> {
        let me = Arc::as_ptr(self);
        let index = match list.iter().position(|e| std::ptr::eq(owner(e).as_ptr(), me)) {
            Some(index) => index,
            None => {
                list.retain(|e| owner(e).strong_count() > 0);
                list.push(make());
                list.len() - 1
            }
        };
        list.get_mut(index)
    }

    fn new_encoder(&self) -> StatefulOtlpEncoder {
        StatefulOtlpEncoder::with_limits(self.limits, self.resource.clone())
    }

    #[cfg(feature = "trace")]
    fn current_trace_context(&self) -> Option<TraceContext> {
        use opentelemetry::trace::TraceContextExt;
        if !self.trace_context {
            return None;
        }
        // See `otel_suppressed` for why the access may fail.
        std::panic::catch_unwind(|| {
            opentelemetry::Context::map_current(|cx| {
                let span = cx.span();
                let sc = span.span_context();
                sc.is_valid().then(|| TraceContext {
                    trace_id: sc.trace_id().to_bytes(),
                    span_id: sc.span_id().to_bytes(),
                    flags: sc.trace_flags().to_u8(),
                })
            })
        })
        .ok()
        .flatten()
    }

    #[cfg(not(feature = "trace"))]
    #[inline]
    fn current_trace_context(&self) -> Option<TraceContext> {
        let _ = self.trace_context;
        None
    }
}
