//! Flood control: a repeated event past its budget per window is suppressed
//! before it is encoded, and summarised in one record per window.
//!
//! An event repeats when it comes from the same callsite (for `log`
//! records, the same target, file, line and level) and, inside a node
//! scope or through the `otel_*!` macros, the same node. Each such key may
//! pass [`FloodLimit::events`] events per [`FloodLimit::window`]; the
//! events past that are counted as
//! [`DropReason::Suppressed`](crate::DropReason::Suppressed) and not
//! encoded. When the key's window has ended, one summary record goes where
//! the suppressed events would have gone: the same severity, scope and
//! event name, the body `suppressed N events in the last 10 s`, and the
//! attributes [`SUPPRESSED_COUNT`], [`SUPPRESSED_WINDOW_MS`],
//! [`SUPPRESSED_FIRST_TIME`] and [`SUPPRESSED_LAST_TIME`]. A summary is
//! produced (counted as received, then delivered or dropped like any record),
//! so `received == delivered + dropped` still holds.
//!
//! The summary of a window is written by the first of: the key's next event
//! after the window, any event of the same layer or node logs once a window
//! with suppressed events has ended, [`NodeLogs::flush`](crate::NodeLogs::flush)
//! (the Internal Telemetry Receiver's timer), and, whatever the window, the
//! shutdown of the node logs or the drop of the layer.
//!
//! A callsite opts out with the field `internal_log_rate_limit = false`
//! (the name Vector's `tracing-limit` uses), read once, at its first event
//! past the budget.
//!
//! The keys live in a table of 512 entries per layer and per
//! node logs, made at build, with no lock: an entry is claimed with one
//! compare-and-swap, and counted with relaxed atomics of its own cache line.
//! A key that finds no free entry near its place (the table is full), or
//! finds its entry being made by another thread, is let through without a
//! limit and counted (`flood_untracked` in the metrics).
//!
//! Windows are fixed and start at the key's first event past the end of the
//! previous one; threads racing at a window's edge may let one or two events
//! more through, never lose one uncounted. Past its budget a key reads the
//! clock for the first 64 suppressed events of a window and one in 64
//! after, so in a storm a window's end is seen up to 63 events late and the
//! last suppression time is that recent. In the layer the check runs before
//! the destination is loaded, and a suppressed event is neither stamped nor
//! encoded.

