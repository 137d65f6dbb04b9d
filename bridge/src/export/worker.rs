//! The loop on the exporter's thread: takes requests from the channel,
//! merges them into batches, queues the batches (in memory, or in the spool)
//! and sends them one at a time with OTLP's retry semantics, while it keeps
//! taking requests.

use std::{
    collections::VecDeque,
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use selftrace::{
    FlushReason, NodeLogs, OtlpBytes, OtlpBytesReceiver,
    batch::{Batch, Batcher},
    raw::write_raw_note,
};
use tokio::sync::watch;

use super::{
    Counters, LABEL, RetryPolicy, add,
    spool::{AppendError, Frame, Spool},
    transport::{Outcome, Transport},
};

/// How long the worker lets requests gather in the channel between two
/// looks while they keep coming (a millisecond, tokio's timer resolution;
/// far below the batch delay). Meanwhile it does not wait on the channel,
/// so a producer's send wakes nobody: no system call, no context switch on
/// the thread that logs.
const POLL: Duration = Duration::from_millis(1);

/// Looks that find nothing before the worker waits on the channel again
/// (where the next send wakes it), each twice as far from the last: 2, 4
/// and 8 ms, so that a producer that logs in bursts up to about 10 ms apart
/// (a request's handling, a timer's work) never has to wake it.
const IDLE_LOOKS: u32 = 3;

// === impl QueueBytes ===

/// The exporter's memory, in bytes, shared by the producers and the worker.
/// A request holds its length from the moment a producer hands it over
/// until its records leave the memory: written to the spool, acknowledged
/// or dropped. Frames the worker holds besides (kept for the spool's
/// reader, read back from the disk to be sent) hold their length while
/// held. A request that would take it past `cap` is refused.
#[derive(Debug)]
pub(super) struct QueueBytes {
    held: AtomicU64,
    cap: u64,
}

impl QueueBytes {
    pub(super) fn new(cap: u64) -> Self {
        Self { held: AtomicU64::new(0), cap }
    }

    /// Takes room for `len` bytes; `false`: over the cap.
    pub(super) fn reserve(&self, len: u64) -> bool {
        let before = self.held.fetch_add(len, Ordering::Relaxed);
        if before + len > self.cap {
            self.held.fetch_sub(len, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Holds `len` bytes more, cap or not (what the worker must hold to
    /// send).
    fn hold(&self, len: u64) {
        self.held.fetch_add(len, Ordering::Relaxed);
    }

    /// Gives back `len` bytes.
    pub(super) fn release(&self, len: u64) {
        self.held.fetch_sub(len, Ordering::Relaxed);
    }

    /// Bytes held now.
    pub(super) fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }
}

// === impl Worker ===

/// What is sent: a batch from memory or a frame from the spool.
struct Item {
    body: Bytes,
    records: u64,
    /// Bytes it holds in [`QueueBytes`].
    held: u64,
    /// The spool's frame, to settle once answered.
    frame: Option<Frame>,
}

type SendFuture = Pin<Box<dyn Future<Output = (Transport, Outcome)> + std::marker::Send>>;

/// The one item being sent, with its retry state.
pub(super) struct Flight {
    item: Item,
    /// Whether an attempt reached the endpoint (counted as sent then).
    reached: bool,
    attempt: u32,
    backoff: Duration,
    /// When retries stop (memory only: the spool retries until the
    /// endpoint is back).
    give_up: Option<Instant>,
    /// Waiting for the answer, or for the next attempt.
    state: FlightState,
}

enum FlightState {
    Sending(SendFuture),
    Waiting(Pin<Box<tokio::time::Sleep>>),
}

/// What woke the worker.
enum Wake {
    /// Shutdown was asked, or every sender is gone.
    Stop,
    /// Time to flush the per-thread buffers and send what is pending.
    Flush,
    /// Time to sync the spool.
    Sync,
    Request(OtlpBytes),
    /// Time to look at the channel again (requests keep coming).
    Poll,
    Answer(Box<(Transport, Outcome)>),
    Retry,
}

pub(super) struct Worker {
    /// The item being sent, if any.
    pub(super) flight: Option<Flight>,
    /// The per-thread buffers it flushes.
    pub(super) node_logs: NodeLogs,
    pub(super) rx: OtlpBytesReceiver,
    pub(super) counters: Arc<Counters>,
    pub(super) queue: Arc<QueueBytes>,
    pub(super) batcher: Batcher,
    pub(super) max_delay: Duration,
    pub(super) retry: RetryPolicy,
    pub(super) shutdown_timeout: Duration,
    /// The shutdown deadline, once shutdown is asked.
    pub(super) stop: watch::Receiver<Option<Instant>>,
    pub(super) rng: u64,
    pub(super) spool: Option<Spool>,
    pub(super) sync_every: Duration,
    /// Batches waiting in memory: without a spool, and with one until the
    /// next sync writes them (or half the memory cap is reached).
    pub(super) memory: VecDeque<Batch>,
    /// The lengths of the requests in `memory`.
    pub(super) memory_bytes: u64,
    /// The lengths of the requests in the batcher.
    pub(super) batcher_bytes: u64,
    /// The bytes of the spool's reader cache held in [`QueueBytes`].
    pub(super) cache_held: u64,
    /// Dropped when the worker ends, which wakes `shutdown`.
    pub(super) _done: flume::Sender<()>,
}

impl Worker {
    pub(super) async fn run(mut self, transport: Transport) {
        let mut transport = Some(transport);
        let mut flush_at = tokio::time::Instant::now() + self.max_delay;
        let mut sync_at = tokio::time::Instant::now() + self.sync_every;
        let mut deadline: Option<Instant> = None;
        // While requests keep coming: when to look at the channel next
        // (instead of waiting on it).
        let mut poll_at: Option<tokio::time::Instant> = None;
        // Looks in a row that found nothing.
        let mut idle_looks = 0;
        loop {
            if deadline.is_none() {
                deadline = *self.stop.borrow();
                if deadline.is_some() {
                    self.drain_for_shutdown();
                }
            }
            if let Some(deadline) = deadline {
                if self.flight.is_none() && self.is_empty() {
                    break;
                }
                if Instant::now() >= deadline {
                    break;
                }
            }
            if self.flight.is_none()
                && let Some(idle) = transport.take()
            {
                match self.next_item() {
                    Some(item) => self.flight = Some(self.start(idle, item)),
                    None => transport = Some(idle),
                }
            }
            self.publish_held();
            let stopping = deadline.is_some();
            let stop_at = deadline.map_or_else(|| tokio::time::Instant::now() + self.max_delay, Into::into);
            let wake = tokio::select! {
                biased;
                _ = self.stop.changed(), if !stopping => Wake::Stop,
                answer = wait_answer(&mut self.flight) => answer,
                () = tokio::time::sleep_until(stop_at), if stopping => Wake::Flush,
                () = tokio::time::sleep_until(flush_at), if !stopping => Wake::Flush,
                () = tokio::time::sleep_until(sync_at), if self.spool.is_some() => Wake::Sync,
                () = tokio::time::sleep_until(poll_at.unwrap_or(flush_at)), if !stopping && poll_at.is_some() => Wake::Poll,
                request = self.rx.recv_async(), if !stopping && poll_at.is_none() => request.map_or(Wake::Stop, Wake::Request),
            };
            match wake {
                Wake::Stop => {
                    if self.stop.borrow().is_none() {
                        // Every sender is gone without a shutdown: the
                        // shutdown timeout applies all the same.
                        deadline = Some(Instant::now() + self.shutdown_timeout);
                        self.drain_for_shutdown();
                    }
                }
                Wake::Flush => {
                    if !stopping {
                        flush_at = tokio::time::Instant::now() + self.max_delay;
                        self.collect(FlushReason::Timer);
                        self.queue_batches(true);
                    }
                }
                Wake::Sync => {
                    sync_at = tokio::time::Instant::now() + self.sync_every;
                    self.spill();
                    self.sync_spool();
                }
                Wake::Request(request) => {
                    self.take(request);
                    idle_looks = 0;
                    poll_at = self.take_flowing().then(|| tokio::time::Instant::now() + POLL);
                }
                Wake::Poll => {
                    let before = self.requests_taken();
                    let emptied = self.take_flowing();
                    idle_looks = if self.requests_taken() == before { idle_looks + 1 } else { 0 };
                    poll_at = (emptied && idle_looks <= IDLE_LOOKS)
                        .then(|| tokio::time::Instant::now() + POLL * (1 << idle_looks));
                }
                Wake::Answer(answer) => {
                    let (returned, outcome) = *answer;
                    transport = Some(returned);
                    if let Some(f) = self.flight.take() {
                        self.flight = self.answered(f, outcome);
                    }
                }
                Wake::Retry => {
                    if let (Some(f), Some(t)) = (self.flight.as_mut(), transport.take()) {
                        add(&self.counters.retries, 1);
                        f.attempt += 1;
                        f.state = FlightState::Sending(send(t, f.item.body.clone()));
                    }
                }
            }
        }
        // Out of time: what is left goes to the spool for the next exporter
        // (the batch in flight marked as sent), or, without one (or if the
        // disk refuses), is dropped and counted.
        self.spill();
        if let Some(f) = self.flight.take() {
            self.unsent(f.item);
        }
        self.drop_memory_at_shutdown();
        self.sync_spool();
        self.publish_held();
    }

    /// Whether nothing is left to send.
    fn is_empty(&self) -> bool {
        self.batcher.is_empty() && self.memory.is_empty() && self.spool.as_ref().is_none_or(Spool::is_drained)
    }

    /// Shutdown: everything queued now and the per-thread buffers go to the
    /// queue; what is logged after goes to the raw logger, counted as
    /// `ShutDown`. Taken up to what is queued now: producers cannot hold
    /// shutdown up.
    fn drain_for_shutdown(&mut self) {
        self.take_all();
        let node_logs = self.node_logs.clone();
        node_logs.shutdown_into(&mut |request| self.take_flushed(request));
        self.take_all();
        self.queue_batches(true);
    }

    /// Takes what is queued, and the per-thread buffers straight (a flush
    /// of the exporter's own is never refused by its own channel).
    fn collect(&mut self, reason: FlushReason) {
        self.take_all();
        let node_logs = self.node_logs.clone();
        node_logs.flush_into(reason, &mut |request| self.take_flushed(request));
    }

    /// A request from a flush of the per-thread buffers: it did not come
    /// through the channel, so its bytes are held here (over the cap if
    /// need be: the flush is the exporter's own).
    fn take_flushed(&mut self, request: OtlpBytes) {
        self.queue.hold(request.len() as u64);
        self.take(request);
    }

    /// Takes everything the channel holds now.
    fn take_all(&mut self) {
        for _ in 0..self.rx.len() {
            match self.rx.try_recv() {
                Some(request) => self.take(request),
                None => return,
            }
        }
    }

    /// Takes what waits in the channel, at most a batch's worth beyond what
    /// is pending.
    fn take_queued(&mut self) {
        while !self.batcher.is_full() {
            match self.rx.try_recv() {
                Some(request) => self.take(request),
                None => return,
            }
        }
    }

    /// Takes what waits (a batch's worth beyond what is pending) and queues
    /// the full batches; whether it emptied the channel (then the worker
    /// looks again later instead of waiting on it; requests still waiting,
    /// a burst: the wait on the channel returns at once).
    fn take_flowing(&mut self) -> bool {
        self.take_queued();
        self.queue_batches(false);
        self.rx.is_empty()
    }

    /// Requests taken so far (counted by this thread only: exact).
    fn requests_taken(&self) -> u64 {
        self.counters.requests_received.load(Ordering::Relaxed)
    }

    fn take(&mut self, request: OtlpBytes) {
        add(&self.counters.requests_received, 1);
        let len = request.len();
        match self.batcher.push(request) {
            Ok(shape) => {
                self.batcher_bytes += len as u64;
                add(&self.counters.records_received, shape.records);
                add(&self.counters.records_in_flight, shape.records);
            }
            Err(_) => {
                self.queue.release(len as u64);
                add(&self.counters.malformed_requests, 1);
                write_raw_note(LABEL, format_args!("dropped a malformed request of {len} bytes"));
            }
        }
    }

    /// Moves full batches (every batch when `all`) from the batcher to
    /// memory, where they wait their turn (and, with a spool, the next sync).
    fn queue_batches(&mut self, all: bool) {
        while let Some(batch) = self.batcher.next_batch(all) {
            self.batcher_bytes -= batch.request_bytes as u64;
            self.memory_bytes += batch.request_bytes as u64;
            self.memory.push_back(batch);
        }
        // Half the memory cap waiting: to the spool now, not at the sync.
        if self.spool.is_some() && self.memory_bytes > self.queue.cap / 2 {
            self.spill();
        }
    }

    /// Writes what waits in memory to the spool, oldest first: the batch in
    /// flight (when the spool has nothing older, it is recorded as sent),
    /// then the batches waiting. A full spool refuses the newest (dropped,
    /// counted); a disk that refuses a write leaves the rest in memory until
    /// the next sync.
    fn spill(&mut self) {
        let Some(spool) = self.spool.as_mut() else { return };
        if let Some(flight) = self.flight.as_mut()
            && flight.item.frame.is_none()
            && spool.is_drained()
        {
            match spool.append_in_flight(&flight.item.body, flight.item.records) {
                Ok(frame) => {
                    add(&self.counters.records_spooled, flight.item.records);
                    flight.item.frame = Some(frame);
                }
                // Being sent: it stays in memory until answered.
                Err(AppendError::Full) => {}
                Err(AppendError::Io(e)) => {
                    add(&self.counters.spool_write_errors, 1);
                    write_raw_note(LABEL, format_args!("cannot write the spool ({e}): batches kept in memory"));
                    return;
                }
            }
        }
        while let Some(batch) = self.memory.front() {
            match spool.append(&batch.bytes.clone().into_bytes(), batch.records) {
                Ok(()) => {
                    add(&self.counters.records_spooled, batch.records);
                }
                Err(AppendError::Full) => {
                    self.counters.settle(&self.counters.dropped_spool_full, batch.records);
                    write_raw_note(
                        LABEL,
                        format_args!("spool full: {} records dropped (the oldest are kept)", batch.records),
                    );
                }
                Err(AppendError::Io(e)) => {
                    add(&self.counters.spool_write_errors, 1);
                    write_raw_note(
                        LABEL,
                        format_args!("cannot write the spool ({e}): {} records kept in memory", batch.records),
                    );
                    break;
                }
            }
            // On the disk (or dropped): the memory is free, but for the
            // reader's cache.
            if let Some(batch) = self.memory.pop_front() {
                self.memory_bytes -= batch.request_bytes as u64;
                self.queue.release(batch.request_bytes as u64);
            }
        }
        self.account_cache();
    }

    /// Holds the spool reader's cache in [`QueueBytes`] as it is now.
    fn account_cache(&mut self) {
        let cached = self.spool.as_ref().map_or(0, Spool::cached_bytes) as u64;
        if cached > self.cache_held {
            self.queue.hold(cached - self.cache_held);
        } else {
            self.queue.release(self.cache_held - cached);
        }
        self.cache_held = cached;
    }

    /// The next item to send: the spool's frames first (they are older),
    /// then batches in memory.
    fn next_item(&mut self) -> Option<Item> {
        if let Some(spool) = self.spool.as_mut() {
            match spool.next() {
                Ok(Some(frame)) => {
                    // Held while it is sent, wherever it was read from.
                    let held = frame.bytes.len() as u64;
                    self.queue.hold(held);
                    self.account_cache();
                    return Some(Item { body: frame.bytes.clone(), records: frame.records, held, frame: Some(frame) });
                }
                Ok(None) => {}
                Err(e) => {
                    add(&self.counters.spool_read_errors, 1);
                    write_raw_note(LABEL, format_args!("cannot read the spool: {e}"));
                }
            }
        }
        let batch = self.memory.pop_front()?;
        self.memory_bytes -= batch.request_bytes as u64;
        Some(Item {
            body: batch.bytes.into_bytes(),
            records: batch.records,
            held: batch.request_bytes as u64,
            frame: None,
        })
    }

    fn start(&mut self, transport: Transport, item: Item) -> Flight {
        let give_up = self.spool.is_none().then(|| Instant::now() + self.retry.max_elapsed);
        let state = FlightState::Sending(send(transport, item.body.clone()));
        Flight { item, reached: false, attempt: 1, backoff: self.retry.initial, give_up, state }
    }

    /// The endpoint answered: settle the item, or wait to try again.
    fn answered(&mut self, mut flight: Flight, outcome: Outcome) -> Option<Flight> {
        let records = flight.item.records;
        let counters = Arc::clone(&self.counters);
        // Sent once the endpoint answered an attempt (not a request that
        // never reached it).
        let reached = !matches!(outcome, Outcome::Retry { reached: false, .. });
        if reached && !std::mem::replace(&mut flight.reached, true) {
            add(&counters.batches_sent, 1);
            add(&counters.records_sent, records);
            add(&counters.bytes_sent, flight.item.body.len() as u64);
        }
        let (after, reason) = match outcome {
            Outcome::Accepted { rejected, message, malformed } => {
                let rejected = rejected.min(records);
                counters.settle(&counters.records_acknowledged, records - rejected);
                counters.settle(&counters.records_rejected, rejected);
                if malformed {
                    add(&counters.malformed_responses, 1);
                    write_raw_note(
                        LABEL,
                        format_args!(
                            "the endpoint answered success with a body that is not an ExportLogsServiceResponse"
                        ),
                    );
                }
                if rejected > 0 || message.is_some() {
                    write_raw_note(
                        LABEL,
                        format_args!(
                            "partial success: {rejected} of {records} records rejected: {}",
                            message.as_deref().unwrap_or("")
                        ),
                    );
                }
                self.settle_item(flight.item);
                return None;
            }
            Outcome::Refused { reason } => {
                counters.settle(&counters.dropped_rejected, records);
                write_raw_note(LABEL, format_args!("{records} records dropped, refused by the endpoint: {reason}"));
                self.settle_item(flight.item);
                return None;
            }
            Outcome::Retry { after, reason, .. } => (after, reason),
        };
        let delay = after.unwrap_or_else(|| self.jitter(flight.backoff));
        flight.backoff = (flight.backoff * 2).min(self.retry.max_interval);
        if flight.give_up.is_some_and(|give_up| Instant::now() + delay > give_up) {
            counters.settle(&counters.dropped_retries_exhausted, records);
            write_raw_note(
                LABEL,
                format_args!("{records} records dropped after {} attempts: {reason}", flight.attempt),
            );
            self.settle_item(flight.item);
            return None;
        }
        if flight.attempt == 1 {
            write_raw_note(LABEL, format_args!("retrying {records} records in {delay:?}: {reason}"));
        }
        flight.state = FlightState::Waiting(Box::pin(tokio::time::sleep(delay)));
        Some(flight)
    }

    /// An item was answered for: its memory is free, and the spool's cursor
    /// moves past it.
    fn settle_item(&mut self, item: Item) {
        self.queue.release(item.held);
        if let (Some(spool), Some(frame)) = (self.spool.as_mut(), item.frame.as_ref())
            && let Err(e) = spool.settle(frame)
        {
            add(&self.counters.spool_write_errors, 1);
            write_raw_note(LABEL, format_args!("cannot record an acknowledgement in the spool: {e}"));
        }
    }

    /// An item the shutdown deadline left unsent: dropped, unless the spool
    /// keeps it for the next exporter.
    fn unsent(&mut self, item: Item) {
        self.queue.release(item.held);
        if item.frame.is_none() {
            self.shutdown_drop(item.records);
        }
    }

    fn drop_memory_at_shutdown(&mut self) {
        let mut records = self.batcher.clear();
        self.queue.release(std::mem::take(&mut self.batcher_bytes));
        // The batcher's records were counted in flight when taken.
        for batch in self.memory.drain(..) {
            records += batch.records;
            self.queue.release(batch.request_bytes as u64);
        }
        self.memory_bytes = 0;
        if records > 0 {
            self.shutdown_drop(records);
        }
    }

    fn shutdown_drop(&self, records: u64) {
        self.counters.settle(&self.counters.dropped_shutdown, records);
        write_raw_note(LABEL, format_args!("shutdown deadline passed: {records} records dropped"));
    }

    fn sync_spool(&mut self) {
        if let Some(spool) = self.spool.as_mut()
            && let Err(e) = spool.sync()
        {
            add(&self.counters.spool_write_errors, 1);
            write_raw_note(LABEL, format_args!("cannot sync the spool: {e}"));
        }
        self.publish_held();
    }

    /// The gauges: memory held, the spool's size and records.
    fn publish_held(&self) {
        self.counters.queue_bytes.store(self.queue.held(), Ordering::Relaxed);
        if let Some(spool) = &self.spool {
            publish_spool(&self.counters, spool);
        }
    }

    /// A delay in the upper half of `backoff`.
    fn jitter(&mut self, backoff: Duration) -> Duration {
        // xorshift64: jitter needs spread, not unpredictability.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let half = backoff / 2;
        half + half.mul_f64((self.rng >> 11) as f64 / (1u64 << 53) as f64)
    }
}

/// The spool's gauges: its size, its records not acknowledged, its damaged
/// frames.
pub(super) fn publish_spool(counters: &Counters, spool: &Spool) {
    counters.spool_bytes.store(spool.bytes(), Ordering::Relaxed);
    counters.spool_records.store(spool.pending_records(), Ordering::Relaxed);
    counters.spool_corrupt_frames.store(spool.corrupt_frames(), Ordering::Relaxed);
}

fn send(mut transport: Transport, body: Bytes) -> SendFuture {
    Box::pin(async move {
        let outcome = transport.send(body).await;
        (transport, outcome)
    })
}

/// The answer to the item in flight, or the end of its wait; pending
/// forever when nothing is in flight.
async fn wait_answer(flight: &mut Option<Flight>) -> Wake {
    match flight.as_mut().map(|f| &mut f.state) {
        Some(FlightState::Sending(send)) => {
            let (transport, outcome) = send.await;
            Wake::Answer(Box::new((transport, outcome)))
        }
        Some(FlightState::Waiting(sleep)) => {
            sleep.await;
            Wake::Retry
        }
        None => std::future::pending().await,
    }
}

pub(super) fn seed() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    (nanos ^ 0x9e37_79b9_7f4a_7c15) | 1
}
