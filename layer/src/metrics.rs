//! Counters of what the layer delivered and dropped, and their snapshot.
//!
//! Every event the layer sees is delivered (handed to its destination),
//! dropped for exactly one [`DropReason`], or waiting in a startup buffer,
//! so `received == delivered + dropped_total + startup_buffered` holds at
//! all times. Counters are
//! relaxed atomics: one uncontended increment per event.

use std::{
    fmt,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
};

/// How many [`DropReason`]s there are.
const REASONS: usize = 8;

/// Why an event did not reach its destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// The channel was full; the event went to the raw logger.
    ChannelFull,
    /// The channel's receiver was gone; the event went to the raw logger.
    ChannelClosed,
    /// The event was raised while this thread was already inside the layer
    /// (a `Debug` implementation or a destination that logs); it went to the
    /// raw logger instead of recursing.
    Reentrant,
    /// The record could not be encoded within the encoder's limits; it went
    /// to the raw logger.
    RecordTooLarge,
    /// Discarded on purpose: the destination or the node's logger is `Noop`,
    /// the event is above the node's level, or it comes from a target kept
    /// out (an exporter's layer keeps the transport crates' events out,
    /// those its own thread raises among them: a few per run are normal).
    Discarded,
    /// The node logs was shut down; the event went to the raw logger.
    ShutDown,
    /// Flood control: the event repeated past its budget per window (see
    /// [`flood`](crate::flood)); a summary record stands for it. Not printed
    /// by the raw logger.
    Suppressed,
    /// The event came before its destination existed and did not fit the
    /// startup buffer (see [`startup`](crate::startup)); one record at the
    /// hand-over counts them.
    StartupBufferFull,
}

impl DropReason {
    /// Every reason, in a stable order.
    pub const ALL: [DropReason; REASONS] = [
        DropReason::ChannelFull,
        DropReason::ChannelClosed,
        DropReason::Reentrant,
        DropReason::RecordTooLarge,
        DropReason::Discarded,
        DropReason::ShutDown,
        DropReason::Suppressed,
        DropReason::StartupBufferFull,
    ];

    /// A short snake_case name, as used in metric names and raw log lines.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::ChannelFull => "channel_full",
            DropReason::ChannelClosed => "channel_closed",
            DropReason::Reentrant => "reentrant",
            DropReason::RecordTooLarge => "record_too_large",
            DropReason::Discarded => "discarded",
            DropReason::ShutDown => "shut_down",
            DropReason::Suppressed => "suppressed",
            DropReason::StartupBufferFull => "startup_buffer_full",
        }
    }

    pub(crate) const fn index(self) -> usize {
        match self {
            DropReason::ChannelFull => 0,
            DropReason::ChannelClosed => 1,
            DropReason::Reentrant => 2,
            DropReason::RecordTooLarge => 3,
            DropReason::Discarded => 4,
            DropReason::ShutDown => 5,
            DropReason::Suppressed => 6,
            DropReason::StartupBufferFull => 7,
        }
    }
}

/// A point-in-time copy of a layer's counters.
///
/// Like every `*Metrics` snapshot of selftrace's crates: plain data, one
/// public field per counter, methods only for counts by [`DropReason`] and
/// for sums.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LayerMetrics {
    /// Events handed to the destination (accepted by the channel, or
    /// written to the console), or, inside a node scope, to the node's
    /// logger (the node logs' [`NodeMetrics`] count them from there).
    pub delivered: u64,
    dropped: [u64; REASONS],
    /// Values cut or left out to respect the encoder's limits (each also
    /// counted in its record's `dropped_attributes_count`).
    pub truncated_values: u64,
    /// Events let through without flood control because their callsite
    /// found no entry in the table (see [`flood`](crate::flood)); counted
    /// in `delivered` or `dropped` as well.
    pub flood_untracked: u64,
    /// Events kept in a startup buffer, waiting for their destination (see
    /// [`startup`](crate::startup)).
    pub startup_buffered: u64,
}

