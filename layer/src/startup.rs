//! The startup buffer: events logged before their destination exists, kept
//! encoded, in order, bounded in bytes, and handed to the destination when
//! it is set.
//!
//! A layer built with [`Destination::startup`](crate::Destination::startup)
//! (or given a [`Destination::Startup`](crate::Destination::Startup)) encodes
//! each event as one OTLP request, as for a channel, and keeps it in the
//! buffer. When [`DestinationHandle::set`](crate::DestinationHandle::set)
//! replaces the buffer with a real destination, the kept requests go to it
//! first, in the order they were logged, and only then does the new
//! destination take new events: an event racing the change waits for the
//! hand-over (a lock held while the requests are handed over, without
//! blocking on the destination: channels are `try_send`).
//!
//! Bounded: at most its capacity in request bytes
//! ([`DEFAULT_STARTUP_BUFFER_BYTES`], 1 MiB). An event that does not fit is
//! counted as [`DropReason::StartupBufferFull`],
//! and the hand-over adds one record that says how many there were
//! (`selftrace.startup_buffer.overflow`, with the count and the first and
//! last times), so `received == delivered + dropped + startup_buffered`
//! holds throughout.
//!
//! If no destination is ever set, the kept events are printed on the
//! console (stderr): when the layer is dropped, when
//! [`StartupBuffer::print_to_console`] is called, or at process exit when
//! the buffer was made on the main thread (its thread-local guard is
//! dropped by the exit; other threads' exits do not count).
//!
//! ```
//! use selftrace::{Destination, OtlpBytesChannel, OtlpTracingLayer};
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let layer = OtlpTracingLayer::new(Destination::startup());
//! let handle = layer.handle();
//! tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
//!     tracing::info!("before the exporter exists");
//!     let channel = OtlpBytesChannel::new(16);
//!     handle.set(Destination::Channel(channel.sender())).unwrap();
//!     tracing::info!("after");
//!     assert_eq!(channel.receiver().len(), 2); // in order
//! });
//! assert_eq!(handle.metrics().delivered, 2);
//! ```

use std::{
    cell::RefCell,
    collections::VecDeque,
    fmt,
    sync::{Arc, Mutex, Weak},
};

use crate::{
    console,
    encoder::OtlpBytes,
    metrics::{DropReason, LayerCounters},
    view::{AnyValue, LogRecordView, RecordVisitor, Severity},
};

/// The default capacity of a [`StartupBuffer`]: 1 MiB of encoded requests.
pub const DEFAULT_STARTUP_BUFFER_BYTES: usize = 1 << 20;

/// The scope of the record that counts the events a startup buffer had no
/// room for.
#[doc(hidden)]
pub const OVERFLOW_SCOPE: &str = "selftrace";
/// Its event name.
pub const OVERFLOW_EVENT: &str = "selftrace.startup_buffer.overflow";

/// Events waiting, encoded, for their destination (see
/// [the module docs](self)). Cloning is cheap: clones are the same buffer.
///
/// # Examples
///
/// ```
/// use selftrace::{Destination, OtlpBytesChannel, OtlpTracingLayer, startup::StartupBuffer};
/// use tracing_subscriber::layer::SubscriberExt;
///
/// // 256 KiB of encoded events kept until the exporter exists.
/// let layer = OtlpTracingLayer::new(Destination::Startup(StartupBuffer::new(256 << 10)));
/// let handle = layer.handle();
/// let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
/// tracing::dispatcher::with_default(&dispatch, || tracing::info!("before the exporter"));
///
/// let channel = OtlpBytesChannel::new(16);
/// handle.set(Destination::Channel(channel.sender()))?; // the kept event goes first
/// assert_eq!(channel.receiver().len(), 1);
/// # Ok::<(), selftrace::HandleError>(())
/// ```
#[derive(Clone)]
pub struct StartupBuffer {
    inner: Arc<Inner>,
}

struct Inner {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    requests: VecDeque<OtlpBytes>,
    bytes: usize,
    /// Handed over or printed: the buffer takes nothing more.
    closed: bool,
    overflow: Overflow,
}

/// The events that did not fit.
#[derive(Clone, Copy, Default)]
struct Overflow {
    count: u64,
    first: u64,
    last: u64,
}

impl fmt::Debug for StartupBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("StartupBuffer")
            .field("capacity", &self.inner.capacity)
            .field("requests", &state.requests.len())
            .field("bytes", &state.bytes)
            .field("overflow", &state.overflow.count)
            .field("closed", &state.closed)
            .finish()
    }
}

impl Default for StartupBuffer {
    fn default() -> Self {
        Self::new(DEFAULT_STARTUP_BUFFER_BYTES)
    }
}

thread_local! {
    /// On the main thread: the buffers to print if nothing took them when
    /// the process exits (this thread-local is dropped by the exit).
    static AT_EXIT: RefCell<ExitGuard> = const { RefCell::new(ExitGuard(Vec::new())) };
}

struct ExitGuard(Vec<Weak<Inner>>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        for inner in self.0.drain(..).filter_map(|weak| weak.upgrade()) {
            StartupBuffer { inner }.print_to_console();
        }
    }
}

/// What [`StartupBuffer::push`] did with a request.
pub(crate) enum Push {
    Kept,
    Full,
    /// Handed over already: deliver it where the layer sends now.
    Closed(OtlpBytes),
}

