//! The buffers behind a [`NodeLogs`](super::NodeLogs): where the records of
//! an engine's nodes are encoded and from where they are flushed.
//!
//! Records are encoded into per-thread buffers (a [`StatefulOtlpEncoder`]
//! each), never into a buffer shared between threads on the way of a record:
//!
//! * **local** buffers (`Rc<RefCell<..>>`) serve the `!Send` nodes of their
//!   thread ([`LocalTelemetry`](crate::LocalTelemetry)) and are flushed on
//!   that thread;
//! * **shared** buffers (`Arc<Mutex<..>>`, one per thread that logs) serve
//!   `Send` nodes ([`SharedTelemetry`](crate::SharedTelemetry)); a registry
//!   lets a timer on any thread flush them. The lock is only ever contended
//!   by that flush.
//!
//! A buffer is flushed when it is full (by the producer, synchronously), when
//! a timer owner calls [`NodeLogs::flush`], when [`NodeLogs::shutdown`] runs
//! (shared buffers and the calling thread's local buffer), and when its
//! thread exits. A flushed request goes to the destination with `try_send`;
//! a request the channel refuses is counted record by record and noted on
//! the raw logger, never discarded silently.

use std::{
    cell::RefCell,
    rc::{Rc, Weak as RcWeak},
    sync::{
        Arc, Mutex, MutexGuard, TryLockError, Weak,
        atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering},
    },
};

use tracing_core::{Level, LevelFilter};

use super::Node;
use crate::{
    channel::OtlpBytesSender,
    clock::now_unix_nanos,
    console::{self, ConsoleFormat},
    encoder::{EncodeError, EncoderLimits, OtlpResource, StatefulOtlpEncoder},
    flood::{self, Admit, FloodLimit, FloodTable, Key, SiteInfo, Summary, SummaryRecord},
    json,
    levels::level_to_u8,
    logger::NodeLogger,
    metrics::{DropReason, LayerMetrics, NodeCounters, NodeMetrics, add, bump},
    raw::{raw_log, raw_note, raw_record},
    spans::SpanFields,
    view::LogRecordView,
};

/// The level of a record, from its severity (INFO when it has none).
pub(super) fn record_level<R: LogRecordView + ?Sized>(record: &R) -> Level {
    match record.severity().map(|s| s.number()) {
        Some(1..=4) => Level::TRACE,
        Some(5..=8) => Level::DEBUG,
        Some(13..=16) => Level::WARN,
        Some(17..) => Level::ERROR,
        _ => Level::INFO,
    }
}

/// Why a buffer is flushed (counted in [`NodeMetrics`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlushReason {
    /// A periodic flush by a timer owner such as the Internal Telemetry
    /// Receiver (`timer_flush_count`).
    Timer,
    /// Any other flush asked for by the host (`flush_count` only).
    Explicit,
}

/// Where a flush hands its requests when not to the output: the owner of
/// the node logs (an exporter's worker) taking them straight.
pub(crate) type Sink<'a, 'f> = Option<&'a mut (dyn FnMut(crate::encoder::OtlpBytes) + 'f)>;

/// Why a buffer is flushed, including the reasons only selftrace uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flush {
    Asked(FlushReason),
    Overflow,
    /// A node moved to another thread; its earlier records go first.
    Handover,
    Drain,
}

/// Where a `NodeLogs`'s flushed requests go: a destination without the
/// layer's `Buffered` (a [`Destination`](crate::Destination) converts into
/// one; `Buffered(node_logs)` sends where `node_logs` sends).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Output {
    /// Records are batched in per-thread buffers, flushed into the channel.
    Channel(OtlpBytesSender),
    /// Each record is printed when it is logged, in this format.
    Console(ConsoleFormat),
    /// Records are discarded (and counted).
    Noop,
}

