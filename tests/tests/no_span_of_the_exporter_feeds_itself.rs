//! The exporter's span layer as the process's global subscriber, over gRPC
//! and OTLP/HTTP: the spans the exporter's own threads make while they
//! send (h2's, hyper's, tonic's, tower's, and any a library opens there) are
//! counted as made in the pipeline and never traced, so exporting spans
//! makes no spans to export: what the endpoint acknowledges is exactly what
//! the application made, also long after.
//!
//! Its own test binary: the global default subscriber is process-wide.

use std::time::Duration;

use selftrace_bridge::{OtlpExporter, export::Protocol};
use selftrace_tests::{peer::Peer, wait_for};
use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt};

const SPANS: u64 = 20;

#[test]
fn exporting_spans_makes_no_spans_to_export() {
    let peers = [Peer::start("grpc", 0, "[]"), Peer::start("http", 0, "[]")];
    let exporters = [Protocol::Grpc, Protocol::HttpProtobuf].map(|protocol| {
        let peer = &peers[usize::from(protocol == Protocol::HttpProtobuf)];
        OtlpExporter::traces_builder()
            .with_env(false)
            .with_endpoint(peer.url(""))
            .with_protocol(protocol)
            .with_max_delay(Duration::from_millis(20))
            .build()
            .expect("the exporter starts")
    });
    let layers = exporters.each_ref().map(OtlpExporter::span_layer);
    let [grpc, http] = layers.clone();
    // Two span layers would share their spans (the first traces them): one
    // subscriber per exporter, the gRPC one global.
    tracing_subscriber::registry().with(grpc).try_init().expect("first global default in this process");
    let http_dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(http));

    let work = || {
        for i in 0..SPANS / 2 {
            tracing::info_span!("request", i).in_scope(|| tracing::info_span!("step").in_scope(|| {}));
        }
    };
    work();
    tracing::dispatcher::with_default(&http_dispatch, work);
    for exporter in &exporters {
        wait_for(exporter, |m| m.records_acknowledged >= SPANS);
    }
    // Time for a feedback loop to show: several more export cycles.
    std::thread::sleep(Duration::from_millis(500));
    for (exporter, layer) in exporters.into_iter().zip(&layers) {
        let m = exporter.shutdown().expect("clean shutdown");
        let s = layer.metrics();
        assert_eq!((m.records_received, m.records_acknowledged), (SPANS, SPANS), "{m:?}");
        assert_eq!((s.started, s.delivered, s.open), (SPANS, SPANS, 0), "{s:?}");
    }
    // The gRPC exporter's thread (the global subscriber's only other
    // thread) made spans of its own, none traced.
    let grpc = layers[0].metrics();
    assert!(grpc.in_pipeline > 0, "the exporter's stack made no span: {grpc:?}");
}
