//! The Internal Telemetry Receiver: a receiver node with no inputs and one
//! output, fed by the engine's own logs.

use std::{
    fmt,
    future::{Future, poll_fn},
    pin::pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::Poll,
    time::Instant,
};

use selftrace::{
    FlushReason, Node, NodeLogs, NodeMetrics, OtlpBytes, SharedTelemetry,
    batch::{Batch, Batcher},
    raw::write_raw_note,
};

mod config;
mod host;
pub(crate) mod router;

pub(crate) use self::config::DEFAULT_FLUSH_INTERVAL;
use self::router::{QueueCounters, Router};
pub use self::{
    config::{ConfigError, Overflow, PipelineLogger, ReceiverConfig, ReceiverSettings, parse_duration},
    host::{Control, OutputClosed, ReceiverHost},
};
pub(crate) use crate::bounds::duration_option;

/// The Internal Telemetry Receiver (ITR).
///
/// Made by [`InternalTelemetry::receiver`](crate::InternalTelemetry::receiver)
/// (or the `internal_telemetry` [factory](crate::telemetry::ReceiverFactory)) and
/// mounted in the host's pipeline with [`run`](Self::run). It has no inputs
/// and one output:
///
/// * on its timer (every [`flush_interval`](ReceiverConfig::flush_interval),
///   or on [`Control::TimerTick`]) it flushes the node logs: every thread's
///   shared buffer, and the local buffers of the thread it runs on (a
///   thread-per-core host runs one receiver per core);
/// * it takes what the router queued for it: those flushes, buffers that
///   overflowed, and third-party events in the ITR-only mode;
/// * it merges requests into batches under [`max_batch_bytes`] and
///   [`max_batch_records`] (one `ResourceLogs` per resource, one `ScopeLogs`
///   per run of the same node, records copied, never decoded), and sends a
///   batch to its output as soon as one is full, and everything it holds on
///   each tick;
/// * on [`Control::Shutdown`] it flushes, sends everything and returns;
///   what cannot be sent by the deadline is dropped and counted.
///
/// Malformed requests (bytes that are not an `ExportLogsServiceRequest`) are
/// dropped, counted and noted on the raw logger; they never reach the
/// output.
///
/// The [crate docs](crate#mounting-the-receiver-in-a-host) mount one in a
/// small tokio host, run as a doctest.
///
/// [`max_batch_bytes`]: ReceiverConfig::max_batch_bytes
/// [`max_batch_records`]: ReceiverConfig::max_batch_records
pub struct InternalTelemetryReceiver {
    id: Box<str>,
    config: ReceiverConfig,
    rx: flume::Receiver<OtlpBytes>,
    node_logs: NodeLogs,
    router: Arc<Router>,
    queue: Arc<QueueCounters>,
    counters: Arc<ReceiverCounters>,
    /// The receiver's own node (the pipeline logger): its scope covers the
    /// receiver's loop, so whatever the host logs while serving it stays in
    /// the zone.
    telemetry: SharedTelemetry,
    pending: Batcher,
}

impl fmt::Debug for InternalTelemetryReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InternalTelemetryReceiver")
            .field("id", &self.id)
            .field("config", &self.config)
            .field("queued", &self.rx.len())
            .field("pending_records", &self.pending.pending_records())
            .finish_non_exhaustive()
    }
}

