//! `tracing` spans through `OtlpExporter::traces_builder` and its
//! `span_layer`: to `/v1/traces` over OTLP/HTTP and `TraceService/Export`
//! over gRPC on the scripted Python peer (opentelemetry-proto's own types
//! decode them), batched, and every span accounted for
//! (`produced == acknowledged + rejected + dropped`).

use std::time::Duration;

use selftrace_bridge::{OtlpExporter, export::Protocol};
use selftrace_tests::{hex, peer::Peer, wait_for};
use tracing_subscriber::layer::SubscriberExt;

fn exports(protocol: &str) {
    let peer = Peer::start(protocol, 0, r#"[{"rejected": 1, "message": "one too many"}]"#);
    let exporter = OtlpExporter::traces_builder()
        .with_env(false)
        .with_endpoint(peer.url(""))
        .with_protocol(if protocol == "http" { Protocol::HttpProtobuf } else { Protocol::Grpc })
        .with_service_name("traces-test")
        .with_max_delay(Duration::from_millis(50))
        .build()
        .expect("the exporter starts");
    let layer = exporter.span_layer();
    let spans = layer.clone();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..10_i64 {
            tracing::info_span!(target: "engine", "batch", i, otel.kind = "producer").in_scope(|| {
                tracing::info_span!(target: "engine", "encode").in_scope(|| {});
            });
        }
    });
    let m = wait_for(&exporter, |m| m.records_acknowledged + m.records_rejected == 20);
    let got = peer.requests(19, Duration::from_secs(10));
    let end = exporter.shutdown().expect("clean shutdown");
    let s = spans.metrics();
    assert_eq!((s.started, s.delivered, s.dropped(), s.open), (20, 20, 0, 0), "{s:?}");
    assert_eq!((m.records_received, m.records_acknowledged, m.records_rejected), (20, 19, 1), "{m:?}");
    assert_eq!(end.records_received, end.records_acknowledged + end.records_rejected + end.dropped(), "{end:?}");
    // Batched: fewer requests than spans; every span decoded there.
    let lines: Vec<&String> = got.iter().flat_map(|r| &r.records).collect();
    assert!(got.len() < 20, "{} requests", got.len());
    assert_eq!(lines.len(), 20, "{lines:#?}");
    let names = |name: &[u8]| lines.iter().filter(|l| l.split('|').nth(1) == Some(hex(name).as_str())).count();
    assert_eq!((names(b"batch"), names(b"encode")), (10, 10));
    let service = format!("{}=s:{}", hex(b"service.name"), hex(b"traces-test"));
    assert!(got.iter().flat_map(|r| &r.resources).all(|r| r.contains(&service)));
    // Each `encode` is the child of a `batch` of the same trace.
    let fields: Vec<Vec<&str>> = lines.iter().map(|l| l.split('|').collect()).collect();
    for child in fields.iter().filter(|f| f[1] == hex(b"encode")) {
        assert!(fields.iter().any(|p| p[1] == hex(b"batch") && p[3] == child[4] && p[2] == child[2]), "{child:?}");
    }
}

#[test]
fn spans_reach_an_otlp_http_endpoint_at_v1_traces() {
    exports("http");
}

#[test]
fn spans_reach_an_otlp_grpc_endpoint_through_the_trace_service() {
    exports("grpc");
}