/// The state every handle of a `NodeLogs` shares.
pub(crate) struct LogsInner {
    pub(super) output: Output,
    pub(super) limits: EncoderLimits,
    resource: OtlpResource,
    /// The most verbose level produced (`levels::level_to_u8`), changed at
    /// runtime by `NodeLogs::set_max_level`.
    pub(super) max_level: AtomicU8,
    /// Flood control of every node's records, unless the node has its own
    /// limit; keyed by callsite and node.
    pub(super) flood_limit: Option<FloodLimit>,
    flood: FloodTable<Node>,
    /// The span fields records logged straight to a node carry.
    span_fields: Option<SpanFields>,
    /// How records printed on the console are written.
    console_format: ConsoleFormat,
    /// Encodes the records printed as OTLP/JSON (made on first use).
    json_encoder: Mutex<Option<StatefulOtlpEncoder>>,
    pub(super) shut_down: AtomicBool,
    /// Its buffers hold spans, not records (`NodeLogsBuilder::for_spans`).
    pub(super) spans: bool,
    /// The refusal of the other signal was noted on the raw logger.
    mix_noted: AtomicBool,
    /// Counts of records that never reach a buffer, and of retired buffers.
    pub(crate) counters: NodeCounters,
    registry: Mutex<Registry>,
    /// The shared buffers being flushed by `flush_all`.
    flush_list: Mutex<Vec<Arc<Mutex<Buffer>>>>,
    /// Layers whose destination is these node logs: their flood summaries
    /// go out before the node logs shut down, their counters are summed.
    attached: Mutex<Vec<Box<dyn Attached>>>,
}

/// A layer that writes into node logs (see `LogsInner::attached`).
pub(crate) trait Attached: Send + Sync {
    /// Writes the layer's pending flood summaries, if it is still alive.
    fn flush_summaries(&self);
    /// The layer's counters (also once it is gone).
    fn metrics(&self) -> LayerMetrics;
}

/// The buffers of the node logs that are alive.
#[derive(Default)]
struct Registry {
    /// Every thread's shared buffer, for the timer.
    shared: Vec<Weak<Mutex<Buffer>>>,
    /// The counters of every live buffer, local or shared.
    counters: Vec<Arc<NodeCounters>>,
}

/// Which node logs a thread's buffer belongs to (the node logs' address; a buffer
/// keeps its node logs alive, so the address is not reused while it exists).
type LogsKey = *const LogsInner;

/// A thread's buffer for `Send` nodes.
type SharedBuffer = Arc<Mutex<Buffer>>;

/// This thread's shared buffer of one node logs, kept by a caller that logs
/// into it from this thread only (a layer's kept destination): it skips
/// the lookup of the thread's buffers.
pub(crate) struct ThreadBuffer(SharedBuffer);

thread_local! {
    /// This thread's local buffer of each `NodeLogs`, while a node uses it.
    static LOCAL_BUFFERS: RefCell<Vec<(LogsKey, RcWeak<RefCell<Buffer>>)>> = const { RefCell::new(Vec::new()) };
    /// This thread's shared buffer of each `NodeLogs`, until the thread exits.
    static SHARED_BUFFERS: RefCell<Vec<(LogsKey, SharedBuffer)>> = const { RefCell::new(Vec::new()) };
}

