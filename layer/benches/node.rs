//! Node logs: `otel_info!` and third-party events inside a node scope,
//! buffered (no flush), side by side with the anchors in one run.
//!
//! Event: name `component.event`, four attributes (`i64`, `&str`, `f64`,
//! `bool`) and a message, as in the `third_party` bench.
//!
//! Latest (2026-12-07 at 2a518f8, issue 32's fourth round: a full request
//! a lagging consumer's block cannot take is handed over in its own
//! buffer; one run of a subset, `-- "node/(otel_info_shared|appender_noop_processor)$"`):
//! `otel_info_shared` 50.4 ns against `appender_noop_processor` 120.6 ns,
//! **0.42×** (target ≤ 0.6×: met); instructions 937 per record, 0.51×.
//! Third round (e737eb0, each `otel_*!` callsite writes its own fields):
//! 52.2 ns against 120.0 ns, 0.44×; 1065 instructions, 0.58×.
//!
//! An earlier stop (flood control and runtime levels; flood control is off in
//! these benches), two runs of a subset: `otel_info_shared` 181.4 ns and
//! 170.5 ns against the appender's 249.1 ns and 211.7 ns (0.73×, 0.81×),
//! `otel_info_local` 0.61× and 0.74×; instructions 1629 per record (+27:
//! the levels read from atomics, the flood key). The host moves ±0.15
//! between runs; the target (≤ 0.6×) was met in the run below and is not in
//! these two.
//!
//! The previous stop's results (criterion medians of one run; this machine: 2 cores, rustc
//! 1.95.0, `cargo bench -p selftrace --bench node`):
//!
//! | bench                              | median   | vs appender + no-op |
//! |------------------------------------|----------|---------------------|
//! | node/otel_info_shared              | 146.2 ns |               0.58× |
//! | node/otel_info_local               | 127.4 ns |               0.50× |
//! | node/third_party_in_scope          | 172.4 ns |               0.68× |
//! | node/appender_noop_processor       | 253.0 ns |               1.00× |
//! | node/flush_100_buffered_records    | 406.9 ns |                     |
//!
//! (An earlier run of this stop, before the key-value fast path: 0.59×; the
//! previous stop's last run: 0.82×.) Instructions (`bash
//! scripts/instructions`, deterministic): node logs 1602 per record against
//! the appender's 1824, 0.88× (the previous stop 2256, 1.24×): the `otel_*!`
//! macros hand integers, floats, booleans, strings, `%x`, `?x` and a message
//! without arguments to the encoder as they are, without `tracing`'s visitor
//! and without formatting.
//!
//! Scaling (`cargo bench -p selftrace --bench node -- scaling`, same run):
//! one thread 209.4 ns per record, two threads 225.6 ns per pair of records,
//! so two threads log 1.86× the records of one.
//!
//! Targets: node logs ≤ 0.6× appender + no-op: met in time (0.58×), not in
//! instructions (0.88×: the appender allocates twice per event, which costs
//! more in time than in instructions); flush of 100 records ≤ 2 µs: met; two
//! threads ≥ 1.8× one: met (1.86×). Where the 1602 instructions go
//! (callgrind): encoding about 1120 (each attribute about 130, of which the
//! key-value about 100; the message, a string, about 145; the head, the
//! framing and the rollback mark the rest); finding and locking this
//! thread's buffer about 230; the re-entrancy guard, the levels, the clock
//! and the macro about 250; the copy of a full buffer into the hand-off
//! block about 120 per record (a `rep movsb`, which callgrind counts a byte
//! at a time). Zero allocations per record
//! (tests/no_allocation_per_event_once_warm.rs).

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use selftrace_test_support::bench as support;

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use selftrace::{
    Destination, FlushReason, Node, NodeLogs, OtlpBytesChannel, OtlpBytesReceiver, node::NodeTelemetry, otel_info,
    raw::set_raw_lines_per_second,
};
use support::{NoopProcessor, third_party_event, timed_in_runs};
use tracing_subscriber::layer::SubscriberExt;

