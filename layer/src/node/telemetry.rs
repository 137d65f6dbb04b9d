//! A node's telemetry handles ([`LocalTelemetry`], [`SharedTelemetry`],
//! the [`NodeTelemetry`] trait the `otel_*!` macros log through) and node
//! scopes ([`NodeGuard`], [`InNode`]).

use std::{
    cell::{Cell, RefCell},
    fmt,
    future::Future,
    marker::PhantomData,
    pin::Pin,
    rc::Rc,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
};

use tracing_core::Level;

use self::sealed::Sealed as _;
use super::{
    Node,
    buffer::{Buffer, LogsInner, record_level},
};
use crate::{
    metrics::DropReason,
    pipeline::{LayerGuard, otel_suppressed, zone_thread_logger},
    record::TracingLogRecord,
    spans::CurrentSpans,
    view::LogRecordView,
};

/// What the `otel_*!` macros need from an effect handler: the node's
/// telemetry.
///
/// [`LocalTelemetry`] and [`SharedTelemetry`] implement it; an engine's own
/// effect handler implements it by forwarding to the one it holds, so that
/// `otel_info!(effect, ..)` works on it directly.
///
/// # Examples
///
/// ```
/// use selftrace::{node::NodeTelemetry, view::LogRecordView, SharedTelemetry};
/// use tracing::Level;
///
/// struct EffectHandler {
///     telemetry: SharedTelemetry,
///     // ... the engine's own state
/// }
///
/// impl NodeTelemetry for EffectHandler {
///     fn enabled(&self, level: Level) -> bool {
///         self.telemetry.enabled(level)
///     }
///     fn log_event<R: LogRecordView + ?Sized>(&self, record: &R) {
///         self.telemetry.log_event(record)
///     }
/// }
/// ```
pub trait NodeTelemetry {
    /// Whether a record at `level` would be produced; the macros skip
    /// building it otherwise.
    fn enabled(&self, level: Level) -> bool;

    /// Logs one record. Never fails, never blocks (beyond a flush of one
    /// request by another thread), never panics.
    fn log_event<R: LogRecordView + ?Sized>(&self, record: &R);
}

impl<T: NodeTelemetry + ?Sized> NodeTelemetry for &T {
    fn enabled(&self, level: Level) -> bool {
        (**self).enabled(level)
    }
    fn log_event<R: LogRecordView + ?Sized>(&self, record: &R) {
        (**self).log_event(record)
    }
}

/// The methods and the [`NodeTelemetry`] impl that both node handles
/// share (each has `inner.node`, `inner.logs` and its own `log_unguarded`).
macro_rules! scope_methods {
    ($handle:ident) => {
        impl $handle {
            /// The node.
            pub fn node(&self) -> &Node {
                &self.inner.node
            }

            /// Whether a record at `level` would be produced.
            pub fn enabled(&self, level: Level) -> bool {
                self.inner.logs.enabled(&self.inner.node, level)
            }

            /// Logs one record (see [`NodeTelemetry::log_event`]).
            pub fn log_event<R: LogRecordView + ?Sized>(&self, record: &R) {
                match self.inner.logs.span_fields() {
                    None => guarded(&self.inner.logs, &self.inner.node, record, || self.log_unguarded(record)),
                    Some(fields) => {
                        let record = CurrentSpans { inner: record, fields };
                        guarded(&self.inner.logs, &self.inner.node, &record, || self.log_unguarded(&record))
                    }
                }
            }

            /// Enters this node's scope on this thread until the guard is
            /// dropped.
            pub fn enter(&self) -> NodeGuard {
                NodeGuard::enter(self.clone().into_current())
            }

            /// Runs `f` in this node's scope.
            pub fn in_scope<T>(&self, f: impl FnOnce() -> T) -> T {
                let _guard = self.enter();
                f()
            }

            /// Wraps `future` so that it runs in this node's scope on every
            /// poll, on whatever thread polls it.
            pub fn scope<F: Future>(&self, future: F) -> InNode<F, $handle> {
                InNode::new(Some(self.clone()), future)
            }

            /// The node of this flavour whose scope this thread is in, if
            /// any: to carry the scope into a spawned task (see [`InNode`]).
            pub fn current() -> Option<Self> {
                with_current(|current| Self::from_current(current.clone())).flatten()
            }
        }

        impl NodeTelemetry for $handle {
            fn enabled(&self, level: Level) -> bool {
                $handle::enabled(self, level)
            }
            fn log_event<R: LogRecordView + ?Sized>(&self, record: &R) {
                $handle::log_event(self, record)
            }
        }
    };
}