/// Locks `mutex`, recovering it if a thread panicked while holding it: the
/// data behind every lock here stays consistent across a panic (the encoder
/// rolls back a half-written record).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl LogsInner {
    pub(super) fn new(
        output: Output,
        limits: EncoderLimits,
        resource: OtlpResource,
        max_level: LevelFilter,
        flood_limit: Option<FloodLimit>,
        span_fields: Option<SpanFields>,
        console_format: Option<ConsoleFormat>,
    ) -> Self {
        let console_format = console_format.unwrap_or(match output {
            Output::Console(format) => format,
            _ => ConsoleFormat::Text,
        });
        LogsInner {
            console_format,
            json_encoder: Mutex::default(),
            output,
            limits,
            resource,
            max_level: AtomicU8::new(level_to_u8(max_level)),
            flood_limit,
            flood: FloodTable::default(),
            span_fields,
            shut_down: AtomicBool::new(false),
            spans: false,
            mix_noted: AtomicBool::new(false),
            counters: NodeCounters::default(),
            registry: Mutex::default(),
            flush_list: Mutex::default(),
            attached: Mutex::default(),
        }
    }

    /// The resource of every buffer's requests.
    #[cfg(feature = "traces")]
    pub(crate) fn resource(&self) -> &OtlpResource {
        &self.resource
    }

    /// A snapshot of the counters of the node logs and of every live buffer.
    pub(super) fn metrics(&self) -> NodeMetrics {
        let mut sum = NodeMetrics::default();
        let registry = lock(&self.registry);
        self.counters.add_to(&mut sum);
        for counters in &registry.counters {
            counters.add_to(&mut sum);
        }
        sum
    }

    /// Drains every buffer it can reach (see `NodeLogs::shutdown`), then
    /// refuses new records.
    pub(super) fn shutdown(self: &Arc<Self>, sink: Sink<'_, '_>) {
        if !self.shut_down.load(Ordering::Acquire) {
            // The layers' summaries first: they write into these buffers.
            for layer in self.attached.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                layer.flush_summaries();
            }
            self.write_summaries(now_unix_nanos(), true);
        }
        self.shut_down.store(true, Ordering::Release);
        self.flush_all(Flush::Drain, sink);
    }

    /// Attaches a layer whose destination is these node logs.
    pub(crate) fn attach(&self, layer: Box<dyn Attached>) {
        self.attached.lock().unwrap_or_else(|p| p.into_inner()).push(layer);
    }

    /// The counters of the layers attached, summed.
    pub(super) fn layer_metrics(&self) -> LayerMetrics {
        let mut sum = LayerMetrics::default();
        for layer in self.attached.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            sum.add(&layer.metrics());
        }
        sum
    }

    /// Flushes what a host asked for.
    pub(super) fn flush(self: &Arc<Self>, reason: FlushReason, sink: Sink<'_, '_>) -> usize {
        let now = now_unix_nanos();
        if self.flood.is_due(now) {
            self.write_summaries(now, false);
        }
        self.flush_all(Flush::Asked(reason), sink)
    }

    /// This thread's local buffer, made on first use.
    pub(super) fn local_buffer(self: &Arc<Self>) -> Rc<RefCell<Buffer>> {
        let me = Arc::as_ptr(self);
        let found = LOCAL_BUFFERS
            .try_with(|cell| {
                let mut list = cell.try_borrow_mut().ok()?;
                list.retain(|(_, buffer)| buffer.strong_count() > 0);
                if let Some(buffer) = list.iter().find(|(logs, _)| *logs == me).and_then(|(_, b)| b.upgrade()) {
                    return Some(buffer);
                }
                let buffer = Rc::new(RefCell::new(Buffer::new(self.clone())));
                list.push((me, Rc::downgrade(&buffer)));
                Some(buffer)
            })
            .ok()
            .flatten();
        // During thread teardown: a buffer of its own, drained when dropped.
        found.unwrap_or_else(|| Rc::new(RefCell::new(Buffer::new(self.clone()))))
    }
    /// The span fields of records logged straight to a node.
    #[inline]
    pub(crate) fn span_fields(&self) -> Option<&SpanFields> {
        self.span_fields.as_ref()
    }

    /// Whether a record at `level` from `node` is produced at all.
    #[inline]
    pub(crate) fn enabled(&self, node: &Node, level: Level) -> bool {
        // Levels as `levels::level_to_u8` codes them: a record passes when
        // its code is at most both.
        let code = level_to_u8(LevelFilter::from_level(level));
        code <= self.max_level.load(Ordering::Relaxed)
            && code <= node.max_level_code()
            && !matches!(node.logger(), NodeLogger::Noop)
    }

    /// Routes one record of `node`: `buffer` gives this thread's buffer for
    /// the `Default` logger and a `Channel` destination. `site` identifies
    /// the record's callsite for flood control (`None`: not limited).
    pub(crate) fn log<R: LogRecordView + ?Sized>(
        self: &Arc<Self>,
        node: &Node,
        level: Level,
        site: Option<u64>,
        record: &R,
        buffer: impl FnOnce(&mut dyn FnMut(&mut Buffer)) -> bool,
    ) {
        // A summary of this key's last window, written just before the record.
        let mut summary: Option<(&SiteInfo<Node>, Summary)> = None;
        let refused = if self.shut_down.load(Ordering::Relaxed) {
            DropReason::ShutDown
        } else if self.spans {
            self.refuse_signal("a record")
        } else if !self.enabled(node, level) {
            DropReason::Discarded
        } else if let (Some(limit), Some(site)) = (node.flood_override().unwrap_or(self.flood_limit), site)
            && self.admit(node, limit, site, record, &mut summary) == Admit::Suppress
        {
            DropReason::Suppressed
        } else {
            let time = record.time_unix_nano().unwrap_or(0);
            let summary = summary.map(|(info, summary)| SummaryRecord { info, summary, time });
            match (node.logger(), &self.output) {
                (NodeLogger::Console, _) | (NodeLogger::Default, Output::Console(_)) => {
                    if let Some(summary) = &summary {
                        self.print(node.id(), summary);
                    }
                    return self.print(node.id(), record);
                }
                (NodeLogger::Raw, _) => {
                    if let Some(summary) = &summary {
                        raw_record(node.id(), summary);
                        self.delivered();
                    }
                    raw_record(node.id(), record);
                    return self.delivered();
                }
                // The buffer counts what it takes.
                (NodeLogger::Default, Output::Channel(_)) => {
                    let taken = buffer(&mut |buffer| {
                        if let Some(summary) = &summary {
                            buffer.log(node.id(), summary);
                        }
                        buffer.log(node.id(), record);
                    });
                    if taken {
                        return;
                    }
                    // The buffer is in use further up this thread's stack.
                    if let Some(summary) = &summary {
                        self.refuse(DropReason::Reentrant, node, summary);
                    }
                    DropReason::Reentrant
                }
                // `Noop`, and anything new, discards (the summary too).
                _ => {
                    if let Some(summary) = &summary {
                        self.refuse(DropReason::Discarded, node, summary);
                    }
                    DropReason::Discarded
                }
            }
        };
        self.refuse(refused, node, record);
    }

    /// Flood control of one record of `node` (see [`flood`](crate::flood)).
    #[inline]
    fn admit<'a, R: LogRecordView + ?Sized>(
        self: &'a Arc<Self>,
        node: &Node,
        limit: FloodLimit,
        site: u64,
        record: &R,
        summary: &mut Option<(&'a SiteInfo<Node>, Summary)>,
    ) -> Admit {
        let now = record.time_unix_nano().unwrap_or_else(now_unix_nanos);
        let admitted = self.flood.admit(
            Key { site, node: node.address() },
            limit,
            || now,
            || SiteInfo::new(record, node.clone(), limit),
            || flood::opts_out(record),
            |info, taken| *summary = Some((info, taken)),
        );
        if admitted == Admit::Untracked {
            add(&self.counters.flood_untracked, 1);
        }
        if admitted != Admit::Suppress && self.flood.is_due(now) {
            self.write_summaries(now, false);
        }
        admitted
    }

    /// Writes the flood summaries whose window ended by `now` (every pending
    /// one when `all`), each through its node's logger.
    #[cold]
    pub(super) fn write_summaries(self: &Arc<Self>, now: u64, all: bool) -> usize {
        self.flood.sweep(now, all, |info, summary| {
            let node = &info.to;
            let record = SummaryRecord { info, summary, time: now };
            let level = record_level(&record);
            let last = AtomicUsize::new(0);
            self.log(node, level, None, &record, |f| {
                self.with_shared_buffer(&last, f);
                true
            });
        })
    }

    /// Buffers a record that belongs to no node (a third-party event the
    /// layer hands over, `Destination::Buffered`) in this thread's shared
    /// buffer, under `scope`, or prints it where the node logs prints; refused
    /// (shut down, `Noop` node logs): the reason, for the layer to count once.
    pub(crate) fn log_unattributed<R: LogRecordView + ?Sized>(
        self: &Arc<Self>,
        scope: &str,
        record: &R,
        kept: Option<&ThreadBuffer>,
    ) -> Result<(), DropReason> {
        if self.shut_down.load(Ordering::Relaxed) {
            return Err(DropReason::ShutDown);
        }
        if self.spans {
            return Err(self.refuse_signal("a record"));
        }
        match self.output {
            Output::Channel(_) => {}
            Output::Console(_) => {
                self.print(scope, record);
                return Ok(());
            }
            Output::Noop => return Err(DropReason::Discarded),
        }
        match kept {
            // This thread's, kept by the caller: the thread cannot hold its
            // lock already (the caller's re-entrancy guard).
            Some(ThreadBuffer(buffer)) => lock(buffer).log(scope, record),
            // No handle whose records must stay in order across threads.
            None => {
                let last = AtomicUsize::new(0);
                self.with_shared_buffer(&last, &mut |buffer| buffer.log(scope, record));
            }
        }
        Ok(())
    }

    /// This thread's shared buffer, made on first use, for a caller that
    /// keeps it (see [`ThreadBuffer`]); `None` where records are not
    /// buffered (a console or no output, node logs of spans, shut down) and
    /// during thread teardown.
    pub(crate) fn thread_buffer(self: &Arc<Self>) -> Option<ThreadBuffer> {
        if !matches!(self.output, Output::Channel(_)) || self.spans || self.shut_down.load(Ordering::Relaxed) {
            return None;
        }
        let found = self.with_found_buffer(Arc::clone).ok()?;
        Some(ThreadBuffer(found.unwrap_or_else(|| self.new_shared_buffer())))
    }

    /// `f` of this thread's shared buffer of these node logs, if it has one
    /// (and its list is not borrowed); `Err` during thread teardown.
    #[inline]
    fn with_found_buffer<T>(&self, f: impl FnOnce(&SharedBuffer) -> T) -> Result<Option<T>, std::thread::AccessError> {
        let me: LogsKey = self;
        SHARED_BUFFERS.try_with(|cell| {
            let list = cell.try_borrow().ok()?;
            list.iter().find(|(logs, _)| *logs == me).map(|(_, buffer)| f(buffer))
        })
    }

    /// Buffers one closed span (an `OtlpSpanLayer` whose spans go to these
    /// node logs, which hold nothing but spans) in this thread's shared
    /// buffer, under `scope`. Taken: the values cut. Refused: why, for the
    /// span layer to count (a span larger than the record limit is
    /// `RecordTooLarge`; shut down; an output that is not a channel).
    ///
    /// The caller holds the layer guard: nothing up this thread's stack
    /// holds the buffer's lock.
    #[cfg(feature = "traces")]
    pub(crate) fn log_span(
        self: &Arc<Self>,
        scope: &str,
        span: &(impl crate::span_view::SpanView + ?Sized),
    ) -> Result<u32, DropReason> {
        if self.shut_down.load(Ordering::Relaxed) {
            return Err(DropReason::ShutDown);
        }
        if !self.spans {
            return Err(self.refuse_signal("a span"));
        }
        if !matches!(self.output, Output::Channel(_)) {
            return Err(DropReason::Discarded);
        }
        let last = AtomicUsize::new(0);
        let mut taken = Err(DropReason::RecordTooLarge);
        self.with_shared_buffer(&last, &mut |buffer| taken = buffer.span(scope, span));
        taken
    }

    /// A record given to node logs of spans, or a span to node logs of
    /// records: refused as discarded (the caller counts it), noted once.
    #[cold]
    fn refuse_signal(&self, what: &str) -> DropReason {
        if !self.mix_noted.swap(true, Ordering::Relaxed) {
            let holds = if self.spans { "spans" } else { "log records" };
            raw_note(
                DropReason::Discarded,
                format_args!("node logs of {holds}: {what} refused, counted as discarded (a request holds one signal)"),
            );
        }
        DropReason::Discarded
    }

    /// Prints a record on the console, in the console format, counted:
    /// text straight from the record; OTLP/JSON from the record encoded with
    /// the node logs' resource and limits, written by the one JSON writer (the
    /// layer's `Destination::OtlpJson` prints the same line).
    fn print<R: LogRecordView + ?Sized>(&self, scope: &str, record: &R) {
        let ConsoleFormat::OtlpJson(stream) = self.console_format else {
            console::print_console_line(scope, record);
            return self.delivered();
        };
        let encode = |encoder: &mut StatefulOtlpEncoder| {
            let cut = encoder.encode_log_record(scope, record);
            (encoder.flush(), cut)
        };
        // Taken by another thread (or by this one, from a value's `Debug`
        // that logs): an encoder of its own for this record.
        let (request, cut) = match self.json_encoder.try_lock() {
            Ok(mut encoder) => encode(encoder.get_or_insert_with(|| self.json_encoder())),
            Err(TryLockError::Poisoned(poisoned)) => {
                let mut encoder = poisoned.into_inner();
                encoder.as_mut().map(StatefulOtlpEncoder::clear);
                encode(encoder.get_or_insert_with(|| self.json_encoder()))
            }
            Err(TryLockError::WouldBlock) => encode(&mut self.json_encoder()),
        };
        match cut {
            Ok(cut) => {
                json::print_encoded(&request, stream);
                add(&self.counters.truncated_values, u64::from(cut));
                self.delivered();
            }
            Err(_) => {
                add(&self.counters.received, 1);
                add(self.counters.dropped(DropReason::RecordTooLarge), 1);
                raw_log(DropReason::RecordTooLarge, scope, record);
            }
        }
    }

    fn json_encoder(&self) -> StatefulOtlpEncoder {
        StatefulOtlpEncoder::with_limits(self.limits, self.resource.clone())
    }

    /// Counts a record that went out synchronously (console, raw logger).
    fn delivered(&self) {
        add(&self.counters.received, 1);
        add(&self.counters.delivered, 1);
    }

    /// A record of `node` raised on a zone thread: printed by `logger` when
    /// it is an ERROR (`Console`, `Raw`), else discarded; never buffered.
    #[cold]
    pub(crate) fn divert<R: LogRecordView + ?Sized>(&self, logger: NodeLogger, node: &Node, record: &R) {
        let error = record.severity().is_some_and(|s| s.number() >= 17);
        match logger {
            NodeLogger::Console if error => self.print(node.id(), record),
            NodeLogger::Raw if error => {
                raw_record(node.id(), record);
                self.delivered();
            }
            _ => self.refuse(DropReason::Discarded, node, record),
        }
    }

    /// Counts a record dropped for `reason`; one that was not discarded on
    /// purpose goes to the raw logger.
    pub(crate) fn refuse<R: LogRecordView + ?Sized>(&self, reason: DropReason, node: &Node, record: &R) {
        add(&self.counters.received, 1);
        add(self.counters.dropped(reason), 1);
        if !matches!(reason, DropReason::Discarded | DropReason::Suppressed) {
            raw_log(reason, node.id(), record);
        }
    }

    /// Runs `f` on this thread's shared buffer of these node logs, made on first
    /// use.
    ///
    /// `last` is the buffer the caller's handle logged into before: when the
    /// handle has moved to another thread since, that buffer is flushed
    /// first, so the records of one handle reach the destination in order.
    pub(crate) fn with_shared_buffer(self: &Arc<Self>, last: &AtomicUsize, f: &mut dyn FnMut(&mut Buffer)) {
        // The common case: the buffer exists; lock it without touching its
        // reference count. The lock is only contended by a flush of this
        // buffer from another thread (one request copied and `try_send`);
        // this thread cannot hold it already (the caller's re-entrancy guard).
        let found = self.with_found_buffer(|buffer| {
            self.hand_over(last, buffer);
            f(&mut lock(buffer));
        });
        match found {
            Ok(Some(())) => return,
            Ok(None) => {}
            // During thread teardown: a buffer of its own, drained when dropped.
            Err(_) => return f(&mut Buffer::new(self.clone())),
        }
        let buffer = self.new_shared_buffer();
        self.hand_over(last, &buffer);
        f(&mut lock(&buffer));
    }

    /// A new shared buffer for this thread, registered for the timer and
    /// kept in the thread's list until the thread exits.
    #[cold]
    fn new_shared_buffer(self: &Arc<Self>) -> SharedBuffer {
        let buffer = Arc::new(Mutex::new(Buffer::new(self.clone())));
        lock(&self.registry).shared.push(Arc::downgrade(&buffer));
        let _ = SHARED_BUFFERS.try_with(|cell| {
            if let Ok(mut list) = cell.try_borrow_mut() {
                list.push((Arc::as_ptr(self), buffer.clone()));
            }
        });
        buffer
    }

    /// Flushes the buffer `last` names when it is not `next`, and makes `next`
    /// the last one.
    #[inline]
    fn hand_over(&self, last: &AtomicUsize, next: &Arc<Mutex<Buffer>>) {
        let next = Arc::as_ptr(next) as usize;
        let previous = last.load(Ordering::Relaxed);
        if previous == next {
            return;
        }
        last.store(next, Ordering::Relaxed);
        if previous != 0 {
            self.flush_buffer_at(previous);
        }
    }

    /// Flushes the shared buffer at address `at`, if it is still alive.
    #[cold]
    fn flush_buffer_at(&self, at: usize) {
        let buffer = lock(&self.registry).shared.iter().find(|b| b.as_ptr() as usize == at).and_then(Weak::upgrade);
        // The registry lock is released: the buffer may be dropped here.
        if let Some(buffer) = buffer {
            lock(&buffer).flush(Flush::Handover, None);
        }
    }

    /// Flushes every shared buffer and this thread's local buffer.
    fn flush_all(self: &Arc<Self>, reason: Flush, mut sink: Sink<'_, '_>) -> usize {
        let me = Arc::as_ptr(self);
        let mut flushed = 0;
        let local = LOCAL_BUFFERS
            .try_with(|cell| {
                let list = cell.try_borrow().ok()?;
                list.iter().find(|(logs, _)| *logs == me).and_then(|(_, buffer)| buffer.upgrade())
            })
            .ok()
            .flatten();
        if let Some(local) = local
            && let Ok(mut buffer) = local.try_borrow_mut()
        {
            flushed += usize::from(buffer.flush(reason, sink.as_deref_mut()));
        }
        // Take the buffers out of the registry's lock before locking them: a
        // buffer dropped here (its thread is gone) takes the registry lock.
        // The list is kept between flushes, so a flush allocates nothing.
        let mut shared = lock(&self.flush_list);
        {
            let mut registry = lock(&self.registry);
            registry.shared.retain(|b| b.strong_count() > 0);
            shared.extend(registry.shared.iter().filter_map(Weak::upgrade));
        }
        for buffer in shared.iter() {
            flushed += usize::from(lock(buffer).flush(reason, sink.as_deref_mut()));
        }
        shared.clear();
        flushed
    }
}