/// The receiver's own counters.
#[derive(Debug, Default)]
pub(crate) struct ReceiverCounters {
    requests_received: AtomicU64,
    records_received: AtomicU64,
    malformed_requests: AtomicU64,
    batches_sent: AtomicU64,
    records_sent: AtomicU64,
    bytes_sent: AtomicU64,
    dropped_output_closed: AtomicU64,
    dropped_deadline: AtomicU64,
    dropped_unsent: AtomicU64,
    timer_flush_count: AtomicU64,
    pending_records: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// A snapshot of one receiver's counters: its queue in the router, itself,
/// and the node logs it flushes.
///
/// Records: `records_received == records_sent + dropped_output_closed +
/// dropped_deadline + dropped_unsent + pending_records`; and what producers
/// offered this receiver is `accepted + dropped_newest` requests, of which
/// `dropped_oldest` were dropped again from the queue
/// (`router_dropped_records` records for both).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceiverMetrics {
    /// The receiver's id.
    pub id: String,
    /// Requests offered to this receiver's queue.
    pub offered: u64,
    /// Requests its queue took.
    pub accepted: u64,
    /// Requests dropped because the queue was full (drop newest).
    pub dropped_newest: u64,
    /// Queued requests dropped to make room (drop oldest).
    pub dropped_oldest: u64,
    /// Records in the requests the router dropped for this receiver.
    pub router_dropped_records: u64,
    /// Requests waiting in its queue now.
    pub queued: u64,
    /// Requests the receiver took from its queue.
    pub requests_received: u64,
    /// Records in them.
    pub records_received: u64,
    /// Requests dropped because they were not valid OTLP.
    pub malformed_requests: u64,
    /// Batches sent to the output.
    pub batches_sent: u64,
    /// Records in them.
    pub records_sent: u64,
    /// Bytes in them.
    pub bytes_sent: u64,
    /// Records dropped because the output was closed.
    pub dropped_output_closed: u64,
    /// Records dropped because the shutdown deadline passed.
    pub dropped_deadline: u64,
    /// Records dropped because the receiver was dropped without running
    /// to a shutdown.
    pub dropped_unsent: u64,
    /// Records taken but not sent yet.
    pub pending_records: u64,
    /// Timer ticks (its own or the host's) that flushed the node logs.
    pub timer_flush_count: u64,
    /// The counters of the node logs it flushes (`events_received`,
    /// `events_dropped`, `bytes_flushed`, `flush_count`,
    /// `overflow_flush_count`, `timer_flush_count`, ...).
    pub node_logs: NodeMetrics,
}

/// What woke the loop.
enum Wake {
    Control(Control),
    Timer,
    Request(Option<OtlpBytes>),
}

impl InternalTelemetryReceiver {
    pub(crate) fn new(id: &str, config: ReceiverConfig, node_logs: NodeLogs, router: Arc<Router>) -> Self {
        let (rx, queue) = router.add(id, config.channel_capacity, config.overflow);
        let node = Node::new(id)
            .with_logger(config.logger.node_logger())
            .with_max_level(tracing_core::LevelFilter::ERROR)
            .with_denied_targets(selftrace::TRANSPORT_TARGETS.iter().copied())
            .in_zone();
        let telemetry = node_logs.shared(node);
        let pending = Batcher::new(config.max_batch_bytes, config.max_batch_records as u64);
        Self { id: id.into(), config, rx, node_logs, router, queue, counters: Arc::default(), telemetry, pending }
    }

    pub(crate) fn queue_counters(&self) -> Arc<QueueCounters> {
        self.queue.clone()
    }

    pub(crate) fn counters(&self) -> Arc<ReceiverCounters> {
        self.counters.clone()
    }

    /// The receiver's id (the node id the host gave it).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its configuration.
    pub fn config(&self) -> &ReceiverConfig {
        &self.config
    }

    /// The receiver's own node telemetry: in the zone, with the pipeline
    /// logger at ERROR. The receiver runs in its scope.
    pub fn telemetry(&self) -> &SharedTelemetry {
        &self.telemetry
    }

    /// A snapshot of its counters.
    pub fn metrics(&self) -> ReceiverMetrics {
        snapshot(&self.id, &self.router, &self.queue, &self.counters, &self.node_logs)
    }

