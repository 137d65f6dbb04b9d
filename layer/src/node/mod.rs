//! Nodes: their identity, their logger, their telemetry handles, and node
//! scopes.
//!
//! A node's records carry its id as the OTLP scope name. A node logs in two
//! ways:
//!
//! * through its effect telemetry ([`LocalTelemetry`] or [`SharedTelemetry`],
//!   or an engine type implementing [`NodeTelemetry`]) with the `otel_*!`
//!   macros, which never touch the global `tracing` dispatch;
//! * through plain `tracing` (its own code or the libraries it calls) while
//!   it is **in scope**: [`OtlpTracingLayer`](crate::OtlpTracingLayer) sees
//!   the current node and sends the event to that node's logger, attributed
//!   to it.
//!
//! A node scope is per thread: entered with [`enter`](SharedTelemetry::enter)
//! for synchronous code, or with [`scope`](SharedTelemetry::scope) for a
//! future, which re-enters it on every poll, on whatever thread polls it.
//! Spawned tasks do not inherit it: wrap them with
//! `SharedTelemetry::current()` (see [`InNode`]). Scopes nest; leaving one
//! restores the one outside it.
//!
//! Why not a `tracing::Dispatch` per node: a `Dispatch` must be
//! `Send + Sync` (local nodes keep `Rc` state), every extra live dispatcher
//! makes callsite interest "sometimes" process-wide, spans are not shared
//! across dispatchers, and each poll of a `WithDispatch` future costs an
//! `Arc` clone and two global atomic updates. A scope costs two
//! thread-local swaps per poll and moves no reference count.

mod buffer;
mod logs;
mod telemetry;

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
};

use tracing_core::LevelFilter;

use crate::{
    flood::FloodLimit,
    levels::{level_from_u8, level_to_u8},
};

pub use self::{
    buffer::FlushReason,
    buffer::Output,
    logs::{NodeLogs, NodeLogsBuilder},
    telemetry::{InNode, LocalTelemetry, NodeGuard, NodeScope, NodeTelemetry, SharedTelemetry},
};
pub(crate) use self::{
    buffer::{Attached, ThreadBuffer},
    telemetry::with_current,
};
#[doc(no_inline)]
pub use crate::logger::NodeLogger;

/// A node's identity and logger.
///
/// # Examples
///
/// ```
/// use selftrace::{Node, NodeLogger};
/// use tracing::level_filters::LevelFilter;
///
/// let node = Node::new("exporter.otlp.0").with_logger(NodeLogger::Raw).with_max_level(LevelFilter::ERROR);
/// assert_eq!(node.id(), "exporter.otlp.0");
/// ```
#[derive(Clone)]
pub struct Node {
    inner: Arc<NodeInner>,
}

struct NodeInner {
    id: Box<str>,
    logger: NodeLogger,
    /// The most verbose level, as `levels::level_to_u8` codes it: changed
    /// at runtime by [`Node::set_max_level`].
    max_level: AtomicU8,
    /// Targets (and their children) whose third-party events in scope are
    /// discarded.
    denied_targets: Box<[Box<str>]>,
    /// Its own flood limit (`Some(None)`: none), else its node logs'.
    flood: Option<Option<FloodLimit>>,
    /// Part of the anti-recursion zone: the spans made in its scope are not
    /// traced.
    zone: bool,
}

impl Clone for NodeInner {
    fn clone(&self) -> Self {
        Self {
            id: self.id.clone(),
            logger: self.logger,
            max_level: AtomicU8::new(self.max_level.load(Ordering::Relaxed)),
            denied_targets: self.denied_targets.clone(),
            flood: self.flood,
            zone: self.zone,
        }
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id())
            .field("logger", &self.logger())
            .field("max_level", &self.max_level())
            .field("denied_targets", &self.inner.denied_targets)
            .field("flood", &self.inner.flood)
            .finish()
    }
}

impl Node {
    /// A node with the `Default` logger and no level limit of its own. `id`
    /// (for example `receiver.otlp.0`) becomes the scope name of its records.
    pub fn new(id: impl Into<String>) -> Self {
        let id = id.into().into_boxed_str();
        let inner = NodeInner {
            id,
            logger: NodeLogger::Default,
            max_level: AtomicU8::new(level_to_u8(LevelFilter::TRACE)),
            denied_targets: [].into(),
            flood: None,
            zone: false,
        };
        Self { inner: Arc::new(inner) }
    }

    /// The same node, marked as part of the anti-recursion zone (the
    /// Internal Telemetry Receiver and what runs downstream of it): a span
    /// layer does not trace the spans made in its scope. Plumbing for
    /// `selftrace-itr`'s `Zone`; not part of the semver surface.
    #[doc(hidden)]
    pub fn in_zone(self) -> Self {
        self.with(|inner| inner.zone = true)
    }