use std::{
    fmt,
    sync::{
        OnceLock,
        atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use crate::view::{AnyValue, LogRecordView, RecordVisitor, Severity};

/// The field with which a callsite opts out of flood control
/// (`internal_log_rate_limit = false`).
pub const OPT_OUT_FIELD: &str = "internal_log_rate_limit";

/// How many keys (callsite and node) a layer or a node logs tracks at most.
pub(crate) const MAX_FLOOD_KEYS: usize = 512;

/// The attribute of a summary with how many events it stands for.
pub const SUPPRESSED_COUNT: &str = "selftrace.suppressed.count";
/// The attribute of a summary with its window, in milliseconds.
pub const SUPPRESSED_WINDOW_MS: &str = "selftrace.suppressed.window_ms";
/// The attribute of a summary with the time of its first suppressed event,
/// in nanoseconds since the Unix epoch.
pub const SUPPRESSED_FIRST_TIME: &str = "selftrace.suppressed.first_time_unix_nano";
/// The attribute of a summary with the time of its last suppressed event.
pub const SUPPRESSED_LAST_TIME: &str = "selftrace.suppressed.last_time_unix_nano";

/// How far from its place a key is looked for in the table.
const PROBES: usize = 8;

/// Past its budget, a key's events read the clock for the first this many
/// of a window, then one in this many.
pub(crate) const CLOCK_EVERY: u64 = 64;

// === impl FloodLimit ===

/// How many events of one key pass per window: the rest are suppressed and
/// summarised (see [the module docs](crate::flood)).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use selftrace::flood::FloodLimit;
///
/// let limit = FloodLimit::new(100, Duration::from_secs(60))?;
/// assert_eq!(limit.events(), 100);
/// assert_eq!(FloodLimit::DEFAULT.window(), Duration::from_secs(10));
/// assert!(FloodLimit::new(0, Duration::from_secs(1)).is_err());
/// # Ok::<(), selftrace::flood::FloodLimitError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FloodLimit {
    events: u32,
    window_ms: u32,
}

impl FloodLimit {
    /// 10 events per 10 seconds: the default of the layer and the node logs.
    pub const DEFAULT: FloodLimit = FloodLimit { events: 10, window_ms: 10_000 };

    /// The longest window: one day.
    pub const MAX_WINDOW: Duration = Duration::from_secs(86_400);

    /// `events` per `window`.
    ///
    /// # Errors
    ///
    /// [`FloodLimitError`] when `events` is 0 (turn flood control off with
    /// `None` instead) or `window` is under 1 ms or over
    /// [`MAX_WINDOW`](Self::MAX_WINDOW).
    pub fn new(events: u32, window: Duration) -> Result<Self, FloodLimitError> {
        if events == 0 {
            return Err(FloodLimitError("the number of events per window must be at least 1"));
        }
        if window < Duration::from_millis(1) || window > Self::MAX_WINDOW {
            return Err(FloodLimitError("the window must be from 1 ms to 1 day"));
        }
        let window_ms = u32::try_from(window.as_millis()).unwrap_or(u32::MAX);
        Ok(Self { events, window_ms })
    }

    /// The events of one key that pass per window.
    pub fn events(&self) -> u32 {
        self.events
    }

    /// The window (whole milliseconds).
    pub fn window(&self) -> Duration {
        Duration::from_millis(u64::from(self.window_ms))
    }

    fn window_ns(&self) -> u64 {
        u64::from(self.window_ms) * 1_000_000
    }
}

impl Default for FloodLimit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A [`FloodLimit`] out of range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FloodLimitError(&'static str);

impl fmt::Display for FloodLimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for FloodLimitError {}

// === the table ===

/// What identifies a repeated event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Key {
    /// The callsite's metadata address, or for `log` records a hash of
    /// their target, file, line and level with the top bit set.
    pub(crate) site: u64,
    /// The node's address, 0 outside a node.
    pub(crate) node: usize,
}

impl Key {
    /// The key of a callsite with a static identity.
    #[cfg(test)]
    pub(crate) fn callsite(id: usize, node: usize) -> Self {
        Self { site: id as u64, node }
    }

    /// The key of a `log` record (one `tracing` callsite per level serves
    /// every `log` call): a hash of where it was logged.
    pub(crate) fn hashed(parts: &[&[u8]], node: usize) -> Self {
        // FNV-1a, 64-bit.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for part in parts {
            for b in *part {
                h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
            }
            h = (h ^ 0xff).wrapping_mul(0x0000_0100_0000_01b3);
        }
        Self { site: h | 1 << 63, node }
    }

    fn place(self, mask: usize) -> usize {
        let h = (self.site ^ (self.node as u64).rotate_left(29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h >> 32) as usize & mask
    }
}

/// What a summary repeats of the events it stands for, kept when the key's
/// entry is made (its only allocation), and `T`: where the summary goes (a
/// layer's key: its target, the scope name; a node logs' key: the node).
#[derive(Debug)]
pub(crate) struct SiteInfo<T = Box<str>> {
    pub(crate) severity: Option<Severity>,
    pub(crate) event_name: Option<Box<str>>,
    pub(crate) to: T,
    limit: FloodLimit,
}

impl<T> SiteInfo<T> {
    pub(crate) fn new<R: LogRecordView + ?Sized>(record: &R, to: T, limit: FloodLimit) -> Self {
        Self { severity: record.severity(), event_name: record.event_name().map(Into::into), to, limit }
    }
}

const EMPTY: u8 = 0;
const CLAIMED: u8 = 1;
const READY: u8 = 2;

const OPT_UNKNOWN: u8 = 0;
const OPT_LIMITED: u8 = 1;
const OPT_EXEMPT: u8 = 2;

/// One key's counts, on cache lines of its own.
#[repr(align(128))]
struct Slot<T> {
    state: AtomicU8,
    opt: AtomicU8,
    /// Events let through in this window.
    passed: AtomicU32,
    site: AtomicU64,
    node: AtomicUsize,
    /// When this window started (ns since the Unix epoch).
    start: AtomicU64,
    /// Events suppressed since the last summary, and when the first and
    /// the last of them were.
    suppressed: AtomicU64,
    first: AtomicU64,
    last: AtomicU64,
    info: OnceLock<SiteInfo<T>>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self {
            state: AtomicU8::new(EMPTY),
            opt: AtomicU8::new(OPT_UNKNOWN),
            passed: AtomicU32::new(0),
            site: AtomicU64::new(0),
            node: AtomicUsize::new(0),
            start: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
            first: AtomicU64::new(0),
            last: AtomicU64::new(0),
            info: OnceLock::new(),
        }
    }
}

