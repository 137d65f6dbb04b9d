//! What the benches share: the event they log, the requests selftrace makes
//! of it, the SDK anchor's no-op processor, and timing in runs.

use std::time::{Duration, Instant};

use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::{
    error::OTelSdkResult,
    logs::{LogProcessor, SdkLogRecord},
};
use selftrace::{Destination, FlushReason, Node, NodeLogs, OtlpBytes, OtlpBytesChannel, OtlpTracingLayer};
use tracing_subscriber::layer::SubscriberExt;

/// The criterion settings the side-by-side benches share: 1 s warm-up, 4 s
/// of measurement, 60 samples.
pub fn criterion_config() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(60)
}

/// The bench event: a name, a target, four attributes and a message.
pub fn third_party_event() {
    tracing::info!(
        name: "component.event",
        target: "bench",
        key1 = 42_i64,
        key2 = "value",
        key3 = 3.5_f64,
        key4 = true,
        "message text"
    );
}

/// What `scripts/instructions` counts (callgrind's `--toggle-collect`
/// names this function): `events` calls of `log`.
#[inline(never)]
pub fn produce(events: u64, log: &mut dyn FnMut()) {
    for _ in 0..events {
        log();
    }
}

/// The arguments of an instructions driver: `<scenario> <events>` (1000
/// events when not given); cargo's `--bench` is left out.
pub fn scenario_args() -> (String, u64) {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let scenario = args.next().unwrap_or_default();
    let events = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    (scenario, events)
}

/// The bench span: a child span of 4 attributes, made and closed (inside
/// whatever span the caller entered).
pub fn child_span() {
    tracing::info_span!(target: "bench", "decode", key1 = 42_i64, key2 = "value", key3 = 3.5_f64, key4 = true)
        .in_scope(|| {});
}

/// A layer to `destination` without flood control: the benches repeat one
/// callsite, and measure delivery, not suppression.
pub fn unlimited_layer(destination: Destination) -> OtlpTracingLayer {
    OtlpTracingLayer::builder(destination).with_flood_limit(None).build()
}

/// Node logs to `destination` without flood control (as
/// [`unlimited_layer`]).
pub fn unlimited_node_logs(destination: Destination) -> NodeLogs {
    NodeLogs::builder(destination).with_flood_limit(None).build()
}

/// The request selftrace's layer makes of the bench event.
pub fn one_event_request() -> OtlpBytes {
    let channel = OtlpBytesChannel::new(1);
    let layer = unlimited_layer(Destination::Channel(channel.sender()));
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), third_party_event);
    channel.receiver().try_recv().expect("one request")
}

/// A request of 100 bench events, batched by a `NodeLogs` (the events are
/// raised inside a node's scope).
pub fn hundred_record_request() -> OtlpBytes {
    let channel = OtlpBytesChannel::new(1);
    let node_logs = unlimited_node_logs(Destination::Channel(channel.sender()));
    let node = node_logs.shared(Node::new("bench"));
    let layer = unlimited_layer(Destination::Noop);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let _in_node = node.enter();
        for _ in 0..100 {
            third_party_event();
        }
    });
    node_logs.flush(FlushReason::Explicit);
    channel.receiver().try_recv().expect("one request of 100 records")
}

/// An SDK processor that drops every record.
#[derive(Debug)]
pub struct NoopProcessor;

impl LogProcessor for NoopProcessor {
    fn emit(&self, _data: &mut SdkLogRecord, _scope: &InstrumentationScope) {}
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
}

/// Times `iters` calls of `log` in runs of at most `run`, calling `between`
/// (untimed) after each run: the producer's cost, with the consumer's work
/// (draining, flushing) left out.
pub fn timed_in_runs(iters: u64, run: u64, mut log: impl FnMut(), mut between: impl FnMut()) -> Duration {
    let mut timed = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let this_run = left.min(run);
        let start = Instant::now();
        for _ in 0..this_run {
            log();
        }
        timed += start.elapsed();
        between();
        left -= this_run;
    }
    timed
}

/// The wall time of `threads` threads running `work` at once. Each thread
/// gets its index and `mark`, to call right before and right after its
/// timed part (its setup, a warm-up say, stays outside): the time runs from
/// the moment every thread is ready to the moment the last one is done.
pub fn timed_on_threads(threads: usize, work: impl Fn(usize, &dyn Fn()) + Sync) -> Duration {
    let barrier = std::sync::Barrier::new(threads + 1);
    let mark = || {
        barrier.wait();
    };
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let (work, mark) = (&work, &mark);
            scope.spawn(move || work(thread, mark));
        }
        mark();
        let start = Instant::now();
        mark();
        start.elapsed()
    })
}