/// One thread's buffer of one `NodeLogs`.
pub(crate) struct Buffer {
    encoder: StatefulOtlpEncoder,
    logs: Arc<LogsInner>,
    /// Updated only through `&mut Buffer`, hence `bump`.
    counters: Arc<NodeCounters>,
}

impl Buffer {
    fn new(logs: Arc<LogsInner>) -> Self {
        let counters = Arc::new(NodeCounters::default());
        lock(&logs.registry).counters.push(counters.clone());
        Self { encoder: StatefulOtlpEncoder::with_limits(logs.limits, logs.resource.clone()), logs, counters }
    }

    /// Appends one record; flushes first when the buffer is full.
    ///
    /// Counted as received with its outcome: a value whose `Debug` panics
    /// unwinds out of here with the record rolled back and not counted.
    fn log<R: LogRecordView + ?Sized>(&mut self, scope: &str, record: &R) {
        let mut result = self.encoder.encode_log_record(scope, record);
        if result == Err(EncodeError::BufferFull) {
            self.flush(Flush::Overflow, None);
            result = self.encoder.encode_log_record(scope, record);
        }
        bump(&self.counters.received, 1);
        match result {
            Ok(0) => {}
            Ok(cut) => bump(&self.counters.truncated_values, u64::from(cut)),
            Err(_) => {
                bump(self.counters.dropped(DropReason::RecordTooLarge), 1);
                raw_log(DropReason::RecordTooLarge, scope, record);
            }
        }
    }

