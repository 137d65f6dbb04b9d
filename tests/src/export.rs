//! What the exporter's end-to-end tests share: requests as the layer
//! encodes them, handed to an exporter as a producer would, and the
//! accounting every test asserts.

use std::time::Duration;

use selftrace::{Destination, OtlpBytes, OtlpBytesChannel, OtlpTracingLayer};
use selftrace_bridge::{ExporterMetrics, OtlpExporter, OtlpExporterBuilder, export::RetryPolicy};
use tracing_subscriber::layer::SubscriberExt;

use crate::python_decode;

/// `n` one-record requests, as the layer encodes them, over three targets.
pub fn produce(n: usize) -> Vec<OtlpBytes> {
    let channel = OtlpBytesChannel::new(n.max(1));
    let layer = OtlpTracingLayer::builder(Destination::Channel(channel.sender()))
        .with_service_name("exporter-test")
        .with_resource_attribute("host.name", "ci")
        // Flood control off: the requests repeat three callsites.
        .with_flood_limit(None)
        .build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..n {
            let seq = i as i64;
            match i % 3 {
                0 => tracing::info!(target: "db", seq, pool = "main", "connected"),
                1 => tracing::warn!(target: "db", seq, latency = 1.5_f64, "slow query"),
                _ => tracing::error!(name: "net.reset", target: "net", seq, peer = ?("10.0.0.1", 80), "reset"),
            }
        }
    });
    channel.receiver().drain().collect()
}

/// The canonical record lines of `requests`, decoded by Python's
/// opentelemetry-proto.
pub fn expected_lines(requests: &[OtlpBytes]) -> Vec<String> {
    python_decode(requests).into_iter().filter(|l| !l.starts_with("resource|")).collect()
}

/// Hands `requests` to the exporter as a producer would.
pub fn feed(exporter: &OtlpExporter, requests: &[OtlpBytes]) {
    let Destination::Channel(sender) = exporter.destination() else { unreachable!("an exporter feeds a channel") };
    for request in requests {
        sender.try_send(request.clone()).expect("room in the exporter's channel");
    }
}

/// An exporter builder for `endpoint` that ignores the environment, sends
/// every 50 ms and retries quickly (for 20 s).
pub fn builder(endpoint: &str) -> OtlpExporterBuilder {
    OtlpExporter::builder()
        .with_env(false)
        .with_endpoint(endpoint)
        .with_max_delay(Duration::from_millis(50))
        .with_retry(RetryPolicy {
            initial: Duration::from_millis(100),
            max_interval: Duration::from_millis(400),
            max_elapsed: Duration::from_secs(20),
        })
}

/// Every record produced is acknowledged, rejected or dropped, and none is
/// left in the exporter.
pub fn assert_accounted(produced: u64, m: &ExporterMetrics) {
    assert_eq!(m.records_in_flight, 0, "{m:?}");
    assert_eq!(produced, m.records_acknowledged + m.records_rejected + m.dropped(), "{m:?}");
    assert_eq!(m.records_received + m.dropped_queue_full, produced, "{m:?}");
}