/// Runs `f` with the re-entrancy guard held; a record raised while this
/// thread is already inside selftrace (or a `PipelineScope`, or an
/// OpenTelemetry suppressed context) goes to the raw logger instead.
fn guarded<R: LogRecordView + ?Sized>(logs: &LogsInner, node: &Node, record: &R, f: impl FnOnce()) {
    match LayerGuard::enter() {
        Some(_guard) if !otel_suppressed() => match zone_thread_logger() {
            None => f(),
            // A zone thread: the zone's logger, never the node logs.
            Some(logger) => logs.divert(logger, node, record),
        },
        _ => logs.refuse(DropReason::Reentrant, node, record),
    }
}

// === LocalTelemetry ===

/// The telemetry of a `!Send` node (thread-per-core engines): records go to
/// its thread's local buffer (`Rc<RefCell<..>>`), with no synchronization.
///
/// Made by [`NodeLogs::local`](crate::NodeLogs::local) on the node's thread.
/// Cloning is cheap.
///
/// # Examples
///
/// ```
/// use selftrace::{Destination, FlushReason, Node, NodeLogs, OtlpBytesChannel, otel_debug};
///
/// let channel = OtlpBytesChannel::new(100);
/// let logs = NodeLogs::new(Destination::Channel(channel.sender()));
/// let telemetry = logs.local(Node::new("processor.batch.0"));
///
/// otel_debug!(telemetry, "batch.sent", size = 512_u64);
/// {
///     let _in_node = telemetry.enter();
///     tracing::info!("a library logging"); // attributed to processor.batch.0
/// }
/// logs.flush(FlushReason::Timer); // on this thread: local buffers are per thread
/// # assert_eq!(channel.receiver().len(), 1);
/// ```
#[derive(Clone)]
pub struct LocalTelemetry {
    inner: Rc<LocalInner>,
}

struct LocalInner {
    node: Node,
    logs: Arc<LogsInner>,
    buffer: Rc<RefCell<Buffer>>,
}

impl fmt::Debug for LocalTelemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalTelemetry").field("node", &self.inner.node).finish_non_exhaustive()
    }
}

impl LocalTelemetry {
    pub(crate) fn new(node: Node, logs: Arc<LogsInner>, buffer: Rc<RefCell<Buffer>>) -> Self {
        Self { inner: Rc::new(LocalInner { node, logs, buffer }) }
    }

    /// Logs with the re-entrancy guard already held (by the layer).
    pub(crate) fn log_unguarded<R: LogRecordView + ?Sized>(&self, record: &R) {
        self.log_at(record.callsite_id().map(|id| id.get() as u64), record);
    }

    /// As `log_unguarded`, with the record's flood control key given.
    pub(crate) fn log_at<R: LogRecordView + ?Sized>(&self, site: Option<u64>, record: &R) {
        let level = record_level(record);
        self.inner.logs.log(&self.inner.node, level, site, record, |f| match self.inner.buffer.try_borrow_mut() {
            Ok(mut buffer) => {
                f(&mut buffer);
                true
            }
            Err(_) => false,
        });
    }
}

scope_methods!(LocalTelemetry);

// === SharedTelemetry ===

/// The telemetry of a `Send` node (work-stealing runtimes): records go to
/// the shared buffer (`Arc<Mutex<..>>`) of whichever thread the node runs
/// on, so two threads never share a lock on the way of a record.
///
/// Made by [`NodeLogs::shared`](crate::NodeLogs::shared). Cloning is cheap.
///
/// Order: when a handle logs from another thread than last time, the buffer
/// it used before is flushed first, so the records of one handle (one task)
/// reach the destination in the order they were logged. Give each task its
/// own clone: one handle used from several threads at once would flush on
/// every switch.
///
/// # Examples
///
/// ```
/// use selftrace::{Destination, FlushReason, Node, NodeLogs, OtlpBytesChannel, otel_warn};
///
/// let channel = OtlpBytesChannel::new(100);
/// let logs = NodeLogs::new(Destination::Channel(channel.sender()));
/// let telemetry = logs.shared(Node::new("exporter.otlp.0"));
///
/// let worker = {
///     let telemetry = telemetry.clone();
///     std::thread::spawn(move || otel_warn!(telemetry, "export.retry", attempt = 2_i64, "endpoint busy"))
/// };
/// worker.join().unwrap();
/// otel_warn!(telemetry, "export.retry", attempt = 3_i64);
///
/// logs.flush(FlushReason::Timer); // from any thread
/// assert_eq!(logs.metrics().events_delivered, 2);
/// ```
pub struct SharedTelemetry {
    inner: Arc<SharedInner>,
    /// The thread buffer this handle logged into last (its address).
    last_buffer: AtomicUsize,
}