impl StartupBuffer {
    /// A buffer of `capacity_bytes` of encoded requests (at least one
    /// request is always refused past it, never a part of one).
    pub fn new(capacity_bytes: usize) -> Self {
        let inner = Arc::new(Inner { capacity: capacity_bytes, state: Mutex::default() });
        if std::thread::current().name() == Some("main") {
            let weak = Arc::downgrade(&inner);
            let _ = AT_EXIT.try_with(|guard| {
                if let Ok(mut guard) = guard.try_borrow_mut() {
                    guard.0.retain(|w| w.strong_count() > 0);
                    guard.0.push(weak);
                }
            });
        }
        Self { inner }
    }

    /// Its capacity, in bytes of encoded requests.
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    /// How many events it holds.
    pub fn len(&self) -> usize {
        self.lock().requests.len()
    }

    /// Whether it holds no event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many bytes of requests it holds.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Prints what it holds on the console (stderr) and takes nothing more;
    /// for a process that will never set a destination. Returns how many
    /// records were printed (the overflow record included). The layer
    /// filling it counts them as still buffered: to have them counted,
    /// set the layer's destination to `Console` instead.
    pub fn print_to_console(&self) -> usize {
        let record = |record: &dyn LogRecordView| console::print_console_line(OVERFLOW_SCOPE, record);
        self.hand_over(
            None,
            &|request| {
                let _ = print(&request);
            },
            &record,
            || {},
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `other` is this buffer.
    pub(crate) fn same(&self, other: &StartupBuffer) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Keeps one request of one record, if it fits; counts it in
    /// `counters` as buffered.
    pub(crate) fn push(&self, request: OtlpBytes, now: u64, counters: Option<&LayerCounters>) -> Push {
        let mut state = self.lock();
        if state.closed {
            return Push::Closed(request);
        }
        if state.bytes + request.len() > self.inner.capacity {
            let overflow = &mut state.overflow;
            if overflow.count == 0 {
                overflow.first = now;
            }
            overflow.count += 1;
            overflow.last = now;
            return Push::Full;
        }
        state.bytes += request.len();
        state.requests.push_back(request);
        if let Some(counters) = counters {
            counters.startup_buffered(1);
        }
        Push::Kept
    }

    /// Hands what it holds to `send`, in order, then the overflow record to
    /// `send_record` (the senders count where each went); takes them out of
    /// `counters`' buffered count. `then` runs while the buffer is still
    /// locked (the layer swaps its destination there, so no new event
    /// passes the old ones). Returns how many records it handed over; 0
    /// when it was closed already.
    pub(crate) fn hand_over(
        &self,
        counters: Option<&LayerCounters>,
        send: &dyn Fn(OtlpBytes),
        send_record: &dyn Fn(&dyn LogRecordView),
        then: impl FnOnce(),
    ) -> usize {
        let mut state = self.lock();
        if state.closed {
            then();
            return 0;
        }
        state.closed = true;
        let requests = std::mem::take(&mut state.requests);
        state.bytes = 0;
        let overflow = std::mem::take(&mut state.overflow);
        if let Some(counters) = counters {
            counters.startup_buffered(-(requests.len() as i64));
        }
        let mut handed = requests.len();
        requests.into_iter().for_each(send);
        if overflow.count > 0 {
            handed += 1;
            send_record(&OverflowRecord { overflow, capacity: self.inner.capacity, time: overflow.last });
        }
        then();
        handed
    }
}

/// Prints one encoded request on the console.
pub(crate) fn print(request: &OtlpBytes) -> Option<DropReason> {
    // Our own encoding: it decodes.
    match console::print_request(request.as_bytes()) {
        Ok(_) => None,
        Err(_) => Some(DropReason::RecordTooLarge),
    }
}

/// The record that counts the events a startup buffer had no room for.
struct OverflowRecord {
    overflow: Overflow,
    capacity: usize,
    time: u64,
}

struct OverflowBody(u64, usize);

impl fmt::Debug for OverflowBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let events = if self.0 == 1 { "event" } else { "events" };
        write!(f, "dropped {} {events} that did not fit the startup buffer ({} bytes)", self.0, self.1)
    }
}

impl LogRecordView for OverflowRecord {
    fn time_unix_nano(&self) -> Option<u64> {
        Some(self.time)
    }
    fn observed_time_unix_nano(&self) -> Option<u64> {
        Some(self.time)
    }
    fn severity(&self) -> Option<Severity> {
        Some(Severity::WARN)
    }
    fn event_name(&self) -> Option<&str> {
        Some(OVERFLOW_EVENT)
    }
    fn visit(&self, visitor: &mut dyn RecordVisitor) {
        let int = |v: u64| AnyValue::Int(i64::try_from(v).unwrap_or(i64::MAX));
        visitor.visit_body(AnyValue::Fmt(&OverflowBody(self.overflow.count, self.capacity)));
        visitor.visit_attribute("selftrace.dropped.count", int(self.overflow.count));
        visitor.visit_attribute("selftrace.dropped.first_time_unix_nano", int(self.overflow.first));
        visitor.visit_attribute("selftrace.dropped.last_time_unix_nano", int(self.overflow.last));
    }
}
