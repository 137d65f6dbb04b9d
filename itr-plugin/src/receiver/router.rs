//! The router: fans the telemetry sink out to every receiver.
//!
//! Producers (the node logs' flushes and, in the ITR-only mode, the
//! third-party layer) hand each request to the router with a non-blocking
//! `try_send`. The router offers it to every receiver's own bounded queue on
//! the producer's thread, so there is no task in between and no extra copy:
//! each queue gets a reference to the same bytes.
//!
//! * **Capacity** is per receiver ([`ReceiverConfig::channel_capacity`]).
//! * **Under load** a full queue drops the new request
//!   ([`Overflow::DropNewest`], default) or its oldest one
//!   ([`Overflow::DropOldest`]); the producer never waits, and a stalled
//!   receiver costs the others nothing.
//! * **Counting**: each queue counts what it was offered, took and dropped,
//!   in requests and in records; see [`ReceiverMetrics`](crate::receiver::ReceiverMetrics).
//!   The producer sees success when at least one receiver took the request,
//!   `Full` when none did for lack of room, `Closed` when there is none.
//! * **Order**: requests from one thread reach each receiver in order.
//!
//! [`ReceiverConfig::channel_capacity`]: crate::ReceiverConfig::channel_capacity

use std::{
    fmt,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
};

use arc_swap::ArcSwap;
use selftrace::{OtlpBytes, TrySendError, channel::OtlpSink};

use super::config::Overflow;

/// How many times a drop-oldest queue makes room before it drops the new
/// request instead (other producers may fill the room first).
const DROP_OLDEST_ATTEMPTS: usize = 4;

/// The fan-out behind [`InternalTelemetry`](crate::InternalTelemetry).
#[derive(Default)]
pub(crate) struct Router {
    queues: ArcSwap<Vec<Arc<Queue>>>,
    /// Serializes changes to `queues` (the hot path only loads it).
    changes: Mutex<()>,
}

/// One receiver's queue.
pub(crate) struct Queue {
    pub(crate) id: Box<str>,
    tx: flume::Sender<OtlpBytes>,
    /// Kept to drop the oldest request.
    rx: flume::Receiver<OtlpBytes>,
    overflow: Overflow,
    pub(crate) counters: Arc<QueueCounters>,
}

/// What one queue was offered and what became of it.
#[derive(Debug, Default)]
pub(crate) struct QueueCounters {
    pub(crate) offered: AtomicU64,
    pub(crate) accepted: AtomicU64,
    pub(crate) dropped_newest: AtomicU64,
    pub(crate) dropped_oldest: AtomicU64,
    pub(crate) dropped_records: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// What an offer to one queue came to.
enum Offer {
    Taken,
    Full,
    Closed,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let queues = self.queues.load();
        f.debug_struct("Router").field("receivers", &queues.iter().map(|q| &*q.id).collect::<Vec<_>>()).finish()
    }
}

impl Router {
    /// Adds a queue for receiver `id`; gives its receiving end.
    pub(crate) fn add(
        &self,
        id: &str,
        capacity: usize,
        overflow: Overflow,
    ) -> (flume::Receiver<OtlpBytes>, Arc<QueueCounters>) {
        let (tx, rx) = flume::bounded(capacity.max(1));
        let counters = Arc::new(QueueCounters::default());
        let queue = Arc::new(Queue { id: id.into(), tx, rx: rx.clone(), overflow, counters: counters.clone() });
        let _changing = self.lock();
        let mut queues = Vec::clone(&self.queues.load());
        queues.push(queue);
        self.queues.store(Arc::new(queues));
        (rx, counters)
    }

    /// Removes the queue whose counters are `counters`.
    pub(crate) fn remove(&self, counters: &Arc<QueueCounters>) {
        let _changing = self.lock();
        let mut queues = Vec::clone(&self.queues.load());
        queues.retain(|q| !Arc::ptr_eq(&q.counters, counters));
        self.queues.store(Arc::new(queues));
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.changes.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many requests wait in the queue with `counters`.
    pub(crate) fn queued(&self, counters: &Arc<QueueCounters>) -> usize {
        self.queues.load().iter().find(|q| Arc::ptr_eq(&q.counters, counters)).map_or(0, |q| q.rx.len())
    }
}

impl Queue {
    fn offer(&self, bytes: OtlpBytes) -> Offer {
        let counters = &self.counters;
        add(&counters.offered, 1);
        let mut bytes = match self.tx.try_send(bytes) {
            Ok(()) => {
                add(&counters.accepted, 1);
                return Offer::Taken;
            }
            Err(flume::TrySendError::Full(bytes)) => bytes,
            // Unreachable while the queue holds its own receiver; counted
            // like a full queue if it ever happens.
            Err(flume::TrySendError::Disconnected(bytes)) => {
                self.dropped(&counters.dropped_newest, &bytes);
                return Offer::Closed;
            }
        };
        if self.overflow == Overflow::DropOldest {
            for _ in 0..DROP_OLDEST_ATTEMPTS {
                if let Ok(oldest) = self.rx.try_recv() {
                    self.dropped(&counters.dropped_oldest, &oldest);
                }
                match self.tx.try_send(bytes) {
                    Ok(()) => {
                        add(&counters.accepted, 1);
                        return Offer::Taken;
                    }
                    Err(flume::TrySendError::Full(back) | flume::TrySendError::Disconnected(back)) => bytes = back,
                }
            }
        }
        self.dropped(&counters.dropped_newest, &bytes);
        Offer::Full
    }

    /// Counts a dropped request and its records (read off its envelope: the
    /// drop path is the cold one).
    #[cold]
    fn dropped(&self, counter: &AtomicU64, bytes: &OtlpBytes) {
        add(counter, 1);
        add(&self.counters.dropped_records, selftrace::batch::shape(bytes.as_bytes()).map_or(0, |shape| shape.records));
    }
}

/// The router as the producers' destination.
#[derive(Debug)]
pub(crate) struct RouterSink(pub(crate) Arc<Router>);

impl OtlpSink for RouterSink {
    fn try_send(&self, bytes: OtlpBytes) -> Result<(), TrySendError> {
        let queues = self.0.queues.load();
        let (mut taken, mut full) = (false, false);
        for queue in queues.iter() {
            match queue.offer(bytes.clone()) {
                Offer::Taken => taken = true,
                Offer::Full => full = true,
                Offer::Closed => {}
            }
        }
        match (taken, full) {
            (true, _) => Ok(()),
            (false, true) => Err(TrySendError::Full(bytes)),
            (false, false) => Err(TrySendError::Closed(bytes)),
        }
    }

    fn capacity(&self) -> usize {
        self.0.queues.load().iter().filter_map(|q| q.tx.capacity()).min().unwrap_or(0)
    }

    fn queued(&self) -> usize {
        self.0.queues.load().iter().map(|q| q.rx.len()).max().unwrap_or(0)
    }

    fn is_closed(&self) -> bool {
        self.0.queues.load().is_empty()
    }
}
