//! The Internal Telemetry Receiver: end-to-end throughput from `otel_info!`
//! in two nodes to the receiver's output, and the receiver's cost per flush,
//! side by side with the appender anchor in one run.
//!
//! Event: name `component.event`, four attributes (`i64`, `&str`, `f64`,
//! `bool`) and a message, as in the other benches.
//!
//! Latest results (criterion medians of one run; this machine: 2 cores, rustc
//! 1.95.0, `cargo bench -p selftrace-itr --bench itr`):
//!
//! | bench                                   | median    | per record | vs appender + no-op, 2 threads |
//! |-----------------------------------------|-----------|------------|--------------------------------|
//! | itr/end_to_end_2_nodes                  | 124.6 ns  | 8.02 M/s   |                          1.56× |
//! | itr/appender_noop_2_threads             |  79.8 ns  | 12.53 M/s  |                          1.00× |
//! | itr/flush_100_node_records              | 2.597 µs  | 26.0 ns    |                                |
//! | itr/merge_100_third_party_requests      | 10.02 µs  | 100.2 ns   |                                |
//!
//! (Previous run, back to back, before the merger read with
//! `selftrace::wire`: end_to_end 142.6 ns, the anchor 76.4 ns, flush 2.733
//! µs, merge 10.61 µs: within noise. The first cut of the shared reader cost
//! the merge 29 % until its field reader was inlined.)
//!
//! `end_to_end_2_nodes`: wall time per record from `otel_info!` on two threads
//! until the receiver's output holds every record (encoded, flushed by the
//! 1 ms timer or by overflow, routed, merged, sent); the appender anchor only
//! hands its records to a no-op processor. `flush_100_node_records`: one host
//! tick from the control message to the batch at the output, 100 records
//! buffered by one node (target for a flush of 100: < 10 µs, met).
//! `merge_100_third_party_requests`: 100 one-record requests (the
//! third-party path) taken, checked and merged into one batch on a tick.
//! No target is set for the receiver.

use std::{
    thread,
    time::{Duration, Instant},
};

#[allow(dead_code, unreachable_pub)]
use selftrace_test_support::bench as support;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use selftrace::{Node, OtlpBytes, OtlpTracingLayer, SharedTelemetry, otel_info};
use selftrace_itr::{
    InternalTelemetry, ReceiverConfig, ReceiverHost,
    receiver::{Control, OutputClosed},
};
use tracing_subscriber::layer::SubscriberExt;

/// A host whose output takes every batch at once.
struct Host {
    control: tokio::sync::mpsc::UnboundedReceiver<Control>,
    output: tokio::sync::mpsc::UnboundedSender<OtlpBytes>,
}

impl ReceiverHost for Host {
    type Sleep = tokio::time::Sleep;

    async fn send(&mut self, batch: OtlpBytes) -> Result<(), OutputClosed> {
        self.output.send(batch).map_err(|_| OutputClosed)
    }
    async fn recv_control(&mut self) -> Control {
        self.control.recv().await.unwrap_or(Control::shutdown_within(Duration::from_secs(1)))
    }
    fn sleep(&self, duration: Duration) -> tokio::time::Sleep {
        tokio::time::sleep(duration)
    }
}

fn log(node: &SharedTelemetry) {
    otel_info!(node, "component.event", key1 = 42_i64, key2 = "value", key3 = 3.5_f64, key4 = true, "message text");
}

fn end_to_end(c: &mut Criterion) {
    let mut group = c.benchmark_group("itr");
    group.throughput(Throughput::Elements(1));

    // Two nodes on two threads log; the receiver runs on its own thread,
    // flushing every millisecond; timed until its output has every record.
    group.bench_function("end_to_end_2_nodes", |b| {
        let telemetry = InternalTelemetry::default();
        let config = ReceiverConfig { flush_interval: Duration::from_millis(1), ..ReceiverConfig::default() };
        let receiver = telemetry.receiver("itr", config).expect("valid config");
        let (control, control_rx) = tokio::sync::mpsc::unbounded_channel();
        let (output, mut output_rx) = tokio::sync::mpsc::unbounded_channel();
        let itr = thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let drain = tokio::spawn(async move { while output_rx.recv().await.is_some() {} });
                receiver.run(Host { control: control_rx, output }).await;
                drain.await.ok();
            });
        });
        let nodes: Vec<_> = (0..2).map(|n| telemetry.node_logs().shared(Node::new(format!("node.{n}")))).collect();
        b.iter_custom(|iters| {
            let target = telemetry.metrics().receivers[0].records_sent + iters / 2 * 2;
            let start = Instant::now();
            thread::scope(|scope| {
                for node in &nodes {
                    scope.spawn(move || {
                        for _ in 0..iters / 2 {
                            log(node);
                        }
                    });
                }
            });
            while telemetry.metrics().receivers[0].records_sent < target {
                thread::yield_now();
            }
            start.elapsed()
        });
        control.send(Control::shutdown_within(Duration::from_secs(1))).ok();
        itr.join().ok();
    });

    group.bench_function("appender_noop_2_threads", |b| {
        let provider = SdkLoggerProvider::builder().with_log_processor(support::NoopProcessor).build();
        let dispatch =
            tracing::Dispatch::new(tracing_subscriber::registry().with(OpenTelemetryTracingBridge::new(&provider)));
        b.iter_custom(|iters| {
            let start = Instant::now();
            thread::scope(|scope| {
                for _ in 0..2 {
                    let dispatch = dispatch.clone();
                    scope.spawn(move || {
                        tracing::dispatcher::with_default(&dispatch, || {
                            for _ in 0..iters / 2 {
                                support::third_party_event();
                            }
                        })
                    });
                }
            });
            start.elapsed()
        });
    });
    group.finish();
}

/// The receiver on this thread's runtime, ticked by hand: times one tick
/// from the control message to the batch at the output.
fn per_flush(c: &mut Criterion) {
    let mut group = c.benchmark_group("itr");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let telemetry = InternalTelemetry::default();
    // The receiver's own timer never fires here.
    let config = ReceiverConfig { flush_interval: Duration::from_secs(3600), ..ReceiverConfig::default() };
    let receiver = telemetry.receiver("itr", config).expect("valid config");
    let (control, control_rx) = tokio::sync::mpsc::unbounded_channel();
    let (output, mut output_rx) = tokio::sync::mpsc::unbounded_channel();
    let running = runtime.spawn(receiver.run(Host { control: control_rx, output }));
    let mut tick = |setup: &dyn Fn()| {
        setup();
        let start = Instant::now();
        control.send(Control::TimerTick).ok();
        let batch = runtime.block_on(output_rx.recv());
        let elapsed = start.elapsed();
        drop(batch);
        elapsed
    };

    let node = telemetry.node_logs().shared(Node::new("node.0"));
    group.bench_function("flush_100_node_records", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    tick(&|| {
                        for _ in 0..100 {
                            log(&node);
                        }
                    })
                })
                .sum()
        });
    });

    let layer = OtlpTracingLayer::new(telemetry.destination());
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    group.bench_function("merge_100_third_party_requests", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    tick(&|| {
                        tracing::dispatcher::with_default(&dispatch, || {
                            for _ in 0..100 {
                                support::third_party_event();
                            }
                        })
                    })
                })
                .sum()
        });
    });
    group.finish();
    control.send(Control::shutdown_within(Duration::from_secs(1))).ok();
    runtime.block_on(running).ok();
}

criterion_group! {
    name = benches;
    config = support::criterion_config();
    targets = end_to_end, per_flush
}
criterion_main!(benches);