impl LayerMetrics {
    /// Events dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()]
    }

    /// Events dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    /// Events the layer saw: `delivered + dropped_total + startup_buffered`.
    pub fn received(&self) -> u64 {
        self.delivered + self.dropped_total() + self.startup_buffered
    }

    /// Adds `other`'s counts to these (several layers into one place).
    pub(crate) fn add(&mut self, other: &LayerMetrics) {
        self.delivered += other.delivered;
        for (mine, theirs) in self.dropped.iter_mut().zip(other.dropped) {
            *mine += theirs;
        }
        self.truncated_values += other.truncated_values;
        self.flood_untracked += other.flood_untracked;
        self.startup_buffered += other.startup_buffered;
    }
}

/// Drops by reason, as `{"suppressed": 990, "discarded": 12}`: the reasons
/// with a count, by name.
struct ByReason<'a>(&'a [u64; REASONS]);

impl fmt::Debug for ByReason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(DropReason::ALL.iter().zip(self.0).filter(|(_, n)| **n > 0).map(|(r, n)| (r.as_str(), n)))
            .finish()
    }
}

impl fmt::Debug for LayerMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayerMetrics")
            .field("delivered", &self.delivered)
            .field("dropped", &ByReason(&self.dropped))
            .field("truncated_values", &self.truncated_values)
            .field("flood_untracked", &self.flood_untracked)
            .field("startup_buffered", &self.startup_buffered)
            .finish()
    }
}

/// The layer's counters, in shards: each thread bumps the shard of its own
/// (threads are dealt shards in turn), so threads logging at once do not
/// pass one cache line back and forth; a snapshot sums the shards.
///
/// The channel path, the hot one, counts in [`ThreadCounts`] instead: one
/// per thread, written by that thread alone (a load and a store, no locked
/// instruction); a snapshot adds the live ones and what threads that ended
/// left behind.
#[derive(Debug, Default)]
pub(crate) struct LayerCounters {
    shards: [LayerShard; SHARDS],
    /// The live threads' counts, and the counts of threads that ended:
    /// each thread's counts are in exactly one of the two (moved under the
    /// lock).
    threads: Mutex<(Vec<Arc<ThreadCounts>>, ThreadTotals)>,
    /// Events in a startup buffer (startup only: one shared counter).
    startup_buffered: AtomicU64,
}

/// One thread's counts of the channel path: only that thread writes them.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct ThreadCounts {
    delivered: AtomicU64,
    truncated_values: AtomicU64,
}

#[derive(Debug, Default)]
struct ThreadTotals {
    delivered: u64,
    truncated_values: u64,
}

impl ThreadCounts {
    #[inline]
    pub(crate) fn delivered(&self) {
        bump(&self.delivered, 1);
    }

    #[inline]
    pub(crate) fn truncated(&self, values: u32) {
        bump(&self.truncated_values, u64::from(values));
    }
}

/// A thread's [`ThreadCounts`] for one layer: moved into the layer's totals
/// when the thread ends (or its encoder is dropped).
#[derive(Debug)]
pub(crate) struct ThreadCountsGuard {
    counts: Arc<ThreadCounts>,
    counters: Arc<LayerCounters>,
}

impl std::ops::Deref for ThreadCountsGuard {
    type Target = ThreadCounts;
    fn deref(&self) -> &ThreadCounts {
        &self.counts
    }
}

impl Drop for ThreadCountsGuard {
    fn drop(&mut self) {
        let mut threads = self.counters.threads.lock().unwrap_or_else(PoisonError::into_inner);
        let (live, ended) = &mut *threads;
        live.retain(|counts| !Arc::ptr_eq(counts, &self.counts));
        ended.delivered += self.counts.delivered.load(Ordering::Relaxed);
        ended.truncated_values += self.counts.truncated_values.load(Ordering::Relaxed);
    }
}

/// Shards per sharded counter: threads past this many share them.
const SHARDS: usize = 8;

/// One thread's (or a few threads') counters, on cache lines of their own.
#[derive(Debug, Default)]
#[repr(align(128))]
struct LayerShard {
    delivered: AtomicU64,
    dropped: [AtomicU64; REASONS],
    truncated_values: AtomicU64,
    flood_untracked: AtomicU64,
}

thread_local! {
    /// This thread's shard index, dealt on its first event.
    static SHARD: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
}

/// The next shard to deal.
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