/// The suppressed events a summary stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) count: u64,
    pub(crate) first: u64,
    pub(crate) last: u64,
    pub(crate) window: FloodLimit,
}

/// What [`FloodTable::admit`] decided for one event.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Within the budget: deliver it.
    Pass,
    /// Past the budget: count it as suppressed; do not encode it.
    Suppress,
    /// No entry for its key (table full, or the entry is being made): deliver
    /// it and count it as untracked.
    Untracked,
}

/// The keys of one layer or node logs; `T`: where a key's summaries go.
pub(crate) struct FloodTable<T = Box<str>> {
    slots: Box<[Slot<T>]>,
    /// The earliest end of a window with suppressed events (`u64::MAX`:
    /// none): events check it to write summaries nobody else would.
    next_due: AtomicU64,
}

impl<T> fmt::Debug for FloodTable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let used = self.slots.iter().filter(|s| s.state.load(Ordering::Relaxed) == READY).count();
        f.debug_struct("FloodTable").field("keys", &used).field("capacity", &self.slots.len()).finish()
    }
}

impl<T> Default for FloodTable<T> {
    fn default() -> Self {
        Self::with_capacity(MAX_FLOOD_KEYS)
    }
}

/// How many times an event waits for a slot another thread is making:
/// spins, then the last 16 yield.
const MADE_WAIT: u32 = 1024 + 16;

