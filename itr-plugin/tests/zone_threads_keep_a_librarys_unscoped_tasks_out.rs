//! ITR only, an exporter in the zone whose library spawns a task without the
//! node's scope (a retry timer, a pool) that logs one ordinary event per
//! batch: without zone threads every batch produces one more record for the
//! next batch, forever. The internal pipeline runs on a runtime of its own
//! whose threads are zone threads (`selftrace::pipeline::zone_thread_start`): after N
//! ordinary events exactly N records arrive over more than 30 flush
//! intervals, and the spawned task's events are counted as discarded.
//!
//! The layer (ITR-only mode: third-party events go to the router) is the
//! default subscriber of this thread and of every thread of the internal
//! runtime.
#![allow(clippy::unwrap_used)]

use selftrace_test_support::host as support;

use std::time::{Duration, Instant};

use selftrace::{DropReason, Node, NodeLogger, OtlpTracingLayer, otel_info};
use selftrace_itr::{InternalTelemetry, PipelineLogger, ReceiverConfig, Zone, receiver::Control};
use support::{TokioHost, decode};
use tokio::sync::mpsc;
use tracing_subscriber::layer::SubscriberExt;

const N: u64 = 100;
const FLUSH: Duration = Duration::from_millis(20);

/// Runs the internal pipeline on its own runtime (zone threads or not) and
/// N ordinary events on this thread; (records the exporter got, records the
/// receiver had taken once the pipeline settled, batches, events discarded
/// by the layer).
fn run(zone_threads: bool) -> (u64, u64, u64, u64) {
    let telemetry = InternalTelemetry::builder().with_flood_limit(None).with_service_name("engine").build();
    let layer = OtlpTracingLayer::builder(telemetry.destination()).with_flood_limit(None).build();
    let handle = layer.handle();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let _global = tracing::dispatcher::set_default(&dispatch);

    let config = ReceiverConfig { flush_interval: FLUSH, ..ReceiverConfig::default() };
    let receiver = telemetry.receiver("itr", config).unwrap();
    let zone = Zone::builder().receiver("itr", PipelineLogger::Noop).edge("itr", "exporter").build().unwrap();
    let exporter = telemetry.node_logs().shared(zone.node("exporter", None).unwrap());
    let processor = telemetry.node_logs().shared(Node::new("processor"));

    // The internal pipeline's runtime: zone threads (or not), each with this
    // test's dispatcher for its whole life.
    let thread_dispatch = dispatch.clone();
    let zone_start = zone_threads.then(|| selftrace::pipeline::zone_thread_start(NodeLogger::Noop));
    let internal = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .on_thread_start(move || {
            if let Some(start) = &zone_start {
                start();
            }
            std::mem::forget(tracing::dispatcher::set_default(&thread_dispatch));
        })
        .build()
        .unwrap();

    let (output, mut downstream) = mpsc::channel(4);
    let (control, control_rx) = mpsc::channel(1);
    let running = internal.spawn(receiver.run(TokioHost { output, control: control_rx }));
    let exporting = internal.spawn(exporter.clone().scope(async move {
        let (mut records, mut batches) = (0u64, 0u64);
        while let Some(batch) = downstream.recv().await {
            records += decode(batch.as_bytes()).len() as u64;
            batches += 1;
            // The library's own task, spawned without the node's scope.
            tokio::spawn(async move { tracing::info!(target: "some_client::retry", batches, "retrying later") });
        }
        (records, batches)
    }));

    for seq in 0..N / 2 {
        otel_info!(processor, "item.processed", seq = seq);
        tracing::info!(target: "some_library", seq, "third-party event");
    }
    // Until the pipeline settles: the receiver sent the N ordinary records
    // downstream and every batch's spawned task has logged (discarded on
    // zone threads; fed back, and taken again, without them).
    let deadline = Instant::now() + Duration::from_secs(30);
    let taken = loop {
        let receiver = &telemetry.metrics().receivers[0];
        let settled = if zone_threads {
            receiver.records_sent >= N && handle.metrics().dropped(DropReason::Discarded) >= receiver.batches_sent
        } else {
            receiver.records_received > N + 5
        };
        if settled || Instant::now() > deadline {
            break receiver.records_received;
        }
        std::thread::sleep(FLUSH);
    };

    internal.block_on(async { control.send(Control::shutdown_within(Duration::from_secs(1))).await.unwrap() });
    let metrics = internal.block_on(running).unwrap();
    let (records, batches) = internal.block_on(exporting).unwrap();
    assert_eq!(metrics.records_sent, records);
    let discarded = handle.metrics().dropped(DropReason::Discarded);
    (records, taken, batches, discarded)
}

#[test]
fn a_librarys_unscoped_task_on_a_zone_thread_does_not_feed_the_pipeline() {
    let (records, taken, batches, discarded) = run(true);
    assert_eq!((records, taken), (N, N), "exactly the ordinary events, nothing fed back");
    assert!(batches >= 1);
    assert_eq!(discarded, batches, "each spawned task's event was discarded, counted");
}

#[test]
fn without_zone_threads_the_same_pipeline_feeds_on_itself() {
    let (records, taken, batches, discarded) = run(false);
    assert!(taken > N + 5, "the unscoped task's events kept coming back: {taken} records taken, {batches} batches");
    assert!(records > N);
    assert_eq!(discarded, 0);
}