/// This thread's shard, below [`SHARDS`]: threads are dealt shards in turn
/// on first use, so the counters threads bump at once sit on different
/// cache lines.
#[inline]
pub(crate) fn shard_index() -> usize {
    SHARD
        .try_with(|shard| {
            let mut index = shard.get();
            if index == usize::MAX {
                index = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
                shard.set(index);
            }
            index
        })
        // Thread teardown: any shard counts as well.
        .unwrap_or(0)
}

/// A counter in shards, each on its own cache lines (see [`shard_index`]).
#[derive(Debug, Default)]
pub(crate) struct ShardedCounter([PaddedU64; SHARDS]);

#[derive(Debug, Default)]
#[repr(align(128))]
struct PaddedU64(AtomicU64);

impl ShardedCounter {
    pub(crate) const fn new() -> Self {
        Self([const { PaddedU64(AtomicU64::new(0)) }; SHARDS])
    }

    #[inline]
    pub(crate) fn add(&self, n: u64) {
        self.0[shard_index() % SHARDS].0.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn sum(&self) -> u64 {
        self.0.iter().map(|c| c.0.load(Ordering::Relaxed)).sum()
    }

    /// Takes the count: zero after (adds racing the take are kept, in the
    /// shards not taken yet or in the next take).
    pub(crate) fn take(&self) -> u64 {
        self.0.iter().map(|c| c.0.swap(0, Ordering::Relaxed)).sum()
    }
}

impl LayerCounters {
    #[inline]
    fn shard(&self) -> &LayerShard {
        &self.shards[shard_index() % SHARDS]
    }

    #[inline]
    pub(crate) fn delivered(&self) {
        self.shard().delivered.fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn dropped(&self, reason: DropReason) {
        if let Some(counter) = self.shard().dropped.get(reason.index()) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `delta` more (or fewer) events in a startup buffer.
    pub(crate) fn startup_buffered(&self, delta: i64) {
        self.startup_buffered.fetch_add(delta as u64, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn untracked(&self) {
        self.shard().flood_untracked.fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn truncated(&self, values: u32) {
        self.shard().truncated_values.fetch_add(u64::from(values), Ordering::Relaxed);
    }

    /// Counts for this thread, written by it alone.
    pub(crate) fn for_this_thread(self: &Arc<Self>) -> ThreadCountsGuard {
        let counts = Arc::new(ThreadCounts::default());
        self.threads.lock().unwrap_or_else(PoisonError::into_inner).0.push(counts.clone());
        ThreadCountsGuard { counts, counters: self.clone() }
    }

    pub(crate) fn snapshot(&self) -> LayerMetrics {
        let sum = |counter: fn(&LayerShard) -> &AtomicU64| -> u64 {
            self.shards.iter().map(|shard| counter(shard).load(Ordering::Relaxed)).sum()
        };
        let (mut delivered, mut truncated_values) = (sum(|s| &s.delivered), sum(|s| &s.truncated_values));
        {
            let threads = self.threads.lock().unwrap_or_else(PoisonError::into_inner);
            let (live, ended) = &*threads;
            delivered += ended.delivered;
            truncated_values += ended.truncated_values;
            for counts in live {
                delivered += counts.delivered.load(Ordering::Relaxed);
                truncated_values += counts.truncated_values.load(Ordering::Relaxed);
            }
        }
        LayerMetrics {
            delivered,
            dropped: std::array::from_fn(|i| {
                self.shards.iter().map(|s| s.dropped.get(i).map_or(0, |c| c.load(Ordering::Relaxed))).sum()
            }),
            truncated_values,
            flood_untracked: sum(|s| &s.flood_untracked),
            startup_buffered: self.startup_buffered.load(Ordering::Relaxed),
        }
    }
}

/// A point-in-time copy of a [`NodeLogs`](crate::NodeLogs)'s counters (the
/// node logs' metrics).
///
/// Every record a node produces is received, then delivered (in a request
/// the destination accepted), dropped for one [`DropReason`], or still
/// buffered: `events_received == events_delivered + events_dropped_total +
/// events_buffered`. Counters of different threads are read one after the
/// other, so the equation is exact when no thread is logging.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeMetrics {
    /// `telemetry.events_received`: records produced by nodes (and
    /// third-party events raised inside a node scope).
    pub events_received: u64,
    /// Records handed to the destination: in a request the channel
    /// accepted, or printed by a `Console` or `Raw` logger.
    pub events_delivered: u64,
    dropped: [u64; REASONS],
    /// `telemetry.bytes_flushed`: bytes of the requests the channel accepted.
    pub bytes_flushed: u64,
    /// `telemetry.flush_count`: requests flushed out of buffers, whatever
    /// the reason and whether or not the channel took them.
    pub flush_count: u64,
    /// `telemetry.overflow_flush_count`: flushes made by a producer because
    /// its buffer was full.
    pub overflow_flush_count: u64,
    /// `telemetry.timer_flush_count`: flushes made by a timer owner (the ITR).
    pub timer_flush_count: u64,
    /// Values cut or left out to respect the encoder's limits.
    pub truncated_values: u64,
    /// Records let through without flood control because their key found
    /// no entry in the table (see [`flood`](crate::flood)).
    pub flood_untracked: u64,
}

impl fmt::Debug for NodeMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeMetrics")
            .field("events_received", &self.events_received)
            .field("events_delivered", &self.events_delivered)
            .field("events_dropped", &ByReason(&self.dropped))
            .field("bytes_flushed", &self.bytes_flushed)
            .field("flush_count", &self.flush_count)
            .field("overflow_flush_count", &self.overflow_flush_count)
            .field("timer_flush_count", &self.timer_flush_count)
            .field("truncated_values", &self.truncated_values)
            .field("flood_untracked", &self.flood_untracked)
            .finish()
    }
}

impl NodeMetrics {
    /// `telemetry.events_dropped` for `reason`.
    pub fn events_dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()]
    }