    /// Runs the receiver until the host sends [`Control::Shutdown`] or its
    /// output closes; returns its final counters.
    ///
    /// Runs in the scope of the receiver's own node, so events the host
    /// raises while serving it (its channel, its timer) go to the pipeline
    /// logger, never back into the pipeline.
    pub async fn run<H: ReceiverHost>(mut self, host: H) -> ReceiverMetrics {
        let telemetry = self.telemetry.clone();
        telemetry.scope(self.serve(host)).await;
        self.metrics()
    }

    async fn serve<H: ReceiverHost>(&mut self, mut host: H) {
        let mut timer = pin!(host.sleep(self.config.flush_interval));
        let mut open = true;
        let deadline = loop {
            let wake = {
                let mut control = pin!(host.recv_control());
                let mut request = pin!(self.rx.recv_async());
                poll_fn(|cx| {
                    if let Poll::Ready(control) = control.as_mut().poll(cx) {
                        return Poll::Ready(Wake::Control(control));
                    }
                    if timer.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Wake::Timer);
                    }
                    match request.as_mut().poll(cx) {
                        Poll::Ready(request) if open => Poll::Ready(Wake::Request(request.ok())),
                        _ => Poll::Pending,
                    }
                })
                .await
            };
            let sent = match wake {
                Wake::Control(Control::Shutdown { deadline }) => break deadline,
                Wake::Control(Control::TimerTick) => self.tick(&mut host).await,
                Wake::Timer => {
                    timer.set(host.sleep(self.config.flush_interval));
                    self.tick(&mut host).await
                }
                Wake::Request(Some(request)) => {
                    self.take(request);
                    self.take_queued();
                    self.send_batches(&mut host, false).await
                }
                Wake::Request(None) => {
                    // Every sender is gone (cannot happen while the router
                    // holds one): only the timer and the host remain.
                    open = false;
                    Ok(())
                }
            };
            if sent.is_err() {
                return self.drop_all(|c| &c.dropped_output_closed);
            }
        };
        self.shutdown(&mut host, deadline).await;
    }

    /// A timer tick: flush the node logs, take everything, send everything.
    async fn tick<H: ReceiverHost>(&mut self, host: &mut H) -> Result<(), OutputClosed> {
        add(&self.counters.timer_flush_count, 1);
        self.collect(FlushReason::Timer);
        self.send_batches(host, true).await
    }

    /// Takes what is queued, flushes the node logs, takes what that gave.
    fn collect(&mut self, reason: FlushReason) {
        // Room first: a flush into a full queue would be dropped.
        self.take_queued();
        if self.node_logs.flush(reason) > 0 {
            self.take_queued();
        }
    }

    /// Sends everything by `deadline`.
    async fn shutdown<H: ReceiverHost>(&mut self, host: &mut H, deadline: Instant) {
        self.collect(FlushReason::Explicit);
        let remaining = deadline.saturating_duration_since(Instant::now());
        let mut expired = pin!(host.sleep(remaining));
        loop {
            let Some((batch, records)) = self.next_batch(true) else { return };
            let len = batch.len();
            let mut send = pin!(host.send(batch));
            let sent = poll_fn(|cx| match send.as_mut().poll(cx) {
                Poll::Ready(result) => Poll::Ready(Some(result)),
                Poll::Pending => expired.as_mut().poll(cx).map(|()| None),
            })
            .await;
            match sent {
                Some(Ok(())) => self.sent(len, records),
                Some(Err(OutputClosed)) => {
                    add(&self.counters.dropped_output_closed, records);
                    return self.drop_all(|c| &c.dropped_output_closed);
                }
                None => {
                    add(&self.counters.dropped_deadline, records);
                    write_raw_note(
                        "internal_telemetry",
                        format_args!("receiver {}: shutdown deadline passed, dropping what is left", self.id),
                    );
                    return self.drop_all(|c| &c.dropped_deadline);
                }
            }
        }
    }

    /// Takes one request from the queue.
    fn take(&mut self, request: OtlpBytes) {
        let counters = &self.counters;
        add(&counters.requests_received, 1);
        let len = request.len();
        match self.pending.push(request) {
            Ok(shape) => {
                add(&counters.records_received, shape.records);
                add(&counters.pending_records, shape.records);
            }
            Err(_) => {
                add(&counters.malformed_requests, 1);
                write_raw_note(
                    "internal_telemetry",
                    format_args!("receiver {}: dropped a malformed request of {len} bytes", self.id),
                );
            }
        }
    }

    /// Takes the requests waiting in the queue now, at most a queue's worth:
    /// producers that keep up with it never keep the loop from its timer and
    /// control signals, and what is pending stays under a queue's worth plus
    /// one batch.
    fn take_queued(&mut self) {
        for _ in 0..self.config.channel_capacity {
            match self.rx.try_recv() {
                Ok(request) => self.take(request),
                Err(_) => return,
            }
        }
    }

    /// Sends full batches, or everything when `all`.
    async fn send_batches<H: ReceiverHost>(&mut self, host: &mut H, all: bool) -> Result<(), OutputClosed> {
        while all || self.pending.is_full() {
            let Some((batch, records)) = self.next_batch(all) else { break };
            let len = batch.len();
            if host.send(batch).await.is_err() {
                add(&self.counters.dropped_output_closed, records);
                return Err(OutputClosed);
            }
            self.sent(len, records);
        }
        Ok(())
    }

    /// Makes the next batch from the oldest pending requests; the caller
    /// counts it sent or dropped.
    fn next_batch(&mut self, all: bool) -> Option<(OtlpBytes, u64)> {
        let Batch { bytes, records, .. } = self.pending.next_batch(all)?;
        self.counters.pending_records.fetch_sub(records, Ordering::Relaxed);
        Some((bytes, records))
    }

    /// Counts a batch the output took.
    fn sent(&self, bytes: usize, records: u64) {
        let counters = &self.counters;
        add(&counters.batches_sent, 1);
        add(&counters.records_sent, records);
        add(&counters.bytes_sent, bytes as u64);
    }

    /// Drops everything pending and queued, counted by `counter`.
    fn drop_all(&mut self, counter: impl Fn(&ReceiverCounters) -> &AtomicU64) {
        self.take_queued();
        let records = self.pending.clear();
        let counters = &self.counters;
        counters.pending_records.fetch_sub(records, Ordering::Relaxed);
        add(counter(counters), records);
    }
}