fn node_event(effect: &impl NodeTelemetry) {
    otel_info!(effect, "component.event", key1 = 42_i64, key2 = "value", key3 = 3.5_f64, key4 = true, "message text");
}

/// Records per timed run: they fit one 64 KiB buffer, so no run flushes.
const RUN: u64 = 200;

/// Times `log` in runs of `RUN` records; flushes and drains between runs,
/// untimed.
fn buffered(iters: u64, node_logs: &NodeLogs, receiver: &OtlpBytesReceiver, log: impl FnMut()) -> Duration {
    timed_in_runs(iters, RUN, log, || {
        node_logs.flush(FlushReason::Explicit);
        black_box(receiver.drain().count());
    })
}

fn node(c: &mut Criterion) {
    let channel = OtlpBytesChannel::new(1000);
    let receiver = channel.receiver();
    let node_logs = support::unlimited_node_logs(Destination::Channel(channel.sender()));
    let shared = node_logs.shared(Node::new("receiver.otlp.0"));
    let local = node_logs.local(Node::new("receiver.otlp.1"));

    c.bench_function("node/otel_info_shared", |b| {
        b.iter_custom(|iters| buffered(iters, &node_logs, &receiver, || node_event(&shared)))
    });
    c.bench_function("node/otel_info_local", |b| {
        b.iter_custom(|iters| buffered(iters, &node_logs, &receiver, || node_event(&local)))
    });

    let subscriber = tracing_subscriber::registry().with(support::unlimited_layer(Destination::Noop));
    tracing::subscriber::with_default(subscriber, || {
        let _in_node = shared.enter();
        c.bench_function("node/third_party_in_scope", |b| {
            b.iter_custom(|iters| buffered(iters, &node_logs, &receiver, third_party_event))
        });
    });

    c.bench_function("node/flush_100_buffered_records", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                for _ in 0..100 {
                    node_event(&shared);
                }
                let start = Instant::now();
                black_box(node_logs.flush(FlushReason::Timer));
                timed += start.elapsed();
                black_box(receiver.drain().count());
            }
            timed
        })
    });

    let provider = SdkLoggerProvider::builder().with_log_processor(NoopProcessor).build();
    let subscriber = tracing_subscriber::registry().with(OpenTelemetryTracingBridge::new(&provider));
    tracing::subscriber::with_default(subscriber, || {
        c.bench_function("node/appender_noop_processor", |b| b.iter(third_party_event));
    });
}

/// `threads` threads each log `iters` records into shared-flavour nodes of
/// one `NodeLogs`; returns the wall time. The channel holds one request and is
/// never drained: overflow flushes are counted drops, as with a stalled
/// consumer, so no consumer competes for the two cores.
fn scaling_run(threads: usize, iters: u64) -> Duration {
    let channel = OtlpBytesChannel::new(1);
    let node_logs = support::unlimited_node_logs(Destination::Channel(channel.sender()));
    let nodes: Vec<_> = (0..threads).map(|t| node_logs.shared(Node::new(format!("node.{t}")))).collect();
    support::timed_on_threads(threads, |thread, mark| {
        let node = &nodes[thread];
        node_event(node); // make this thread's buffer before timing
        mark();
        for _ in 0..iters {
            node_event(node);
        }
        mark();
    })
}

fn scaling(c: &mut Criterion) {
    set_raw_lines_per_second(0);
    c.bench_function("node/scaling_one_thread", |b| b.iter_custom(|iters| scaling_run(1, iters)));
    c.bench_function("node/scaling_two_threads", |b| b.iter_custom(|iters| scaling_run(2, iters)));
}

criterion_group! {
    name = benches;
    config = support::criterion_config();
    targets = node, scaling
}
criterion_main!(benches);
