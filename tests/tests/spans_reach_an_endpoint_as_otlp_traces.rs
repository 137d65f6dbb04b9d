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

/// An exporter whose endpoint is not there (its requests are retried, then
/// dropped at shutdown and counted).
fn unreachable(builder: selftrace_bridge::OtlpExporterBuilder) -> OtlpExporter {
    builder
        .with_env(false)
        .with_endpoint("http://127.0.0.1:9")
        .with_shutdown_timeout(Duration::from_millis(200))
        .build()
        .expect("the exporter starts")
}

#[test]
fn a_request_never_mixes_spans_and_records_each_refusal_counted() {
    let logs = unreachable(OtlpExporter::builder());
    let traces = unreachable(OtlpExporter::traces_builder());
    // Spans into the logs exporter's buffers, records into the traces one's.
    let spans = logs.span_layer();
    let records = traces.layer_builder().build();
    let handle = records.handle();
    let node_logs = traces.node_logs();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(spans.clone()).with(records), || {
        tracing::info_span!("request").in_scope(|| tracing::info!(target: "engine", "inside"));
    });
    let node = node_logs.shared(selftrace::Node::new("receiver.otlp.0"));
    selftrace::otel_info!(node, "node.record");
    let s = spans.metrics();
    assert_eq!((s.started, s.delivered, s.dropped_channel_closed, s.open), (1, 0, 1, 0), "{s:?}");
    assert_eq!(handle.metrics().dropped(selftrace::DropReason::Discarded), 1);
    assert_eq!(node_logs.metrics().events_dropped(selftrace::DropReason::Discarded), 1);
    let (logs, traces) = (logs.shutdown().expect("shutdown"), traces.shutdown().expect("shutdown"));
    assert_eq!((logs.records_received, traces.records_received), (0, 0), "{logs:?} {traces:?}");
}

#[test]
fn spans_open_at_shutdown_are_counted_and_those_closed_after_it_dropped() {
    let traces = unreachable(OtlpExporter::traces_builder());
    let layer = traces.span_layer();
    let spans = layer.clone();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let long = tracing::info_span!("long");
        tracing::info_span!("short").in_scope(|| {});
        let m = traces.shutdown().expect("shutdown");
        let s = spans.metrics();
        assert_eq!((s.started, s.delivered, s.open), (2, 1, 1), "{s:?}");
        // The short span was taken, then dropped by the exporter (nothing
        // listens): counted there.
        assert_eq!((m.records_received, m.dropped()), (1, 1), "{m:?}");
        drop(long);
    });
    let s = spans.metrics();
    assert_eq!((s.started, s.delivered, s.dropped_shut_down, s.open), (2, 1, 1, 0), "{s:?}");
    assert_eq!(s.started, s.delivered + s.dropped() + s.open);
}
