//! The wall clock every record is stamped with, and its candidates, side by
//! side in one run (issue "the event path at the floor", item 3): what one
//! read costs, and what it gives.
//!
//! Latest results (criterion medians of one run; this machine: 2 cores,
//! rustc 1.95.0, `cargo bench -p selftrace --bench clock`):
//!
//! | bench                         | median  | resolution | wall time? |
//! |-------------------------------|---------|------------|------------|
//! | clock/system_time_now         | 34.1 ns | 1 ns       | yes        |
//! | clock/realtime_coarse         |  3.1 ns | 4 ms       | yes        |
//! | clock/quanta_now              | 10.3 ns | TSC        | no: monotonic, needs a wall anchor |
//!
//! Not decided yet: the coarse clock would stamp every event of a 4 ms tick
//! alike; the TSC saves about 24 ns of the ~227 ns an event costs but needs
//! the anchor.
//!
//! `system_time_now` is what selftrace uses (`SystemTime::now`, the vDSO's
//! `clock_gettime(CLOCK_REALTIME)`, and the conversion to nanoseconds since
//! the epoch). `realtime_coarse` is `clock_gettime(CLOCK_REALTIME_COARSE)`:
//! the time of the last tick, so every event of one tick (4 ms here,
//! `clock_getres`) gets the same stamp. `quanta_now` reads the TSC scaled to
//! nanoseconds: fast and fine-grained, but monotonic; a wall clock from it
//! needs an anchor (`SystemTime` at a known TSC reading) re-taken often
//! enough to follow NTP's slewing.

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
}

criterion_group! {
    name = benches;
    config = selftrace_test_support::bench::criterion_config();
    targets = clock
}
criterion_main!(benches);