impl<T> FloodTable<T> {
    /// A table of `capacity` entries (a power of two at least).
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(PROBES).next_power_of_two();
        Self { slots: (0..capacity).map(|_| Slot::default()).collect(), next_due: AtomicU64::new(u64::MAX) }
    }

    /// Decides for one event of `key` under `limit`; `clock` tells the time
    /// when it is needed (the first event of a key, and past the budget only
    /// for the first [`CLOCK_EVERY`] suppressed events of a window and every
    /// [`CLOCK_EVERY`]th after: a storm reads the clock rarely). `info`
    /// makes the key's summary data on its first event; `opts_out` tells,
    /// once, whether the callsite opted out; `summary` writes the summary of
    /// the key's last window when this event starts a new one (before the
    /// event itself is delivered).
    #[inline]
    pub(crate) fn admit<'t>(
        &'t self,
        key: Key,
        limit: FloodLimit,
        clock: impl Fn() -> u64,
        info: impl FnOnce() -> SiteInfo<T>,
        opts_out: impl FnOnce() -> bool,
        summary: impl FnOnce(&'t SiteInfo<T>, Summary),
    ) -> Admit {
        let Some(slot) = self.find(key, &clock, info) else {
            return Admit::Untracked;
        };
        // Within the budget: one load and one add on the key's own line.
        if slot.passed.load(Ordering::Relaxed) < limit.events
            && slot.passed.fetch_add(1, Ordering::Relaxed) < limit.events
        {
            return Admit::Pass;
        }
        self.past_budget(slot, limit, clock, opts_out, summary)
    }

    fn past_budget<'t>(
        &self,
        slot: &'t Slot<T>,
        limit: FloodLimit,
        clock: impl Fn() -> u64,
        opts_out: impl FnOnce() -> bool,
        summary: impl FnOnce(&'t SiteInfo<T>, Summary),
    ) -> Admit {
        // In a storm, the clock is read every `CLOCK_EVERY` events: the
        // window's end is then seen that many events late at most, and the
        // last suppression time is that recent.
        let n = slot.suppressed.load(Ordering::Relaxed);
        let now = if n < CLOCK_EVERY || n.is_multiple_of(CLOCK_EVERY) { Some(clock()) } else { None };
        let start = slot.start.load(Ordering::Relaxed);
        if let Some(now) = now
            && now.saturating_sub(start) >= limit.window_ns()
        {
            // The window ended: the first thread to see it starts the next
            // one with this event, and writes the last one's summary.
            if slot.start.compare_exchange(start, now, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                slot.passed.store(1, Ordering::Relaxed);
                if let (Some(taken), Some(info)) = (take(slot, limit), slot.info.get()) {
                    summary(info, taken);
                }
                return Admit::Pass;
            }
            // Another thread started it: this event counts in the new one.
            if slot.passed.fetch_add(1, Ordering::Relaxed) < limit.events {
                return Admit::Pass;
            }
        }
        match slot.opt.load(Ordering::Relaxed) {
            OPT_EXEMPT => return Admit::Pass,
            OPT_UNKNOWN => {
                let exempt = opts_out();
                slot.opt.store(if exempt { OPT_EXEMPT } else { OPT_LIMITED }, Ordering::Relaxed);
                if exempt {
                    return Admit::Pass;
                }
            }
            _ => {}
        }
        let first = slot.suppressed.fetch_add(1, Ordering::Relaxed) == 0;
        if let Some(now) = now {
            if first {
                slot.first.store(now, Ordering::Relaxed);
                let end = slot.start.load(Ordering::Relaxed).saturating_add(limit.window_ns());
                self.next_due.fetch_min(end, Ordering::Relaxed);
            }
            slot.last.store(now, Ordering::Relaxed);
        }
        Admit::Suppress
    }

    /// Whether a window with suppressed events has ended by `now`: one load.
    #[inline]
    pub(crate) fn is_due(&self, now: u64) -> bool {
        now >= self.next_due.load(Ordering::Relaxed)
    }

    /// Writes the summary of every key whose window has ended by `now`, or
    /// of every key with suppressed events when `all` (shutdown); returns
    /// how many it wrote.
    pub(crate) fn sweep(&self, now: u64, all: bool, mut summary: impl FnMut(&SiteInfo<T>, Summary)) -> usize {
        let mut written = 0;
        // Taken before the scan: a window that ends meanwhile lowers it again.
        self.next_due.store(u64::MAX, Ordering::Relaxed);
        for slot in self.slots.iter() {
            if slot.state.load(Ordering::Acquire) != READY || slot.suppressed.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let Some(info) = slot.info.get() else { continue };
            let start = slot.start.load(Ordering::Relaxed);
            let end = start.saturating_add(info.limit.window_ns());
            if !all && now < end {
                self.next_due.fetch_min(end, Ordering::Relaxed);
                continue;
            }
            // Ends the window, as the key's next event would have.
            if slot.start.compare_exchange(start, now.max(start), Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                slot.passed.store(0, Ordering::Relaxed);
                if let Some(taken) = take(slot, info.limit) {
                    summary(info, taken);
                    written += 1;
                }
            }
        }
        written
    }

    /// The entry of `key`, made on its first event.
    #[inline]
    fn find(&self, key: Key, clock: &impl Fn() -> u64, info: impl FnOnce() -> SiteInfo<T>) -> Option<&Slot<T>> {
        let mask = self.slots.len() - 1;
        let place = key.place(mask);
        for i in 0..PROBES {
            let slot = &self.slots[(place + i) & mask];
            match slot.state.load(Ordering::Acquire) {
                READY => {
                    if slot.site.load(Ordering::Relaxed) == key.site && slot.node.load(Ordering::Relaxed) == key.node {
                        return Some(slot);
                    }
                }
                EMPTY => return Self::claim(slot, key, clock(), info),
                // Being made, maybe for this key: wait the little it takes.
                _ => return Self::made(slot, key),
            }
        }
        None
    }

    /// The slot another thread is making, once it is ready and if it is for
    /// `key`. Making one is a few stores and one allocation: spin, then
    /// yield, a bounded number of times (never a lock); a maker that still
    /// has not finished lets this event through, counted untracked.
    #[cold]
    fn made(slot: &Slot<T>, key: Key) -> Option<&Slot<T>> {
        for attempt in 0..MADE_WAIT {
            if slot.state.load(Ordering::Acquire) == READY {
                let same =
                    slot.site.load(Ordering::Relaxed) == key.site && slot.node.load(Ordering::Relaxed) == key.node;
                return same.then_some(slot);
            }
            if attempt < MADE_WAIT - 16 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        None
    }

    #[cold]
    fn claim(slot: &Slot<T>, key: Key, now: u64, info: impl FnOnce() -> SiteInfo<T>) -> Option<&Slot<T>> {
        if slot.state.compare_exchange(EMPTY, CLAIMED, Ordering::Acquire, Ordering::Relaxed).is_err() {
            // Another thread claimed it first.
            return Self::made(slot, key);
        }
        slot.site.store(key.site, Ordering::Relaxed);
        slot.node.store(key.node, Ordering::Relaxed);
        slot.start.store(now, Ordering::Relaxed);
        // The only writer: the slot is claimed.
        let _ = slot.info.set(info());
        slot.state.store(READY, Ordering::Release);
        Some(slot)
    }
}

