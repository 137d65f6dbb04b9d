//! The README's quick start as a new user runs it: a service logs one line
//! per request from one callsite; every line reaches the endpoint (flood
//! control is for an engine's self telemetry, off for an application's
//! logs). Own process: it installs the global default.

use std::time::Duration;

use selftrace_bridge::OtlpExporter;
use selftrace_tests::peer::Peer;
use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt};

#[test]
fn a_thousand_request_lines_from_one_callsite_all_arrive() {
    let peer = Peer::start("http", 0, "[]");
    let exporter = OtlpExporter::builder()
        .with_env(false)
        .with_endpoint(peer.url(""))
        .with_service_name("my-service")
        .build()
        .expect("builds");
    tracing_subscriber::registry().with(exporter.layer()).init();

    for request_id in 0..1000_u64 {
        tracing::info!(target: "my_service::http", request_id, "handled request");
    }
    let metrics = exporter.shutdown().expect("shuts down");

    assert_eq!(metrics.records_acknowledged, 1000, "{metrics:?}");
    let received: usize = peer.requests(1000, Duration::from_secs(10)).iter().map(|r| r.records.len()).sum();
    assert_eq!(received, 1000);
}
