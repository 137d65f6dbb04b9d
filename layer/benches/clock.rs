//! The wall clock every record is stamped with, and its candidates, side by
//! side in one run (issue "the event path at the floor", item 3): what one
//! read costs, and what it gives.
//!
//! Latest results (criterion medians of one run; this machine: 2 cores,
//! rustc 1.95.0, `cargo bench -p selftrace --bench clock`):
//!
//! | bench                         | median  | vs system_time_now | resolution | wall time? |
//! |-------------------------------|---------|--------------------|------------|------------|
//! | clock/system_time_now         | 45.5 ns | 1.00×              | 1 ns       | yes        |
//! | clock/realtime_coarse         |  7.7 ns | 0.17×              | 4 ms       | yes        |
//! | clock/quanta_now              | 15.7 ns | 0.34×              | TSC        | no: monotonic |
//! | clock/selftrace_anchored      | 17.3 ns | 0.38×              | TSC        | yes: anchored |
//!
//! (The previous run, before the choice: 34.1, 3.1 and 10.3 ns; the host
//! was quieter. Only same-run ratios count.)
//!
//! Chosen: `selftrace_anchored`, what records are stamped with (see
//! `layer/src/clock.rs`): the TSC through quanta, added to a per-thread
//! `SystemTime` anchor re-taken every 100 ms. The coarse clock would stamp
//! every event of a 4 ms tick alike, losing their order; the TSC alone has
//! no wall time, and its calibration is off by about 8 ppm here (measured
//! over 5 s against `SystemTime`), which the 100 ms anchor bounds to under
//! 1 µs.
//!
//! `system_time_now` is `SystemTime::now` (the vDSO's
//! `clock_gettime(CLOCK_REALTIME)`) and the conversion to nanoseconds since
//! the epoch. `realtime_coarse` is `clock_gettime(CLOCK_REALTIME_COARSE)`:
//! the time of the last tick (4 ms here, `clock_getres`). `quanta_now` reads
//! the TSC scaled to nanoseconds.

#![allow(unsafe_code, reason = "the coarse clock is read through libc")]

use std::{
    hint::black_box,
    time::{SystemTime, UNIX_EPOCH},
};

use criterion::{Criterion, criterion_group, criterion_main};

fn system_time_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

fn realtime_coarse() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64)
}

fn clock(c: &mut Criterion) {
    c.bench_function("clock/system_time_now", |b| b.iter(|| black_box(system_time_now())));
    c.bench_function("clock/realtime_coarse", |b| b.iter(|| black_box(realtime_coarse())));
    let quanta = quanta::Clock::new();
    c.bench_function("clock/quanta_now", |b| b.iter(|| black_box(quanta.now())));
    selftrace::__private::now_unix_nanos();
    c.bench_function("clock/selftrace_anchored", |b| b.iter(|| black_box(selftrace::__private::now_unix_nanos())));
}

criterion_group! {
    name = benches;
    config = selftrace_test_support::bench::criterion_config();
    targets = clock
}
criterion_main!(benches);
