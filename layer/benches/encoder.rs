//! The encoder alone: one record like the third-party bench's event, encoded
//! and flushed; and a batch of 100 records flushed at once.
//!
//! Latest results (criterion medians of one run; 2 cores, rustc 1.95.0,
//! `cargo bench -p selftrace --bench encoder`):
//!
//! | bench                                 | median   |
//! |---------------------------------------|----------|
//! | encoder/one_record_buffered           |  91.6 ns |
//! | encoder/one_record_and_flush          | 119.3 ns |
//! | encoder/flush_100_buffered_records    | 163.7 ns |
//!
//! (The encoder split into modules and on `selftrace::wire`, back to back
//! with the commit before: 89.0 / 121.2 / 165.4 ns, within noise. The split
//! first cost up to 25 %: the writer's methods in another module were no
//! longer inlined; they are `#[inline]` now.)
//!
//! Target: flush of 100 buffered records ≤ 2 µs (met).

use std::{hint::black_box, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use selftrace::{
    encoder::StatefulOtlpEncoder,
    view::{AnyValue, LogRecordView, RecordVisitor, Severity},
};

struct Event;

impl LogRecordView for Event {
    fn time_unix_nano(&self) -> Option<u64> {
        Some(1_763_711_078_123_456_789)
    }
    fn observed_time_unix_nano(&self) -> Option<u64> {
        Some(1_763_711_078_123_456_789)
    }
    fn severity(&self) -> Option<Severity> {
        Some(Severity::INFO)
    }
    fn event_name(&self) -> Option<&str> {
        Some("component.event")
    }
    fn visit(&self, v: &mut dyn RecordVisitor) {
        v.visit_attribute("key1", AnyValue::Int(42));
        v.visit_attribute("key2", AnyValue::Str("value"));
        v.visit_attribute("key3", AnyValue::Double(3.5));
        v.visit_attribute("key4", AnyValue::Bool(true));
        v.visit_body(AnyValue::Fmt(&format_args!("message text")));
    }
}

fn encoder(c: &mut Criterion) {
    let mut encoder = StatefulOtlpEncoder::new();
    c.bench_function("encoder/one_record_and_flush", |b| {
        b.iter(|| {
            let _ = encoder.encode_log_record("bench", &Event);
            black_box(encoder.flush())
        })
    });
    c.bench_function("encoder/one_record_buffered", |b| {
        b.iter(|| {
            if encoder.encode_log_record("bench", &Event).is_err() {
                encoder.clear();
            }
        })
    });
    encoder.clear();
    c.bench_function("encoder/flush_100_buffered_records", |b| {
        // Fill untimed, time the flush alone; the encoder (and its hand-off
        // block) is reused, as a node's is.
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                for _ in 0..100 {
                    let _ = encoder.encode_log_record("bench", &Event);
                }
                let start = std::time::Instant::now();
                let bytes = encoder.flush();
                total += start.elapsed();
                drop(black_box(bytes));
            }
            total
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = encoder
}
criterion_main!(benches);