    /// Whether the node is part of the anti-recursion zone.
    #[cfg(feature = "traces")]
    pub(crate) fn is_in_zone(&self) -> bool {
        self.inner.zone
    }

    /// The same node with `logger`.
    pub fn with_logger(self, logger: NodeLogger) -> Self {
        self.with(|inner| inner.logger = logger)
    }

    /// The same node, producing nothing above `level`.
    pub fn with_max_level(self, level: LevelFilter) -> Self {
        self.with(|inner| inner.max_level = AtomicU8::new(level_to_u8(level)))
    }

    /// Changes the node's most verbose level now, for every handle of it
    /// (its `otel_*!` records and the third-party events in its scope; the
    /// latter also pass the layer's filter first). A record racing the
    /// change obeys the old or the new level.
    ///
    /// ```
    /// use selftrace::{Destination, Node, NodeLogs, otel_debug};
    /// use tracing::level_filters::LevelFilter;
    ///
    /// let logs = NodeLogs::new(Destination::Console);
    /// let node = Node::new("processor.batch.0").with_max_level(LevelFilter::INFO);
    /// let telemetry = logs.shared(node.clone());
    /// assert!(!telemetry.enabled(tracing::Level::DEBUG));
    /// node.set_max_level(LevelFilter::DEBUG);
    /// assert!(telemetry.enabled(tracing::Level::DEBUG));
    /// ```
    pub fn set_max_level(&self, level: LevelFilter) {
        self.inner.max_level.store(level_to_u8(level), Ordering::Relaxed);
    }

    /// The same node, discarding (and counting) the third-party events raised
    /// in its scope whose target is one of `targets` or below one
    /// (`"hyper"` denies `hyper` and `hyper::proto::h1`, not `hyperlocal`).
    ///
    /// ```
    /// use selftrace::Node;
    ///
    /// let node = Node::new("exporter.otlp.0").with_denied_targets(["hyper", "h2"]);
    /// assert!(node.denies_target("hyper::client::pool"));
    /// assert!(!node.denies_target("hyperlocal"));
    /// ```
    pub fn with_denied_targets<I: IntoIterator<Item = S>, S: Into<String>>(self, targets: I) -> Self {
        let targets = targets.into_iter().map(|t| t.into().into_boxed_str()).collect();
        self.with(|inner| inner.denied_targets = targets)
    }

    /// The same node with its own flood limit for its records and the
    /// third-party events in its scope (`None`: no limit), instead of its
    /// node logs' (see [`flood`](crate::flood)).
    ///
    /// ```
    /// use selftrace::{Node, flood::FloodLimit};
    /// use std::time::Duration;
    ///
    /// let chatty = Node::new("receiver.otlp.0").with_flood_limit(Some(FloodLimit::new(100, Duration::from_secs(1))?));
    /// let exempt = Node::new("exporter.debug.0").with_flood_limit(None);
    /// # Ok::<(), selftrace::flood::FloodLimitError>(())
    /// ```
    pub fn with_flood_limit(self, limit: Option<FloodLimit>) -> Self {
        self.with(|inner| inner.flood = Some(limit))
    }

    /// The node's own flood limit, if it has one.
    pub(crate) fn flood_override(&self) -> Option<Option<FloodLimit>> {
        self.inner.flood
    }

    /// What tells this node from the others while it exists.
    pub(crate) fn address(&self) -> usize {
        Arc::as_ptr(&self.inner).addr()
    }

    fn with(self, change: impl FnOnce(&mut NodeInner)) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        change(&mut inner);
        Self { inner: Arc::new(inner) }
    }

    /// The node's id: the scope name of its records.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The node's logger.
    pub fn logger(&self) -> NodeLogger {
        self.inner.logger
    }

    /// [`max_level`](Self::max_level) as `levels::level_to_u8` codes it.
    #[inline]
    pub(crate) fn max_level_code(&self) -> u8 {
        self.inner.max_level.load(Ordering::Relaxed)
    }

    /// The most verbose level the node produces.
    pub fn max_level(&self) -> LevelFilter {
        level_from_u8(self.inner.max_level.load(Ordering::Relaxed))
    }

    /// Whether third-party events of `target` raised in this node's scope are
    /// discarded (see [`with_denied_targets`](Self::with_denied_targets)).
    pub fn denies_target(&self, target: &str) -> bool {
        self.inner.denied_targets.iter().any(|denied| is_under(target, denied))
    }
}

/// Whether `target` is `prefix` or below it on a `::` boundary.
#[inline]
pub(crate) fn is_under(target: &str, prefix: &str) -> bool {
    target.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
}
