//! The raw logger: where events go when they cannot go where they should.
//!
//! When the channel is full or closed, when a record cannot be encoded, or
//! when an event is raised while its thread is already inside the layer, the
//! event is written synchronously to stderr, prefixed with the reason:
//!
//! ```text
//! selftrace[channel_full] 2026-11-21T07:44:38.123456Z  WARN my_crate: message key=1
//! ```
//!
//! * **Allocation-free**: the line is formatted into a stack buffer.
//! * **Rate-limited**: at most [`DEFAULT_RAW_LINES_PER_SECOND`] lines per
//!   second (see [`set_raw_lines_per_second`]), so a storm cannot flood the
//!   terminal; the first line of the next second reports how many were
//!   suppressed. Counted in [`raw_logger_metrics`].
//! * **Escaped**: the record's text and the note are escaped as the
//!   [`console`] escapes them, into the same stack buffer, so
//!   one line is one event and no control character reaches the terminal.
//! * **Never recursive**: an event raised while this thread is writing a raw
//!   line (a `Debug` implementation that logs) is suppressed and counted.
//!
//! The drop itself is always counted by the layer under its [`DropReason`],
//! whether or not the line was printed.

use std::{
    cell::Cell,
    fmt::{self, Write as _},
    sync::atomic::{AtomicU32, AtomicU64, Ordering},
};

use crate::{
    console,
    escape::{self, Escaped},
    metrics::{DropReason, ShardedCounter},
    record::TracingLogRecord,
    view::LogRecordView,
};

/// Default limit of raw lines written per second.
pub const DEFAULT_RAW_LINES_PER_SECOND: u32 = 50;

static LINES_PER_SECOND: AtomicU32 = AtomicU32::new(DEFAULT_RAW_LINES_PER_SECOND);
static WINDOW_SECOND: AtomicU64 = AtomicU64::new(0);
static WINDOW_LINES: AtomicU32 = AtomicU32::new(0);
/// Lines held back by the rate limit and not reported yet: all a held-back
/// line writes, in this thread's shard.
static PENDING_SUPPRESSED: ShardedCounter = ShardedCounter::new();
static WRITTEN: AtomicU64 = AtomicU64::new(0);
/// Lines held back and already reported (or held back by the recursion
/// guard); the total is this plus the pending ones.
static SUPPRESSED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static IN_RAW: Cell<bool> = const { Cell::new(false) };
}

/// What the raw logger wrote and held back since the process started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RawLoggerMetrics {
    /// Lines written to stderr.
    pub written: u64,
    /// Lines held back by the rate limit or because they were raised while
    /// their thread was already writing a raw line.
    pub suppressed: u64,
}

/// The raw logger's counters.
pub fn raw_logger_metrics() -> RawLoggerMetrics {
    RawLoggerMetrics {
        written: WRITTEN.load(Ordering::Relaxed),
        suppressed: SUPPRESSED.load(Ordering::Relaxed) + PENDING_SUPPRESSED.sum(),
    }
}

/// Sets how many raw lines may be written per second, process-wide (0
/// silences the raw logger, at no cost per line, not even a clock read;
/// drops are still counted, and the lines held back are reported in one
/// line once lines are allowed again).
///
/// # Examples
///
/// ```
/// use selftrace::raw::{DEFAULT_RAW_LINES_PER_SECOND, raw_logger_metrics, set_raw_lines_per_second};
///
/// set_raw_lines_per_second(DEFAULT_RAW_LINES_PER_SECOND * 2); // a noisy start-up
/// let metrics = raw_logger_metrics();
/// eprintln!("raw lines: {} written, {} held back", metrics.written, metrics.suppressed);
/// set_raw_lines_per_second(DEFAULT_RAW_LINES_PER_SECOND);
/// ```
pub fn set_raw_lines_per_second(lines: u32) {
    LINES_PER_SECOND.store(lines, Ordering::Relaxed);
}

/// Writes `record` to stderr as a raw line for `reason`, if the rate limit
/// and the recursion guard allow.
pub(crate) fn raw_log(reason: DropReason, scope: &str, record: &(impl LogRecordView + ?Sized)) {
    raw_line(reason.as_str(), |line| console::write_console_line(line, scope, record));
}

