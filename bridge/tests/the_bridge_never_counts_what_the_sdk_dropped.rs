//! A burst into the SDK bridge whose provider has a `BatchLogProcessor` with
//! the SDK's default queue (2048) and a slow exporter: the bridge waits for
//! the provider every `flush_every` records, so the SDK never drops a record
//! silently; what does not fit is refused at the bridge's own channel and
//! counted by the producer. Every record is exported or counted.
//!
//! Without the wait (`with_flush_every(0)`), the same records lose records
//! inside the SDK while the bridge counts them as emitted: the second test
//! shows it, so the first one cannot pass by accident. It paces the
//! producer (each chunk waits until the bridge has emitted it) so that the
//! bridge's channel refuses nothing and every record reaches the SDK's
//! queue: how many would be refused at the channel otherwise depends on how
//! fast the producer drops, which is not what it tests.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use opentelemetry_sdk::{
    error::OTelSdkResult,
    logs::{LogBatch, LogExporter, SdkLoggerProvider},
};
use selftrace::{DropReason, OtlpTracingLayer};
use selftrace_bridge::SdkBridge;
use tracing_subscriber::layer::SubscriberExt;

/// Counts what it exports, 20 ms per batch (a remote endpoint).
#[derive(Debug, Clone, Default)]
struct SlowExporter {
    records: Arc<AtomicU64>,
}

impl LogExporter for SlowExporter {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        std::thread::sleep(Duration::from_millis(20));
        self.records.fetch_add(batch.iter().count() as u64, Ordering::Relaxed);
        Ok(())
    }
}

const BURST: u64 = 20_000;

/// (produced, dropped at the bridge's channel, emitted by the bridge,
/// exported by the SDK); `paced`: each chunk of 256 records waits (up to
/// 10 s) until the bridge has emitted everything produced so far.
fn burst(flush_every: usize, paced: bool) -> (u64, u64, u64, u64) {
    let exporter = SlowExporter::default();
    let provider = SdkLoggerProvider::builder().with_batch_exporter(exporter.clone()).build();
    let bridge = SdkBridge::builder(provider).with_flush_every(flush_every).spawn().expect("bridge starts");
    let layer = OtlpTracingLayer::builder(bridge.destination()).with_flood_limit(None).build();
    let handle = layer.handle();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..BURST {
            tracing::info!(target: "burst", i);
            if paced && (i + 1) % 256 == 0 {
                let deadline = Instant::now() + Duration::from_secs(10);
                while bridge.metrics().records_emitted < i + 1 && Instant::now() < deadline {
                    std::thread::yield_now();
                }
            }
        }
    });
    let layer = handle.metrics();
    let bridge = bridge.shutdown().expect("clean shutdown");
    (
        layer.received(),
        layer.dropped(DropReason::ChannelFull),
        bridge.records_emitted,
        exporter.records.load(Ordering::Relaxed),
    )
}

#[test]
fn a_burst_is_exported_or_counted_never_lost_inside_the_sdk() {
    let (produced, refused, emitted, exported) = burst(selftrace_bridge::sdk::DEFAULT_FLUSH_EVERY, false);
    assert_eq!(produced, BURST);
    assert_eq!(exported, emitted, "the SDK exported everything the bridge emitted");
    assert_eq!(produced, emitted + refused, "every other record refused at the channel, counted");
}

#[test]
fn without_waiting_the_sdk_drops_what_the_bridge_emitted() {
    let (produced, refused, emitted, exported) = burst(0, true);
    assert_eq!(produced, emitted + refused);
    assert_eq!(refused, 0, "paced: the bridge's channel refused nothing");
    assert!(exported < emitted, "the SDK's queue overflowed: {exported} of {emitted} exported");
}
