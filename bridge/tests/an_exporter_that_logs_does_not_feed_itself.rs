//! An exporter that logs on every export, through `tracing` and through an
//! `otel_*!` node, with the selftrace layer as the process's global
//! subscriber: what is exported equals what was produced, the exporter's own
//! logs are counted as re-entrant (raw logger), nothing loops, nothing hangs.
//!
//! Both SDK processors: the simple one exports on the bridge's consumer
//! thread (inside its pipeline scope), the batch one on the SDK's own thread
//! (inside an OpenTelemetry suppressed context).
//!
//! Its own test binary: the global default subscriber is process-wide.

use std::sync::{
    Arc, LazyLock,
    atomic::{AtomicU64, Ordering},
};

use opentelemetry_sdk::{
    error::OTelSdkResult,
    logs::{LogBatch, LogExporter, SdkLoggerProvider},
};
use selftrace::{Destination, DropReason, Node, NodeLogs, OtlpTracingLayer, SharedTelemetry, otel_warn};
use selftrace_bridge::SdkBridge;
use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt};

/// The exporter's own node, as an engine's exporter node would have.
static EXPORTER_NODE: LazyLock<(NodeLogs, SharedTelemetry)> = LazyLock::new(|| {
    let node_logs = NodeLogs::builder(Destination::Console).with_flood_limit(None).build();
    let node = node_logs.shared(Node::new("exporter.chatty"));
    (node_logs, node)
});

#[derive(Debug, Clone, Default)]
struct ChattyExporter {
    records: Arc<AtomicU64>,
    exports: Arc<AtomicU64>,
}

impl LogExporter for ChattyExporter {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let n = batch.iter().count() as u64;
        // What hyper, h2 and reqwest do on every request...
        tracing::debug!(target: "hyper::client", records = n, "sending export request");
        tracing::warn!(target: "reqwest", "slow response");
        // ...and what an engine's own exporter node would log.
        otel_warn!(EXPORTER_NODE.1, "exporter.batch_sent", records = n as i64);
        self.records.fetch_add(n, Ordering::Relaxed);
        self.exports.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The channels hold all of them: this test is about feedback, not overload.
const EVENTS: u64 = 2_000;

#[test]
fn exported_equals_produced_with_simple_and_batch_processors() {
    let simple = ChattyExporter::default();
    let bridge = SdkBridge::builder(SdkLoggerProvider::builder().with_simple_exporter(simple.clone()).build())
        .with_channel_capacity(EVENTS as usize)
        .spawn()
        .expect("thread");
    let layer = OtlpTracingLayer::builder(bridge.destination()).with_flood_limit(None).build();
    let handle = layer.handle();
    tracing_subscriber::registry().with(layer).try_init().expect("first global default in this process");

    for i in 0..EVENTS {
        tracing::info!(target: "app", i, "work item");
    }
    let metrics = bridge.shutdown().expect("clean shutdown");
    assert_eq!(metrics.records_emitted, EVENTS);
    assert_eq!(simple.records.load(Ordering::Relaxed), EVENTS, "simple: exported == produced");
    let exports = simple.exports.load(Ordering::Relaxed);
    assert_eq!(exports, EVENTS, "the simple processor exports each record");
    let layer_metrics = handle.metrics();
    assert_eq!(layer_metrics.delivered, EVENTS);
    assert_eq!(layer_metrics.dropped(DropReason::Reentrant), 2 * exports, "both tracing events of each export");
    let node_metrics = EXPORTER_NODE.0.metrics();
    assert_eq!(node_metrics.events_dropped(DropReason::Reentrant), exports);

    // The batch processor exports on the SDK's thread.
    let batch = ChattyExporter::default();
    let bridge = SdkBridge::builder(SdkLoggerProvider::builder().with_batch_exporter(batch.clone()).build())
        .with_channel_capacity(EVENTS as usize)
        .spawn()
        .expect("thread");
    handle.set(bridge.destination()).expect("layer alive");
    for i in 0..EVENTS {
        tracing::info!(target: "app", i, "work item");
    }
    let metrics = bridge.shutdown().expect("clean shutdown");
    assert_eq!(metrics.records_emitted, EVENTS);
    assert_eq!(batch.records.load(Ordering::Relaxed), EVENTS, "batch: exported == produced");
    let batch_exports = batch.exports.load(Ordering::Relaxed);
    assert!(batch_exports >= 1);
    let layer_metrics = handle.metrics();
    assert_eq!(layer_metrics.delivered, 2 * EVENTS, "nothing the exporters logged was delivered");
    assert_eq!(layer_metrics.dropped(DropReason::Reentrant), 2 * (exports + batch_exports));
    assert_eq!(layer_metrics.received(), layer_metrics.delivered + layer_metrics.dropped_total());
    assert_eq!(EXPORTER_NODE.0.metrics().events_dropped(DropReason::Reentrant), exports + batch_exports);
}
