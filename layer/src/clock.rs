//! The wall clock every record is stamped with.
//!
//! Reading `SystemTime::now` (the vDSO's `clock_gettime(CLOCK_REALTIME)`,
//! then the conversion to nanoseconds) costs about 34 ns on the reference
//! machine, a sixth of an event. Records are stamped instead from the CPU's
//! time-stamp counter, through `quanta` (calibrated once against the
//! monotonic clock, about 1 ms at the first use; on a CPU without a reliable
//! TSC quanta reads the OS clock instead), anchored to the wall clock:
//!
//! * each thread keeps an anchor, a `SystemTime` reading and the counter
//!   read with it, and stamps `anchor + counter time since the anchor`;
//! * the anchor is re-taken when it is older than [`ANCHOR_AGE_NS`]
//!   (100 ms), so a wall-clock step (NTP, an operator) shows within 100 ms
//!   and the counter's calibration error (about 8 ppm measured here:
//!   0.8 µs per 100 ms) never accumulates past one anchor;
//! * within a thread, stamps never go back by less than
//!   [`MAX_SMOOTHED_STEP_NS`] (1 ms): the small step back an anchor can
//!   bring (the calibration error) is absorbed by repeating the last stamp;
//!   a larger step back is a real wall-clock change and is followed.
//!
//! Precision: nanoseconds (the counter's resolution); accuracy: the wall
//! clock's, plus at most about 1 µs. `layer/benches/clock.rs` measures the
//! options side by side.

use std::{
    cell::Cell,
    sync::OnceLock,
    time::{SystemTime, UNIX_EPOCH},
};

/// How old a thread's anchor may get before it is re-taken, in nanoseconds.
pub(crate) const ANCHOR_AGE_NS: u64 = 100_000_000;

/// Steps back smaller than this (nanoseconds) are smoothed within a thread.
pub(crate) const MAX_SMOOTHED_STEP_NS: u64 = 1_000_000;

static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();

/// This thread's anchor: `(wall ns, raw counter, last stamp)`; `raw == 0`
/// when not taken yet.
#[derive(Clone, Copy)]
struct Anchor {
    wall: u64,
    raw: u64,
    last: u64,
}

thread_local! {
    static ANCHOR: Cell<Anchor> = const { Cell::new(Anchor { wall: 0, raw: 0, last: 0 }) };
}

#[inline]
fn clock() -> &'static quanta::Clock {
    CLOCK.get_or_init(quanta::Clock::new)
}

/// Calibrates the counter now (about 1 ms), so the first event does not pay
/// for it. Called when a layer or node logs are built.
pub(crate) fn warm() {
    let _ = clock();
}

/// Nanoseconds since the Unix epoch from the operating system (0 if the
/// clock is before it).
#[inline]
pub(crate) fn system_unix_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)).unwrap_or(0)
}

/// Nanoseconds since the Unix epoch: the thread's anchor plus the counter
/// time since it (see the module docs).
#[inline]
pub(crate) fn now_unix_nanos() -> u64 {
    let clock = clock();
    let raw = clock.raw();
    ANCHOR
        .try_with(|cell| {
            let mut anchor = cell.get();
            // `delta_as_nanos` is 0 for a counter that went back (another
            // core's, before the OS synchronised it): re-anchor then too.
            let elapsed = clock.delta_as_nanos(anchor.raw, raw);
            let mut now = if anchor.raw == 0 || elapsed == 0 || elapsed > ANCHOR_AGE_NS {
                anchor.wall = system_unix_nanos();
                anchor.raw = raw;
                anchor.wall
            } else {
                anchor.wall.saturating_add(elapsed)
            };
            if now < anchor.last && anchor.last - now < MAX_SMOOTHED_STEP_NS {
                now = anchor.last;
            }
            anchor.last = now;
            cell.set(anchor);
            now
        })
        // Thread teardown, when thread-locals are gone.
        .unwrap_or_else(|_| system_unix_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_follow_the_wall_clock_and_never_step_back_in_a_thread() {
        warm();
        let mut last = 0;
        let start = system_unix_nanos();
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(300);
        let mut samples = 0_u64;
        while std::time::Instant::now() < deadline {
            let before = system_unix_nanos();
            let now = now_unix_nanos();
            let after = system_unix_nanos();
            assert!(now >= last, "stepped back: {now} < {last}");
            // Within the anchor's error (a few µs over 100 ms) of the OS
            // clock read around it; 1 ms leaves room for a preempted thread.
            assert!(
                now + MAX_SMOOTHED_STEP_NS >= before && now <= after + MAX_SMOOTHED_STEP_NS,
                "{before} {now} {after}"
            );
            last = now;
            samples += 1;
        }
        assert!(samples > 1000 && last > start);
    }
}
