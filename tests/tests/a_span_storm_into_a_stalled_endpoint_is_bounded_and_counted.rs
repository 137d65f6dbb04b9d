//! A storm of spans from several threads into an exporter whose endpoint
//! accepts connections and never answers (a stalled collector): nothing
//! blocks, memory stays bounded by the exporter's cap in bytes and the
//! per-thread buffers, and every span is counted: taken by a buffer and
//! then dropped by reason, or still open at shutdown, then dropped as shut
//! down when it closes.
//!
//! `SELFTRACE_SPAN_STORM` sets the number of spans (default 10 million;
//! the test is alone in its binary, so the process's peak memory is the
//! storm's).

use std::{
    io::Read as _,
    net::TcpListener,
    time::{Duration, Instant},
};

use selftrace_bridge::{OtlpExporter, export::RetryPolicy};
use tracing_subscriber::layer::SubscriberExt;

const THREADS: u64 = 4;
const QUEUE_BYTES: u64 = 4 << 20;

/// Resident memory now and at its peak (`VmRSS`, `VmHWM`), in bytes.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok())
            .expect("a memory line")
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A collector that accepts every connection and never reads or answers.
fn stalled_endpoint() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
        // Unreachable while the test runs: the listener lives forever.
        let _ = held.first().map(|mut s| s.read(&mut [0; 1]));
    });
    port
}

#[test]
fn a_span_storm_into_a_stalled_endpoint_is_bounded_and_counted() {
    let total: u64 = std::env::var("SELFTRACE_SPAN_STORM").ok().and_then(|n| n.parse().ok()).unwrap_or(10_000_000);
    let requests_per_thread = total / THREADS / 3;
    let port = stalled_endpoint();
    let exporter = OtlpExporter::traces_builder()
        .with_env(false)
        .with_endpoint(format!("http://127.0.0.1:{port}"))
        .with_timeout(Duration::from_millis(300))
        .with_retry(RetryPolicy {
            initial: Duration::from_millis(50),
            max_interval: Duration::from_millis(100),
            max_elapsed: Duration::from_millis(300),
        })
        .with_max_queue_bytes(QUEUE_BYTES)
        .with_shutdown_timeout(Duration::from_millis(500))
        .build()
        .expect("the exporter starts");
    let layer = exporter.span_layer();
    let spans = layer.clone();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let (rss_before, _) = memory();

    let started = Instant::now();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let dispatch = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    for i in 0..requests_per_thread {
                        let request = tracing::info_span!("request", t, i, route = "/v1/traces", ok = true);
                        let _in = request.enter();
                        tracing::info_span!("decode", bytes = 512_i64, codec = "protobuf").in_scope(|| {});
                        tracing::info_span!("respond", status = 200_i64).in_scope(|| {});
                    }
                });
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("a producer never panics");
    }
    let storm = started.elapsed();
    let (_, peak) = memory();
    let produced = THREADS * requests_per_thread * 3;

    // Three spans still open when the exporter shuts down.
    let open: Vec<tracing::Span> =
        tracing::dispatcher::with_default(&dispatch, || (0..3).map(|i| tracing::info_span!("still.open", i)).collect());
    let m = exporter.shutdown().expect("shutdown");
    let at_shutdown = spans.metrics();
    drop(open);
    let end = spans.metrics();
    let buffers = exporter.buffer_metrics();

    // Every span: made, then taken by a buffer or dropped; nothing open.
    assert_eq!(at_shutdown.open, 3, "{at_shutdown:?}");
    assert_eq!((end.started, end.open, end.dropped_shut_down), (produced + 3, 0, 3), "{end:?}");
    assert_eq!(end.started, end.delivered + end.dropped(), "{end:?}");
    // What the buffers took: handed to the exporter or refused at its
    // queue (counted on both sides); nothing left in a buffer.
    assert_eq!(buffers.events_received, end.delivered, "{buffers:?}");
    assert_eq!(buffers.events_buffered(), 0, "{buffers:?}");
    assert_eq!(buffers.events_dropped(selftrace::DropReason::ChannelFull), m.dropped_queue_full, "{buffers:?} {m:?}");
    assert_eq!(buffers.events_delivered, m.records_received, "{buffers:?} {m:?}");
    // Nothing acknowledged: the endpoint never answered. Every span the
    // exporter took is dropped, by reason.
    assert_eq!((m.records_acknowledged, m.records_in_flight), (0, 0), "{m:?}");
    assert_eq!(m.records_received + m.dropped_queue_full, m.dropped(), "{m:?}");
    assert!(m.dropped_queue_full > 0, "the storm outran the stalled endpoint: {m:?}");
    // Memory: the queue's cap in bytes, the threads' buffers and the
    // spans in flight, not the storm (about 150 bytes a span).
    let grew = peak.saturating_sub(rss_before);
    assert!(grew < 96 << 20, "peak grew {} MiB for {produced} spans in {storm:?}: {m:?}", grew >> 20);
}
