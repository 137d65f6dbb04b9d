//! Amplification: an exporter in the receiver's pipeline logs on every
//! batch, through `otel_*!` and through plain `tracing` (its own and a
//! transport crate's). After N ordinary events exactly N records arrive,
//! the zone's own logs are discarded or go to the raw logger as configured,
//! and nothing grows while time passes.
//!
//! Own binary: the layer is the global subscriber (ITR-only mode: third-party
//! events go to the router too).
#![allow(clippy::unwrap_used)]

use selftrace_test_support::host as support;

use std::time::Duration;

use selftrace::{
    Destination, DropReason, Node, OtlpTracingLayer, otel_error, otel_info, otel_warn, raw::raw_logger_metrics,
};
use selftrace_itr::{InternalTelemetry, PipelineLogger, ReceiverConfig, Zone, receiver::Control};
use support::{TokioHost, decode};
use tokio::sync::mpsc;
use tracing_subscriber::layer::SubscriberExt;

const N: u64 = 200;

#[test]
fn an_exporter_that_logs_on_every_batch_does_not_amplify() {
    let layer = OtlpTracingLayer::builder(Destination::Noop).with_flood_limit(None).build();
    let handle = layer.handle();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer)).unwrap();

    for logger in [PipelineLogger::Noop, PipelineLogger::Raw] {
        let telemetry = InternalTelemetry::builder().with_flood_limit(None).with_service_name("engine").build();
        handle.set(telemetry.destination()).unwrap();
        let before = handle.metrics();
        let raw_before = raw_logger_metrics().written;

        let config = ReceiverConfig { flush_interval: Duration::from_millis(100), logger, ..ReceiverConfig::default() };
        let receiver = telemetry.receiver("itr", config).unwrap();
        let zone = Zone::builder().receiver("itr", logger).edge("itr", "exporter").build().unwrap();
        let exporter = telemetry.node_logs().shared(zone.node("exporter", None).unwrap());
        let processor = telemetry.node_logs().shared(Node::new("processor"));

        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
        let (arrived, batches, metrics) = runtime.block_on(async {
            let (output, mut downstream) = mpsc::channel(4);
            let (control, control_rx) = mpsc::channel(1);
            let running = tokio::spawn(receiver.run(TokioHost { output, control: control_rx }));
            let exporting = tokio::spawn(exporter.clone().scope(async move {
                let (mut records, mut batches) = (0u64, 0u64);
                let exporter = selftrace::SharedTelemetry::current().unwrap();
                while let Some(batch) = downstream.recv().await {
                    let n = decode(batch.as_bytes()).len() as u64;
                    records += n;
                    batches += 1;
                    otel_warn!(exporter, "export.done", records = n);
                    otel_error!(exporter, "export.slow", records = n);
                    tracing::warn!(records = n, "exported a batch");
                    tracing::error!("a library error inside the exporter");
                    tracing::error!(target: "hyper::client::pool", "connection reset");
                }
                (records, batches)
            }));

            for seq in 0..N / 2 {
                otel_info!(processor, "item.processed", seq = seq);
                tracing::info!(target: "some_library", seq, "third-party event");
            }
            // Many flush intervals pass (the paused clock jumps ahead).
            tokio::time::sleep(Duration::from_secs(10)).await;
            let seen = telemetry.metrics().receivers[0].clone();
            tokio::time::sleep(Duration::from_secs(60)).await;
            let later = telemetry.metrics().receivers[0].clone();
            assert_eq!(seen.records_received, N, "{seen:?}");
            assert_eq!(later.records_received, seen.records_received, "the zone fed the receiver");
            assert_eq!(later.batches_sent, seen.batches_sent, "batches kept coming");
            assert!(later.timer_flush_count >= 600, "{later:?}");

            control.send(Control::shutdown_within(Duration::from_secs(1))).await.unwrap();
            let metrics = running.await.unwrap();
            let (records, batches) = exporting.await.unwrap();
            (records, batches, metrics)
        });

        assert_eq!(arrived, N, "{logger:?}");
        assert_eq!(metrics.records_sent, N);
        assert_eq!(metrics.batches_sent, batches);
        assert!(batches >= 1);

        let node_logs = telemetry.node_logs().metrics();
        let after = handle.metrics();
        let received = after.received() - before.received();
        // Third-party: N/2 ordinary ones, 3 per batch from the exporter's scope.
        assert_eq!(received, N / 2 + 3 * batches, "{logger:?} {after:?}");
        let accounted = (after.delivered + after.dropped_total()) - (before.delivered + before.dropped_total());
        assert_eq!(received, accounted);
        match logger {
            PipelineLogger::Noop => {
                // Only the plain-tracing events of the zone reach the node
                // path (the macros see a disabled logger); all discarded.
                assert_eq!(node_logs.events_dropped(DropReason::Discarded), 3 * batches);
                assert_eq!(node_logs.events_received, N / 2 + 3 * batches);
            }
            _ => {
                // Raw at ERROR: otel_error! and the library's error go to the
                // raw logger; warnings and the transport crate are discarded.
                assert_eq!(node_logs.events_dropped(DropReason::Discarded), 2 * batches);
                assert_eq!(node_logs.events_received, N / 2 + 4 * batches);
                assert!(raw_logger_metrics().written >= raw_before + 2 * batches.min(10));
            }
        }
        assert_eq!(node_logs.events_delivered + node_logs.events_dropped_total(), node_logs.events_received);
    }
}
