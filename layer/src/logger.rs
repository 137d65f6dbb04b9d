//! [`NodeLogger`]: where a record goes when it does not go to its
//! destination's buffers: nowhere, the console or the raw logger.

/// Where a record goes: a node's records, the events of a zone thread, the
/// events of denied targets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeLogger {
    /// Buffered, then flushed to the node logs' destination.
    #[default]
    Default,
    /// Not produced (`otel_*!`), or discarded and counted (third-party
    /// events in scope).
    Noop,
    /// One line per record on stderr, synchronously; for debugging.
    Console,
    /// The raw logger: synchronous stderr, rate-limited; for nodes that
    /// must not log through the pipeline (the anti-recursion zone).
    Raw,
}