impl Drop for InternalTelemetryReceiver {
    /// Leaves the router; what is still queued or pending is counted as
    /// `dropped_unsent`.
    fn drop(&mut self) {
        self.router.remove(&self.queue);
        self.drop_all(|c| &c.dropped_unsent);
    }
}

pub(crate) fn snapshot(
    id: &str,
    router: &Router,
    queue: &Arc<QueueCounters>,
    counters: &ReceiverCounters,
    node_logs: &NodeLogs,
) -> ReceiverMetrics {
    ReceiverMetrics {
        id: id.to_owned(),
        offered: get(&queue.offered),
        accepted: get(&queue.accepted),
        dropped_newest: get(&queue.dropped_newest),
        dropped_oldest: get(&queue.dropped_oldest),
        router_dropped_records: get(&queue.dropped_records),
        queued: router.queued(queue) as u64,
        requests_received: get(&counters.requests_received),
        records_received: get(&counters.records_received),
        malformed_requests: get(&counters.malformed_requests),
        batches_sent: get(&counters.batches_sent),
        records_sent: get(&counters.records_sent),
        bytes_sent: get(&counters.bytes_sent),
        dropped_output_closed: get(&counters.dropped_output_closed),
        dropped_deadline: get(&counters.dropped_deadline),
        dropped_unsent: get(&counters.dropped_unsent),
        pending_records: get(&counters.pending_records),
        timer_flush_count: get(&counters.timer_flush_count),
        node_logs: node_logs.metrics(),
    }
}
