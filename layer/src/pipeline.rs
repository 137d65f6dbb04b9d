//! What the current thread is doing, below everything else: inside
//! selftrace (the re-entrancy flag), in a [`PipelineScope`], on a zone
//! thread ([`enter_zone_thread`]), or inside an OpenTelemetry
//! telemetry-suppressed context. Every path of an event checks these first.

use std::{cell::Cell, marker::PhantomData};

use crate::logger::NodeLogger;

thread_local! {
    /// Set while this thread is inside the layer.
    static IN_LAYER: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as inside the layer until dropped.
pub(crate) struct LayerGuard;

impl LayerGuard {
    #[inline]
    pub(crate) fn enter() -> Option<Self> {
        // Build the guard only when this call set the flag: a guard dropped
        // on the other path would clear a flag it does not own.
        let entered = IN_LAYER.try_with(|flag| !flag.replace(true)).unwrap_or(false);
        if entered { Some(LayerGuard) } else { None }
    }
}

impl Drop for LayerGuard {
    #[inline]
    fn drop(&mut self) {
        let _ = IN_LAYER.try_with(|flag| flag.set(false));
    }
}

// === impl PipelineScope ===

/// Marks the current thread as part of the telemetry pipeline until dropped.
///
/// While a `PipelineScope` lives, events raised on this thread, third-party
/// `tracing` events and `otel_*!` records alike, do not enter selftrace's
/// paths: they go to the raw logger and are counted as
/// [`DropReason::Reentrant`](crate::DropReason::Reentrant). The threads that carry selftrace's bytes onward
/// (the SDK bridge's consumer, an exporter's thread) enter one, so an exporter
/// that logs (hyper, tonic and reqwest do) cannot feed its own logs back in.
///
/// Scopes nest; dropping one restores the state it found. The guard is
/// `!Send`: it belongs to the thread that entered it, so in async code enter
/// it around synchronous sections, not across `.await`.
///
/// The layer also treats events raised inside an OpenTelemetry
/// telemetry-suppressed context
/// (`opentelemetry::Context::enter_telemetry_suppressed_scope`, which the
/// SDK's processors enter around exports) the same way.
///
/// # Examples
///
/// ```
/// use selftrace::pipeline::enter_pipeline_scope;
///
/// assert!(!selftrace::pipeline::in_pipeline_scope());
/// {
///     let _scope = enter_pipeline_scope();
///     assert!(selftrace::pipeline::in_pipeline_scope());
///     // export, flush, ...: any event raised here goes to the raw logger
/// }
/// assert!(!selftrace::pipeline::in_pipeline_scope());
/// ```
#[derive(Debug)]
#[must_use = "the scope ends when the guard is dropped"]
pub struct PipelineScope {
    previous: bool,
    _not_send: PhantomData<*const ()>,
}

/// Marks the current thread as part of the telemetry pipeline until the
/// returned guard is dropped; see [`PipelineScope`].
pub fn enter_pipeline_scope() -> PipelineScope {
    let previous = IN_LAYER.try_with(|flag| flag.replace(true)).unwrap_or(true);
    PipelineScope { previous, _not_send: PhantomData }
}

/// Whether the current thread is inside selftrace or a [`PipelineScope`].
pub fn in_pipeline_scope() -> bool {
    IN_LAYER.try_with(Cell::get).unwrap_or(true)
}

impl Drop for PipelineScope {
    fn drop(&mut self) {
        let previous = self.previous;
        let _ = IN_LAYER.try_with(|flag| flag.set(previous));
    }
}

// === zone threads ===

thread_local! {
    /// This thread's zone logger, when it is a zone thread.
    static ZONE: Cell<Option<NodeLogger>> = const { Cell::new(None) };
}

/// Marks the current thread as a zone thread until the guard is dropped;
/// see [`zone_thread_start`] for whole runtimes.
///
/// The anti-recursion zone is the part of an engine that carries its own
/// logs (the Internal Telemetry Receiver, what runs downstream of it, the
/// exporters). On a zone thread every event, a third-party `tracing` event
/// or an `otel_*!` record, in a node scope or not, goes to `logger` instead
/// of any destination or node: `Noop` (and `Default`) discard it, counted as
/// [`DropReason::Discarded`](crate::DropReason::Discarded); `Console` and `Raw` print ERROR events and
/// discard the rest. So a task a library spawns there without the node's
/// scope (a retry timer, a connection pool) cannot feed the pipeline either.
///
/// # Examples
///
/// ```
/// use selftrace::{Destination, DropReason, NodeLogger, OtlpBytesChannel, OtlpTracingLayer};
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let channel = OtlpBytesChannel::new(8);
/// let layer = OtlpTracingLayer::new(Destination::Channel(channel.sender()));
/// let handle = layer.handle();
/// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
///     let _zone = selftrace::pipeline::enter_zone_thread(NodeLogger::Noop);
///     tracing::info!("a library in the zone");
/// });
/// assert!(channel.receiver().is_empty());
/// assert_eq!(handle.metrics().dropped(DropReason::Discarded), 1);
/// ```
pub fn enter_zone_thread(logger: NodeLogger) -> ZoneThread {
    let previous = ZONE.try_with(|zone| zone.replace(Some(logger))).unwrap_or(None);
    ZoneThread { previous, _not_send: PhantomData }
}

/// A hook for `tokio::runtime::Builder::on_thread_start` (or any thread
/// start): every thread it runs on becomes a zone thread for its whole life
/// (see [`enter_zone_thread`]). Run the engine's internal pipeline on a
/// runtime of its own built with it.
///
/// ```
/// # use selftrace::NodeLogger;
/// let zone = tokio::runtime::Builder::new_multi_thread()
///     .worker_threads(1)
///     .on_thread_start(selftrace::pipeline::zone_thread_start(NodeLogger::Noop))
///     .build()?;
/// zone.block_on(async {
///     tokio::spawn(async { assert_eq!(selftrace::pipeline::zone_thread_logger(), Some(NodeLogger::Noop)) }).await
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn zone_thread_start(logger: NodeLogger) -> impl Fn() + Send + Sync + 'static {
    move || {
        let _ = ZONE.try_with(|zone| zone.set(Some(logger)));
    }
}

/// The current thread's zone logger, if it is a zone thread.
#[inline]
pub fn zone_thread_logger() -> Option<NodeLogger> {
    ZONE.try_with(Cell::get).ok().flatten()
}

/// Keeps the current thread in the zone; see [`enter_zone_thread`].
#[derive(Debug)]
#[must_use = "the thread leaves the zone when the guard is dropped"]
pub struct ZoneThread {
    previous: Option<NodeLogger>,
    _not_send: PhantomData<*const ()>,
}

impl Drop for ZoneThread {
    fn drop(&mut self) {
        let previous = self.previous;
        let _ = ZONE.try_with(|zone| zone.set(previous));
    }
}

/// Whether this thread runs inside an OpenTelemetry telemetry-suppressed
/// context. The context is a thread-local with a destructor: an event raised
/// while this thread's locals are being torn down must not panic here, so an
/// access that fails counts as suppressed.
#[inline]
pub(crate) fn otel_suppressed() -> bool {
    std::panic::catch_unwind(opentelemetry::Context::is_current_telemetry_suppressed).unwrap_or(true)
}