impl Clone for SharedTelemetry {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), last_buffer: AtomicUsize::new(self.last_buffer.load(Ordering::Relaxed)) }
    }
}

struct SharedInner {
    node: Node,
    logs: Arc<LogsInner>,
}

impl fmt::Debug for SharedTelemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedTelemetry").field("node", &self.inner.node).finish_non_exhaustive()
    }
}

impl SharedTelemetry {
    pub(crate) fn new(node: Node, logs: Arc<LogsInner>) -> Self {
        Self { inner: Arc::new(SharedInner { node, logs }), last_buffer: AtomicUsize::new(0) }
    }

    /// Logs with the re-entrancy guard already held (by the layer).
    pub(crate) fn log_unguarded<R: LogRecordView + ?Sized>(&self, record: &R) {
        self.log_at(record.callsite_id().map(|id| id.get() as u64), record);
    }

    /// As `log_unguarded`, with the record's flood control key given.
    pub(crate) fn log_at<R: LogRecordView + ?Sized>(&self, site: Option<u64>, record: &R) {
        let level = record_level(record);
        let logs = &self.inner.logs;
        logs.log(&self.inner.node, level, site, record, |f| {
            logs.with_shared_buffer(&self.last_buffer, f);
            true
        });
    }
}

scope_methods!(SharedTelemetry);

// === the current node ===

/// The node a thread is in (public only to the sealed trait; not exported).
#[derive(Clone, Debug)]
pub enum Current {
    Local(LocalTelemetry),
    Shared(SharedTelemetry),
}

impl Current {
    /// The node.
    #[cfg(feature = "traces")]
    pub(crate) fn node(&self) -> &Node {
        match self {
            Current::Local(local) => &local.inner.node,
            Current::Shared(shared) => &shared.inner.node,
        }
    }

