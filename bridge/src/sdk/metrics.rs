//! [`BridgeMetrics`]: what a bridge did, and the counters behind it.

use std::sync::atomic::{AtomicU64, Ordering};

// === impl BridgeMetrics ===

/// What a bridge did, as a snapshot.
///
/// After a clean shutdown, `records_emitted` equals the records delivered to
/// the bridge's channel: the layer's `delivered` for events outside node
/// scopes plus the `NodeLogs`' `events_delivered` (an event inside a node
/// scope is counted by the layer, as handed to the node, and by the node
/// path). Unless `malformed_requests` is non-zero: the records after the
/// first error in a request cannot be counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BridgeMetrics {
    /// Requests read from the channel (or handed to [`SdkEmitter::emit_request`](crate::sdk::SdkEmitter::emit_request)).
    pub requests: u64,
    /// Records emitted into the SDK.
    pub records_emitted: u64,
    /// Requests with malformed bytes: the records before the problem were
    /// emitted, the rest were not (reported on the raw logger).
    pub malformed_requests: u64,
    /// Event names left off records because the interner was full.
    pub event_names_dropped: u64,
    /// Non-canonical severity texts left off records because the interner
    /// was full (canonical texts never need it).
    pub severity_texts_dropped: u64,
    /// Groups of records emitted through a logger made for them alone,
    /// because the logger cache was full (or the interner, for their scope
    /// name).
    pub uncached_loggers: u64,
    /// Times the bridge waited for the provider to export what it held
    /// (`force_flush`) before emitting more, so that a `BatchLogProcessor`'s
    /// queue never overflows (see [`SdkBridgeBuilder::with_flush_every`](crate::SdkBridgeBuilder::with_flush_every)).
    pub backpressure_flushes: u64,
    /// Of those, the flushes the provider reported as failed (an exporter
    /// error or timeout): the records it held may not have been exported.
    pub failed_flushes: u64,
}

/// The counters behind [`BridgeMetrics`]; one writer (the emitter), any
/// number of readers.
#[derive(Debug, Default)]
pub(crate) struct BridgeCounters {
    pub(crate) requests: AtomicU64,
    pub(crate) records_emitted: AtomicU64,
    pub(crate) malformed_requests: AtomicU64,
    pub(crate) event_names_dropped: AtomicU64,
    pub(crate) severity_texts_dropped: AtomicU64,
    pub(crate) uncached_loggers: AtomicU64,
    pub(crate) backpressure_flushes: AtomicU64,
    pub(crate) failed_flushes: AtomicU64,
}

impl BridgeCounters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> BridgeMetrics {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BridgeMetrics {
            requests: get(&self.requests),
            records_emitted: get(&self.records_emitted),
            malformed_requests: get(&self.malformed_requests),
            event_names_dropped: get(&self.event_names_dropped),
            severity_texts_dropped: get(&self.severity_texts_dropped),
            uncached_loggers: get(&self.uncached_loggers),
            backpressure_flushes: get(&self.backpressure_flushes),
            failed_flushes: get(&self.failed_flushes),
        }
    }
}