    /// `telemetry.events_dropped`, all reasons.
    pub fn events_dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    /// Records waiting in buffers for their flush.
    pub fn events_buffered(&self) -> u64 {
        self.events_received.saturating_sub(self.events_delivered + self.events_dropped_total())
    }
}

/// The node logs' counters, in one of two update disciplines: `add` (any
/// thread, atomic read-modify-write) for the shared counters, `bump` (plain
/// load and store) for the counters of one buffer, which only the holder of
/// that buffer's lock or borrow updates, so no update is lost and no locked
/// instruction is paid per record.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct NodeCounters {
    pub(crate) received: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) dropped: [AtomicU64; REASONS],
    pub(crate) bytes_flushed: AtomicU64,
    pub(crate) flush_count: AtomicU64,
    pub(crate) overflow_flush_count: AtomicU64,
    pub(crate) timer_flush_count: AtomicU64,
    pub(crate) truncated_values: AtomicU64,
    pub(crate) flood_untracked: AtomicU64,
}

/// Adds `n` from any thread.
#[inline]
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Adds `n`; only for counters with one writer at a time (see
/// [`NodeCounters`]).
#[inline]
pub(crate) fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

impl NodeCounters {
    pub(crate) fn dropped(&self, reason: DropReason) -> &AtomicU64 {
        &self.dropped[reason.index()]
    }

    /// Adds these counters into `sum`.
    pub(crate) fn add_to(&self, sum: &mut NodeMetrics) {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        sum.events_received += read(&self.received);
        sum.events_delivered += read(&self.delivered);
        for (total, counter) in sum.dropped.iter_mut().zip(&self.dropped) {
            *total += read(counter);
        }
        sum.bytes_flushed += read(&self.bytes_flushed);
        sum.flush_count += read(&self.flush_count);
        sum.overflow_flush_count += read(&self.overflow_flush_count);
        sum.timer_flush_count += read(&self.timer_flush_count);
        sum.truncated_values += read(&self.truncated_values);
        sum.flood_untracked += read(&self.flood_untracked);
    }

    /// Moves `other`'s counts into these (a retiring buffer's).
    pub(crate) fn absorb(&self, other: &NodeCounters) {
        let mut counts = NodeMetrics::default();
        other.add_to(&mut counts);
        add(&self.received, counts.events_received);
        add(&self.delivered, counts.events_delivered);
        for (counter, n) in self.dropped.iter().zip(counts.dropped) {
            add(counter, n);
        }
        add(&self.bytes_flushed, counts.bytes_flushed);
        add(&self.flush_count, counts.flush_count);
        add(&self.overflow_flush_count, counts.overflow_flush_count);
        add(&self.timer_flush_count, counts.timer_flush_count);
        add(&self.truncated_values, counts.truncated_values);
        add(&self.flood_untracked, counts.flood_untracked);
    }
}
