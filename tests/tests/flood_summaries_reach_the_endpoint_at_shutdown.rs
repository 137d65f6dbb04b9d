//! A process that bursts and exits: flood control's summary of what it
//! suppressed reaches the endpoint with `shutdown()` alone, with the layer
//! installed as the global default (`init()`, never dropped), and the
//! suppressed count is readable from the exporter. Own process: it sets the
//! global default.

use std::time::Duration;

use selftrace::{DropReason, flood::FloodLimit};
use selftrace_bridge::OtlpExporter;
use selftrace_tests::{hex, peer::Peer};
use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt};

#[test]
fn a_burst_then_shutdown_delivers_the_summary_and_counts_what_it_stands_for() {
    let peer = Peer::start("http", 0, "[]");
    // Flood control on, as an engine's self telemetry has it.
    let exporter = OtlpExporter::builder().with_env(false).with_endpoint(peer.url("/v1/logs")).build().expect("builds");
    let layer = exporter.layer_builder().with_flood_limit(Some(FloodLimit::DEFAULT)).build();
    tracing_subscriber::registry().with(layer).init();

    for i in 0..1000_u64 {
        tracing::info!(target: "job", i, internal_log_rate_limit = true, "row done");
    }
    let metrics = exporter.shutdown().expect("shuts down");

    let layer = exporter.layer_metrics();
    let suppressed = layer.dropped(DropReason::Suppressed);
    assert!(suppressed > 0, "flood control suppressed part of the burst: {layer:?}");
    // Readable: the drops by name.
    assert!(format!("{layer:?}").contains(&format!("\"suppressed\": {suppressed}")), "{layer:?}");
    // The admitted events and one summary record, delivered and acknowledged.
    assert_eq!(layer.delivered, 1000 - suppressed + 1, "{layer:?}");
    assert_eq!(metrics.records_acknowledged, layer.delivered, "{metrics:?}");
    let records: Vec<String> = peer
        .requests(metrics.records_acknowledged as usize, Duration::from_secs(10))
        .into_iter()
        .flat_map(|r| r.records)
        .collect();
    let summary = records
        .iter()
        .find(|r| r.contains(&hex(format!("suppressed {suppressed}").as_bytes())))
        .unwrap_or_else(|| panic!("a summary of {suppressed} events among {records:#?}"));
    assert!(!summary.is_empty());
    // The opt-out field steers flood control; it is not exported.
    let field = hex(selftrace::flood::OPT_OUT_FIELD.as_bytes());
    assert!(records.iter().all(|r| !r.contains(&field)), "{records:#?}");
}