    /// Appends one span (see `LogsInner::log_span`); flushes first when the
    /// buffer is full. A span too large for an empty buffer is not taken
    /// (nor counted here: the span layer counts it).
    #[cfg(feature = "traces")]
    fn span(&mut self, scope: &str, span: &(impl crate::span_view::SpanView + ?Sized)) -> Result<u32, DropReason> {
        let mut result = self.encoder.encode_span(scope, span);
        if result == Err(EncodeError::BufferFull) {
            self.flush(Flush::Overflow, None);
            result = self.encoder.encode_span(scope, span);
        }
        let cut = result.map_err(|_| DropReason::RecordTooLarge)?;
        bump(&self.counters.received, 1);
        bump(&self.counters.truncated_values, u64::from(cut));
        Ok(cut)
    }

    /// Hands the buffered request to the destination. False when empty.
    /// Flushes the buffer's request to `sink` when there is one (the
    /// owner of the node logs taking it straight, never refused), else to
    /// the output.
    fn flush(&mut self, reason: Flush, sink: Sink<'_, '_>) -> bool {
        let records = self.encoder.record_count() as u64;
        if records == 0 {
            return false;
        }
        let bytes = self.encoder.flush();
        let counters = &self.counters;
        bump(&counters.flush_count, 1);
        match reason {
            Flush::Asked(FlushReason::Timer) => bump(&counters.timer_flush_count, 1),
            Flush::Overflow => bump(&counters.overflow_flush_count, 1),
            Flush::Asked(FlushReason::Explicit) | Flush::Handover | Flush::Drain => {}
        }
        let len = bytes.len();
        let refused = match (sink, &self.logs.output) {
            (Some(sink), _) => {
                sink(bytes);
                None
            }
            (None, Output::Channel(sender)) => sender.try_send(bytes).err().map(|refused| refused.drop_reason()),
            // Records are only buffered for a channel.
            (None, _) => Some(DropReason::Discarded),
        };
        match refused {
            None => {
                bump(&counters.delivered, records);
                bump(&counters.bytes_flushed, len as u64);
            }
            Some(reason) => {
                bump(counters.dropped(reason), records);
                raw_note(reason, format_args!("node logs: dropped a request of {records} records ({len} bytes)"));
            }
        }
        true
    }
}

impl Drop for Buffer {
    /// Drains the buffer and moves its counts to the node logs.
    fn drop(&mut self) {
        self.flush(Flush::Drain, None);
        let mut registry = lock(&self.logs.registry);
        registry.counters.retain(|c| !Arc::ptr_eq(c, &self.counters));
        self.logs.counters.absorb(&self.counters);
    }
}