/// As [`raw_log`], for a record made only if the line is written: an event
/// dropped before it was stamped or encoded stays unstamped when the rate
/// limit holds its line back.
pub(crate) fn raw_log_lazy<'r, 'a: 'r>(reason: DropReason, make: impl FnOnce() -> &'r TracingLogRecord<'a>) {
    raw_line(reason.as_str(), |line| {
        let record = make();
        console::write_console_line(line, record.target(), record)
    });
}

/// Writes a node's record to stderr through the raw logger (a node whose
/// logger is `Raw`).
pub(crate) fn raw_record(scope: &str, record: &(impl LogRecordView + ?Sized)) {
    raw_line("raw", |line| console::write_console_line(line, scope, record));
}

/// Writes a note (not a record) for `reason`: a request of several records
/// that could not be handed off.
pub(crate) fn raw_note(reason: DropReason, note: fmt::Arguments<'_>) {
    raw_line(reason.as_str(), |line| Escaped::bare(line).write_fmt(note));
}

/// Writes `selftrace[<label>] <note>` to stderr through the raw logger: rate
/// limited with everything else it writes, and never recursive.
///
/// For code that carries selftrace's bytes onward (a bridge, a receiver) and
/// must report a problem, a malformed request say, without logging through
/// `tracing` (which could feed the report back into the pipeline). The
/// label and the note are escaped as a console line's text is (see
/// [`console`]): a reason an endpoint sent, a path, an error
/// message stay on one line and cannot drive the terminal.
///
/// # Examples
///
/// ```
/// selftrace::raw::write_raw_note("bridge", format_args!("request of {} bytes skipped", 42));
/// ```
#[doc(hidden)]
pub fn write_raw_note(label: &str, note: fmt::Arguments<'_>) {
    raw_line(label, |line| Escaped::bare(line).write_fmt(note));
}

/// Writes `selftrace[<label>] ` and then `body`'s text as one line.
fn raw_line(label: &str, body: impl FnOnce(&mut dyn fmt::Write) -> fmt::Result) {
    let Some(_guard) = RawGuard::enter() else {
        SUPPRESSED.fetch_add(1, Ordering::Relaxed);
        return;
    };
    if !admit() {
        PENDING_SUPPRESSED.add(1);
        return;
    }
    console::print_line(|line| {
        line.write_str("selftrace[")?;
        escape::write_bare(line, label)?;
        line.write_str("] ")?;
        body(line)
    });
    WRITTEN.fetch_add(1, Ordering::Relaxed);
}

/// Takes a slot in this second's budget; reports the previous second's
/// suppressed lines when a new second starts.
fn admit() -> bool {
    let limit = LINES_PER_SECOND.load(Ordering::Relaxed);
    // Silenced: nothing to print, nothing to report, no clock to read.
    if limit == 0 {
        return false;
    }
    let now = crate::clock::now_unix_nanos() / 1_000_000_000;
    let window = WINDOW_SECOND.load(Ordering::Relaxed);
    if now != window && WINDOW_SECOND.compare_exchange(window, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
        WINDOW_LINES.store(0, Ordering::Relaxed);
        let suppressed = PENDING_SUPPRESSED.take();
        SUPPRESSED.fetch_add(suppressed, Ordering::Relaxed);
        if suppressed > 0 {
            console::print_line(|line| {
                write!(line, "selftrace[raw] {suppressed} raw log lines suppressed by the rate limit")
            });
        }
    }
    // Past the budget a line is refused on a read: the shared line is not
    // written again until the next second.
    WINDOW_LINES.load(Ordering::Relaxed) < limit && WINDOW_LINES.fetch_add(1, Ordering::Relaxed) < limit
}

struct RawGuard;

impl RawGuard {
    fn enter() -> Option<Self> {
        // Build the guard only when this call set the flag: a guard dropped
        // on the other path would clear a flag it does not own.
        let entered = IN_RAW.try_with(|flag| !flag.replace(true)).unwrap_or(false);
        if entered { Some(RawGuard) } else { None }
    }
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        let _ = IN_RAW.try_with(|flag| flag.set(false));
    }
}
