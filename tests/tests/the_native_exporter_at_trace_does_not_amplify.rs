//! Amplification, the native exporter at `TRACE` with the layer as the
//! global subscriber (so whatever the exporter's threads and the transport
//! log reaches it): over OTLP/HTTP and OTLP/gRPC, N ordinary events give
//! exactly N records at a real endpoint over 50 flush intervals, nothing
//! trickles in afterwards, and only the ordinary events went through the
//! exporter's buffers. Own binary: the global subscriber.

use std::time::{Duration, Instant};

use selftrace::{Destination, OtlpTracingLayer, TRANSPORT_TARGETS};
use selftrace_bridge::{
    OtlpExporter,
    export::{Compression, Protocol},
};
use selftrace_tests::peer::Peer;
use tracing_subscriber::{Layer as _, filter::LevelFilter, layer::SubscriberExt, util::SubscriberInitExt};

const N: u64 = 300;
const FLUSH: Duration = Duration::from_millis(20);

#[test]
fn n_events_give_n_records_over_http_and_grpc() {
    // Flood control off: it would hide an amplification loop, which this
    // test must see.
    let layer = OtlpTracingLayer::builder(Destination::Noop)
        .with_denied_targets(TRANSPORT_TARGETS.iter().copied())
        .with_flood_limit(None)
        .build();
    let handle = layer.handle();
    tracing_subscriber::registry().with(layer.with_filter(LevelFilter::TRACE)).init();

    for (protocol, proto) in [("http", Protocol::HttpProtobuf), ("grpc", Protocol::Grpc)] {
        let peer = Peer::start(protocol, 0, "[]");
        let endpoint = if protocol == "grpc" { peer.url("") } else { peer.url("/v1/logs") };
        let exporter = OtlpExporter::builder()
            .with_env(false)
            .with_endpoint(endpoint)
            .with_protocol(proto)
            .with_compression(Compression::Gzip)
            .with_max_delay(FLUSH)
            .build()
            .expect("exporter starts");
        handle.set(selftrace::Destination::Buffered(exporter.node_logs())).expect("layer alive");
        let before = handle.metrics();

        for i in 0..N {
            tracing::trace!(target: "app", i, "an ordinary event");
        }
        let start = Instant::now();
        while exporter.metrics().records_acknowledged < N && start.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(FLUSH);
        }
        // 50 flush intervals more: nothing trickles in.
        std::thread::sleep(FLUSH * 50);
        let m = exporter.metrics();
        assert_eq!(m.records_acknowledged, N, "{protocol}: {m:?}");
        // Still the layer's destination while the exporter closes its
        // connections (the transport logs most then).
        let m = exporter.shutdown().expect("clean shutdown");
        assert_eq!((m.records_acknowledged, m.dropped()), (N, 0), "{protocol}: {m:?}");
        let got = peer.requests(N as usize, Duration::from_secs(5));
        assert_eq!(got.iter().map(|r| r.records.len() as u64).sum::<u64>(), N, "{protocol}");

        let after = handle.metrics();
        handle.set(Destination::Noop).expect("layer alive");
        assert_eq!(after.delivered - before.delivered, N, "{protocol}: only the ordinary events were delivered");
        let buffers = exporter.buffer_metrics();
        assert_eq!(buffers.events_received, N, "{protocol}: {buffers:?}");
    }
}