/// Takes the suppressed events of `slot` for a summary.
fn take<T>(slot: &Slot<T>, window: FloodLimit) -> Option<Summary> {
    let count = slot.suppressed.swap(0, Ordering::Relaxed);
    (count > 0).then(|| Summary {
        count,
        first: slot.first.load(Ordering::Relaxed),
        last: slot.last.load(Ordering::Relaxed),
        window,
    })
}

/// Whether `record` carries `internal_log_rate_limit = false`.
pub(crate) fn opts_out<R: LogRecordView + ?Sized>(record: &R) -> bool {
    struct Find(bool);
    impl RecordVisitor for Find {
        fn visit_body(&mut self, _: AnyValue<'_>) {}
        fn visit_attribute(&mut self, _: &str, _: AnyValue<'_>) {}
        fn visit_rate_limit(&mut self, enabled: bool) {
            self.0 = !enabled;
        }
    }
    let mut find = Find(false);
    record.visit(&mut find);
    find.0
}

// === the summary record ===

/// The record that stands for a key's suppressed events.
#[derive(Debug)]
pub(crate) struct SummaryRecord<'a, T = Box<str>> {
    pub(crate) info: &'a SiteInfo<T>,
    pub(crate) summary: Summary,
    pub(crate) time: u64,
}

struct Body(Summary);

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Summary { count, window, .. } = self.0;
        let events = if count == 1 { "event" } else { "events" };
        write!(f, "suppressed {count} {events} in the last ")?;
        match window.window_ms {
            ms if ms % 1000 == 0 => write!(f, "{} s", ms / 1000),
            ms => write!(f, "{ms} ms"),
        }
    }
}