    /// Sends a third-party event raised in this node's scope to its logger
    /// (the layer holds the re-entrancy guard).
    pub(crate) fn log_from_layer(&self, target: &str, record: &TracingLogRecord<'_>) {
        let (node, logs) = match self {
            Current::Local(local) => (&local.inner.node, &local.inner.logs),
            Current::Shared(shared) => (&shared.inner.node, &shared.inner.logs),
        };
        if node.denies_target(target) {
            return logs.refuse(DropReason::Discarded, node, record);
        }
        let site = Some(record.flood_site());
        match self {
            Current::Local(local) => local.log_at(site, record),
            Current::Shared(shared) => shared.log_at(site, record),
        }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
    /// Whether `CURRENT` holds a node: read first, and without the
    /// destructor bookkeeping `CURRENT`'s access carries (the common case of
    /// an event outside any node scope).
    static IN_NODE: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` on the current node, if this thread is in a node scope.
#[inline]
pub(crate) fn with_current<T>(f: impl FnOnce(&Current) -> T) -> Option<T> {
    if !IN_NODE.with(Cell::get) {
        return None;
    }
    CURRENT.try_with(|cell| cell.try_borrow().ok().and_then(|current| current.as_ref().map(f))).ok().flatten()
}

/// Makes `node` the current node; gives back the previous one, or `node`
/// itself when the slot cannot be changed (thread teardown, or a swap from
/// inside `with_current`).
fn replace_current(node: Option<Current>) -> Result<Option<Current>, Option<Current>> {
    let mut node = Some(node);
    let swapped = CURRENT.try_with(|cell| match cell.try_borrow_mut() {
        Ok(mut current) => {
            let previous = std::mem::replace(&mut *current, node.take().flatten());
            IN_NODE.with(|in_node| in_node.set(current.is_some()));
            Some(previous)
        }
        Err(_) => None,
    });
    match swapped {
        Ok(Some(previous)) => Ok(previous),
        _ => Err(node.flatten()),
    }
}

/// A node scope entered on this thread; leaving it (dropping the guard)
/// restores the scope that was current before.
#[must_use = "the node scope ends when the guard is dropped"]
pub struct NodeGuard {
    /// The scope to restore; `None` when entering failed.
    previous: Option<Option<Current>>,
    _not_send: PhantomData<Rc<()>>,
}

impl fmt::Debug for NodeGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeGuard").finish_non_exhaustive()
    }
}

impl NodeGuard {
    fn enter(node: Current) -> Self {
        Self { previous: replace_current(Some(node)).ok(), _not_send: PhantomData }
    }
}

impl Drop for NodeGuard {
    fn drop(&mut self) {
        if let Some(previous) = self.previous.take() {
            let _ = replace_current(previous);
        }
    }
}

/// A node telemetry handle that can be the current node:
/// [`LocalTelemetry`] or [`SharedTelemetry`].
pub trait NodeScope: Clone + Unpin + sealed::Sealed {}

mod sealed {
    use super::Current;

    pub trait Sealed: Sized {
        fn into_current(self) -> Current;
        fn from_current(current: Current) -> Option<Self>;
    }
}

impl NodeScope for LocalTelemetry {}
impl NodeScope for SharedTelemetry {}

impl sealed::Sealed for LocalTelemetry {
    fn into_current(self) -> Current {
        Current::Local(self)
    }
    fn from_current(current: Current) -> Option<Self> {
        match current {
            Current::Local(local) => Some(local),
            Current::Shared(_) => None,
        }
    }
}

impl sealed::Sealed for SharedTelemetry {
    fn into_current(self) -> Current {
        Current::Shared(self)
    }
    fn from_current(current: Current) -> Option<Self> {
        match current {
            Current::Shared(shared) => Some(shared),
            Current::Local(_) => None,
        }
    }
}

/// A future that runs in a node's scope on every poll.
///
/// Made by [`SharedTelemetry::scope`] or [`LocalTelemetry::scope`]; `Send`
/// when the future is and the node is shared. The node handle is moved into
/// the thread's scope slot for the poll and back out after it, so a poll
/// costs no reference counting. The future is boxed once, when wrapped.
///
/// Spawned tasks do not inherit a scope; carry it explicitly:
///
/// ```
/// use selftrace::{Destination, node::InNode, Node, NodeLogs, SharedTelemetry};
///
/// # let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
/// # rt.block_on(async {
/// let logs = NodeLogs::new(Destination::Noop);
/// let node = logs.shared(Node::new("receiver.otlp.0"));
/// node.scope(async {
///     let child = InNode::new(SharedTelemetry::current(), async {
///         assert_eq!(SharedTelemetry::current().unwrap().node().id(), "receiver.otlp.0");
///     });
///     tokio::spawn(child).await.unwrap();
/// })
/// .await;
/// # });
/// ```
pub struct InNode<F, T> {
    node: Option<T>,
    future: Pin<Box<F>>,
}

impl<F, T: fmt::Debug> fmt::Debug for InNode<F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InNode").field("node", &self.node).finish_non_exhaustive()
    }
}

impl<F: Future, T: NodeScope> InNode<F, T> {
    /// Wraps `future` to run in `node`'s scope (`None`: in no node's scope
    /// change, which is what carrying `current()` from outside any scope
    /// gives).
    pub fn new(node: Option<T>, future: F) -> Self {
        Self { node, future: Box::pin(future) }
    }
}

impl<F: Future, T: NodeScope> Future for InNode<F, T> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let Some(node) = this.node.take() else {
            return this.future.as_mut().poll(cx);
        };
        // Restores the previous scope even if the poll panics.
        struct Restore(Option<Option<Current>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                if let Some(previous) = self.0.take() {
                    let _ = replace_current(previous);
                }
            }
        }
        match replace_current(Some(node.into_current())) {
            Ok(previous) => {
                let mut restore = Restore(Some(previous));
                let poll = this.future.as_mut().poll(cx);
                if let Some(previous) = restore.0.take() {
                    // Take our node back out of the slot.
                    this.node = replace_current(previous).ok().flatten().and_then(T::from_current);
                }
                poll
            }
            Err(node) => {
                // The slot is unavailable: poll outside the scope this time.
                this.node = node.and_then(T::from_current);
                this.future.as_mut().poll(cx)
            }
        }
    }
}