impl<T> LogRecordView for SummaryRecord<'_, T> {
    fn time_unix_nano(&self) -> Option<u64> {
        Some(self.time)
    }
    fn observed_time_unix_nano(&self) -> Option<u64> {
        Some(self.time)
    }
    fn severity(&self) -> Option<Severity> {
        self.info.severity
    }
    fn event_name(&self) -> Option<&str> {
        self.info.event_name.as_deref()
    }
    fn visit(&self, visitor: &mut dyn RecordVisitor) {
        let s = self.summary;
        let int = |v: u64| AnyValue::Int(i64::try_from(v).unwrap_or(i64::MAX));
        visitor.visit_body(AnyValue::Fmt(&Body(s)));
        visitor.visit_attribute(SUPPRESSED_COUNT, int(s.count));
        visitor.visit_attribute(SUPPRESSED_WINDOW_MS, AnyValue::Int(i64::from(s.window.window_ms)));
        visitor.visit_attribute(SUPPRESSED_FIRST_TIME, int(s.first));
        visitor.visit_attribute(SUPPRESSED_LAST_TIME, int(s.last));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    struct Rec;
    impl LogRecordView for Rec {
        fn time_unix_nano(&self) -> Option<u64> {
            None
        }
        fn observed_time_unix_nano(&self) -> Option<u64> {
            None
        }
        fn severity(&self) -> Option<Severity> {
            Some(Severity::WARN)
        }
        fn event_name(&self) -> Option<&str> {
            Some("disk.full")
        }
        fn visit(&self, _: &mut dyn RecordVisitor) {}
    }

    fn info(limit: FloodLimit) -> impl FnOnce() -> SiteInfo {
        move || SiteInfo::new(&Rec, "db".into(), limit)
    }

    /// Admits one event of `key` at `now`; the summaries it wrote go to `out`.
    fn admit(table: &FloodTable, key: Key, limit: FloodLimit, now: u64, out: &mut Vec<Summary>) -> Admit {
        table.admit(key, limit, || now, info(limit), || false, |_, s| out.push(s))
    }

    #[test]
    fn a_key_passes_its_budget_per_window_and_the_rest_is_summarised_once() {
        let table = FloodTable::default();
        let limit = FloodLimit::new(3, Duration::from_secs(10)).expect("a valid limit");
        let key = Key::callsite(0x1000, 0);
        let mut summaries = Vec::new();
        let t0 = 100 * S;
        let decisions: Vec<Admit> = (0..10).map(|i| admit(&table, key, limit, t0 + i, &mut summaries)).collect();
        assert_eq!(decisions.iter().filter(|d| **d == Admit::Pass).count(), 3);
        assert_eq!(decisions.iter().filter(|d| **d == Admit::Suppress).count(), 7);
        assert!(summaries.is_empty());
        assert!(!table.is_due(t0 + 9 * S));
        assert!(table.is_due(t0 + 10 * S));
        // The key's next event after the window: the summary, then it passes.
        assert_eq!(admit(&table, key, limit, t0 + 11 * S, &mut summaries), Admit::Pass);
        assert_eq!(summaries, [Summary { count: 7, first: t0 + 3, last: t0 + 9, window: limit }]);
        // The new window has its budget (the event above was its first).
        assert_eq!(admit(&table, key, limit, t0 + 12 * S, &mut summaries), Admit::Pass);
        assert_eq!(admit(&table, key, limit, t0 + 12 * S, &mut summaries), Admit::Pass);
        assert_eq!(admit(&table, key, limit, t0 + 12 * S, &mut summaries), Admit::Suppress);
        assert_eq!(summaries.len(), 1);
    }

    #[test]
    fn a_sweep_writes_the_summaries_of_ended_windows_only_or_all_at_shutdown() {
        let table = FloodTable::default();
        let short = FloodLimit::new(1, Duration::from_secs(1)).expect("a valid limit");
        let long = FloodLimit::new(1, Duration::from_secs(60)).expect("a valid limit");
        let (a, b) = (Key::callsite(0x1000, 0), Key::callsite(0x2000, 7));
        let mut out = Vec::new();
        for _ in 0..5 {
            admit(&table, a, short, 0, &mut out);
            admit(&table, b, long, 0, &mut out);
        }
        let mut swept = Vec::new();
        assert_eq!(table.sweep(2 * S, false, |_, s| swept.push(s)), 1);
        assert_eq!(swept[0].count, 4);
        assert_eq!(swept[0].window, short);
        // The long window is still due later, and not before.
        assert!(!table.is_due(59 * S));
        assert!(table.is_due(60 * S));
        assert_eq!(table.sweep(3 * S, true, |_, s| swept.push(s)), 1);
        assert_eq!(swept[1].count, 4);
        assert_eq!(table.sweep(u64::MAX, true, |_, s| swept.push(s)), 0);
        assert!(out.is_empty());
    }

    #[test]
    fn keys_differ_by_node_and_a_full_table_lets_events_through_untracked() {
        let table = FloodTable::with_capacity(8);
        let limit = FloodLimit::new(1, Duration::from_secs(60)).expect("a valid limit");
        let mut out = Vec::new();
        // The same callsite in two nodes: two keys, two budgets.
        assert_eq!(admit(&table, Key::callsite(0x1000, 1), limit, 0, &mut out), Admit::Pass);
        assert_eq!(admit(&table, Key::callsite(0x1000, 2), limit, 0, &mut out), Admit::Pass);
        assert_eq!(admit(&table, Key::callsite(0x1000, 1), limit, 0, &mut out), Admit::Suppress);
        for site in 3..9 {
            assert_eq!(admit(&table, Key::callsite(0x1000, site), limit, 0, &mut out), Admit::Pass);
        }
        // Eight entries taken: a ninth key is not tracked, every time.
        for _ in 0..3 {
            assert_eq!(admit(&table, Key::callsite(0x9000, 0), limit, 0, &mut out), Admit::Untracked);
        }
    }

    #[test]
    fn an_opted_out_callsite_is_asked_once_and_never_suppressed() {
        let table = FloodTable::default();
        let limit = FloodLimit::new(1, Duration::from_secs(60)).expect("a valid limit");
        let key = Key::hashed(&[b"mio", b"poll.rs", b"7"], 0);
        let mut asked = 0;
        for _ in 0..100 {
            let admitted = table.admit(
                key,
                limit,
                || 0,
                info(limit),
                || {
                    asked += 1;
                    true
                },
                |_, _| {},
            );
            assert_eq!(admitted, Admit::Pass);
        }
        assert_eq!(asked, 1);
        assert_ne!(key, Key::hashed(&[b"mio", b"poll.rs", b"8"], 0));
        assert_ne!(Key::hashed(&[b"ab", b"c"], 0), Key::hashed(&[b"a", b"bc"], 0));
    }

    #[test]
    fn the_summary_body_names_the_count_and_the_window() {
        let body = |count, ms| {
            let window = FloodLimit::new(1, Duration::from_millis(ms)).expect("a valid limit");
            format!("{:?}", Body(Summary { count, first: 0, last: 0, window }))
        };
        assert_eq!(body(990, 10_000), "suppressed 990 events in the last 10 s");
        assert_eq!(body(1, 250), "suppressed 1 event in the last 250 ms");
    }

    #[test]
    fn limits_out_of_range_are_refused() {
        assert!(FloodLimit::new(1, Duration::from_micros(999)).is_err());
        assert!(FloodLimit::new(1, FloodLimit::MAX_WINDOW + Duration::from_millis(1)).is_err());
        assert_eq!(FloodLimit::new(1, FloodLimit::MAX_WINDOW).expect("a valid limit").window(), FloodLimit::MAX_WINDOW);
        assert_eq!(FloodLimit::default(), FloodLimit::new(10, Duration::from_secs(10)).expect("a valid limit"));
    }
}
