//! The native OTLP exporter against endpoints not written in Rust: a scripted
//! Python peer (OTLP/HTTP on `http.server`, OTLP/gRPC on `grpcio` with the
//! `opentelemetry-proto` stubs) and `oteltap`. What arrives is decoded there
//! with `opentelemetry-proto` and compared field by field with what was
//! encoded; every fault the endpoint can throw is counted, and
//! `produced == acknowledged + rejected + dropped` holds in every test.

use std::{
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use selftrace::{DropReason, OtlpTracingLayer};
use selftrace_bridge::{
    OtlpExporter,
    export::{Compression, Protocol, RetryPolicy},
};
use selftrace_tests::{
    export::{assert_accounted, builder, expected_lines, feed, produce},
    oteltap::Oteltap,
    peer::{Peer, free_port},
    wait_for,
};
use tracing_subscriber::layer::SubscriberExt;

fn records(requests: &[selftrace_tests::peer::Request]) -> Vec<String> {
    requests.iter().flat_map(|r| r.records.iter().cloned()).collect()
}

fn delivers_field_by_field(protocol: &str) {
    let peer = Peer::start(protocol, 0, "[]");
    let (endpoint, proto) = match protocol {
        "http" => (peer.url("/v1/logs"), Protocol::HttpProtobuf),
        _ => (peer.url(""), Protocol::Grpc),
    };
    let exporter = builder(&endpoint)
        .with_protocol(proto)
        .with_compression(Compression::Gzip)
        .with_header("x-tenant", "t1")
        .with_max_batch_records(64)
        .build()
        .expect("exporter starts");
    let requests = produce(300);
    let expected = expected_lines(&requests);
    assert_eq!(expected.len(), 300);

    feed(&exporter, &requests);
    let metrics = exporter.shutdown().expect("clean shutdown");
    let got = peer.requests(300, Duration::from_secs(30));

    let got_records = records(&got);
    assert_eq!(got_records.len(), expected.len(), "{} records arrived", got_records.len());
    assert!(got_records == expected, "every field of every record, in order");
    assert!(got.iter().all(|r| r.headers == ["x-tenant=t1"]), "{got:?}");
    if protocol == "http" {
        assert!(got.iter().all(|r| r.gzip), "gzip bodies");
    }
    // Merged: 300 requests went out as batches of at most 64 records, each
    // with one ResourceLogs.
    assert!(got.len() >= 5 && got.len() < 300, "{} batches", got.len());
    assert!(got.iter().all(|r| r.resources.len() == 1), "one ResourceLogs per batch");
    assert_eq!(metrics.records_acknowledged, 300, "{metrics:?}");
    assert_eq!(metrics.batches_sent, got.len() as u64);
    assert_eq!((metrics.requests_received, metrics.dropped(), metrics.retries), (300, 0, 0), "{metrics:?}");
    assert_accounted(300, &metrics);
}

#[test]
fn http_batches_arrive_gzipped_with_headers_and_every_field_intact() {
    delivers_field_by_field("http");
}

#[test]
fn grpc_batches_arrive_with_metadata_and_every_field_intact() {
    delivers_field_by_field("grpc");
}

/// The exporter's worker waits on its channel when idle and only looks at
/// it now and then while requests keep coming: a request after a quiet
/// spell wakes it, and requests that keep coming are all taken, each batch
/// sent as soon as it is full (the batch delay, 60 s here, never comes).
#[test]
fn requests_after_a_quiet_spell_and_while_they_keep_coming_are_sent_without_the_batch_delay() {
    let peer = Peer::start("http", 0, "[]");
    let exporter = builder(&peer.url("/v1/logs"))
        .with_max_batch_records(5)
        .with_max_delay(Duration::from_secs(60))
        .build()
        .expect("exporter starts");
    let requests = produce(20);
    let mut fed = 0;
    for round in 0..4 {
        if round % 2 == 0 {
            // Quiet for longer than the worker keeps looking: it waits on
            // the channel again, and this batch's first request wakes it.
            thread::sleep(Duration::from_millis(100));
            feed(&exporter, &requests[fed..fed + 5]);
        } else {
            // One request every 3 ms: taken on the worker's looks.
            for request in &requests[fed..fed + 5] {
                feed(&exporter, std::slice::from_ref(request));
                thread::sleep(Duration::from_millis(3));
            }
        }
        fed += 5;
        let m = wait_for(&exporter, |m| m.records_acknowledged == fed as u64);
        assert_eq!(m.records_acknowledged, fed as u64, "round {round}: {m:?}");
    }
    let m = exporter.shutdown().expect("clean shutdown");
    assert_eq!((m.batches_sent, m.requests_received), (4, 20), "{m:?}");
    assert_accounted(20, &m);
    assert_eq!(records(&peer.requests(20, Duration::from_secs(30))), expected_lines(&requests));
}

#[test]
fn retryable_partial_and_refused_answers_are_each_counted() {
    let script = r#"[{"status": 503, "retry_after": "1"}, {"rejected": 2, "message": "too old"}, {"status": 400}]"#;
    let peer = Peer::start("http", 0, script);
    let exporter = builder(&peer.url("/v1/logs"))
        .with_max_batch_records(5)
        .with_max_delay(Duration::from_secs(60))
        .build()
        .expect("exporter starts");
    // Its counters as OpenTelemetry instruments, exported in memory.
    let (provider, metrics) = selftrace_test_support::metrics::in_memory_provider();
    exporter.observe(&opentelemetry::metrics::MeterProvider::meter(&provider, "selftrace"), &[]);
    let requests = produce(15);

    // A full batch goes at once: 503 (Retry-After: 1), then partial success.
    feed(&exporter, &requests[..5]);
    let m = wait_for(&exporter, |m| m.records_acknowledged + m.records_rejected == 5);
    assert_eq!((m.retries, m.records_acknowledged, m.records_rejected), (1, 3, 2), "{m:?}");
    // The next one is refused (400): dropped, never retried.
    feed(&exporter, &requests[5..10]);
    let m = wait_for(&exporter, |m| m.dropped_rejected == 5);
    assert_eq!((m.retries, m.dropped_rejected), (1, 5), "{m:?}");
    // The last one goes through.
    feed(&exporter, &requests[10..]);
    let m = exporter.shutdown().expect("clean shutdown");

    assert_eq!((m.records_acknowledged, m.records_rejected, m.dropped_rejected), (8, 2, 5), "{m:?}");
    assert_accounted(15, &m);
    let series = selftrace_test_support::metrics::collect(&provider, &metrics);
    let exported = |key: &str| selftrace_test_support::metrics::value(&series, key);
    assert_eq!(
        (
            exported("selftrace.exporter.records.acknowledged{}"),
            exported("selftrace.exporter.records.rejected{}"),
            exported("selftrace.exporter.records.dropped{reason=rejected}"),
            exported("selftrace.exporter.retries{}"),
            exported("selftrace.exporter.records.received{}"),
            exported("selftrace.exporter.records.in_flight{}"),
        ),
        (8, 2, 5, 1, 15, 0),
        "exported as the exporter counts"
    );
    let got = peer.requests(13, Duration::from_secs(10));
    let answers: Vec<_> = got.iter().map(|r| r.answer.as_str()).collect();
    assert_eq!(
        answers,
        [
            r#"{"retry_after": "1", "status": 503}"#,
            r#"{"message": "too old", "rejected": 2}"#,
            r#"{"status": 400}"#,
            "{}"
        ]
    );
    // The retried batch arrived once in a success (the peer reads bodies of
    // successes only): 5 + 5 records.
    assert_eq!(records(&got).len(), 10);
}

#[test]
fn an_endpoint_down_at_start_gets_every_record_once_it_is_up() {
    let port = free_port();
    let exporter = builder(&format!("http://127.0.0.1:{port}/v1/logs")).build().expect("down is not a build error");
    let requests = produce(20);
    feed(&exporter, &requests);
    let m = wait_for(&exporter, |m| m.retries >= 2);
    assert_eq!(m.records_acknowledged, 0, "{m:?}");
    assert!(m.retries >= 2, "{m:?}");

    let peer = Peer::start("http", port, "[]");
    let m = wait_for(&exporter, |m| m.records_acknowledged == 20);
    assert_eq!(m.records_acknowledged, 20, "{m:?}");
    let m = exporter.shutdown().expect("clean shutdown");
    assert_accounted(20, &m);
    assert_eq!(records(&peer.requests(20, Duration::from_secs(10))), expected_lines(&requests), "each record once");
}

#[test]
fn an_endpoint_that_dies_mid_run_costs_exactly_what_was_not_acknowledged() {
    let mut peer = Peer::start("http", 0, "[]");
    let exporter = builder(&peer.url("/v1/logs"))
        .with_retry(RetryPolicy {
            initial: Duration::from_millis(50),
            max_interval: Duration::from_millis(100),
            max_elapsed: Duration::from_millis(600),
        })
        .build()
        .expect("exporter starts");
    let requests = produce(20);
    feed(&exporter, &requests[..10]);
    assert_eq!(wait_for(&exporter, |m| m.records_acknowledged == 10).records_acknowledged, 10);

    peer.kill();
    feed(&exporter, &requests[10..]);
    wait_for(&exporter, |m| m.dropped_retries_exhausted == 10);
    let m = exporter.shutdown().expect("clean shutdown");
    assert_eq!((m.records_acknowledged, m.dropped_retries_exhausted), (10, 10), "{m:?}");
    assert!(m.retries >= 1, "{m:?}");
    assert_accounted(20, &m);
}

#[test]
fn a_slow_endpoint_times_out_and_its_records_are_counted() {
    let peer = Peer::start("http", 0, r#"[{"sleep": 3}, {"sleep": 3}, {"sleep": 3}, {"sleep": 3}, {"sleep": 3}]"#);
    let exporter = builder(&peer.url("/v1/logs"))
        .with_timeout(Duration::from_millis(200))
        .with_retry(RetryPolicy {
            initial: Duration::from_millis(50),
            max_interval: Duration::from_millis(100),
            max_elapsed: Duration::from_millis(500),
        })
        .build()
        .expect("exporter starts");
    feed(&exporter, &produce(7));
    wait_for(&exporter, |m| m.dropped_retries_exhausted == 7);
    let m = exporter.shutdown().expect("clean shutdown");
    assert_eq!((m.records_acknowledged, m.dropped_retries_exhausted), (0, 7), "{m:?}");
    assert!(m.retries >= 1, "timeouts are retried: {m:?}");
    assert_accounted(7, &m);
}

#[test]
fn a_batch_too_large_for_the_endpoint_is_dropped_and_counted() {
    let peer = Peer::start("http", 0, r#"[{"status": 413}]"#);
    let exporter = builder(&peer.url("/v1/logs")).with_max_batch_records(4).build().expect("exporter starts");
    feed(&exporter, &produce(4));
    let m = wait_for(&exporter, |m| m.dropped_rejected == 4);
    assert_eq!((m.dropped_rejected, m.retries), (4, 0), "413 is not retried: {m:?}");
    let m = exporter.shutdown().expect("clean shutdown");
    assert_accounted(4, &m);
    drop(peer);
}

#[test]
fn a_success_with_a_malformed_body_counts_as_acknowledged_and_is_flagged() {
    let peer = Peer::start("http", 0, r#"[{"raw": "not protobuf"}]"#);
    let exporter = builder(&peer.url("/v1/logs")).with_max_batch_records(3).build().expect("exporter starts");
    feed(&exporter, &produce(3));
    wait_for(&exporter, |m| m.records_acknowledged == 3);
    let m = exporter.shutdown().expect("clean shutdown");
    assert_eq!((m.records_acknowledged, m.malformed_responses), (3, 1), "{m:?}");
    assert_accounted(3, &m);
}

#[test]
fn grpc_retryable_and_refused_codes_are_counted() {
    let peer = Peer::start(
        "grpc",
        0,
        r#"[{"code": "UNAVAILABLE"}, {"rejected": 1, "message": "m"}, {"code": "INVALID_ARGUMENT"}]"#,
    );
    let exporter = builder(&peer.url(""))
        .with_protocol(Protocol::Grpc)
        .with_max_batch_records(3)
        .with_max_delay(Duration::from_secs(60))
        .build()
        .expect("exporter starts");
    let requests = produce(6);
    feed(&exporter, &requests[..3]);
    let m = wait_for(&exporter, |m| m.records_acknowledged + m.records_rejected == 3);
    assert_eq!((m.retries, m.records_acknowledged, m.records_rejected), (1, 2, 1), "{m:?}");
    feed(&exporter, &requests[3..]);
    wait_for(&exporter, |m| m.dropped_rejected == 3);
    let m = exporter.shutdown().expect("clean shutdown");
    assert_eq!((m.retries, m.dropped_rejected), (1, 3), "INVALID_ARGUMENT is not retried: {m:?}");
    assert_accounted(6, &m);
}

#[test]
fn an_https_endpoint_with_a_bad_certificate_is_refused_and_counted() {
    let dir = std::env::temp_dir().join(format!("selftrace-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs (.ci/run installs it)");
    assert!(status.success());
    let peer =
        Peer::start_with("http", 0, "[]", &["--tls", cert.to_str().expect("utf-8"), key.to_str().expect("utf-8")]);
    let exporter = builder(&format!("https://127.0.0.1:{}/v1/logs", peer.port))
        .with_retry(RetryPolicy {
            initial: Duration::from_millis(50),
            max_interval: Duration::from_millis(100),
            max_elapsed: Duration::from_millis(400),
        })
        .build()
        .expect("exporter starts");
    feed(&exporter, &produce(5));
    wait_for(&exporter, |m| m.dropped_retries_exhausted == 5);
    let m = exporter.shutdown().expect("clean shutdown");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!((m.records_acknowledged, m.dropped_retries_exhausted), (0, 5), "{m:?}");
    assert_accounted(5, &m);
    assert!(peer.requests(0, Duration::from_millis(300)).is_empty(), "no request got through the handshake");
}

#[test]
fn bad_settings_are_precise_errors_at_build() {
    let error =
        OtlpExporter::builder().with_env(false).with_endpoint("localhost:4318/v1/logs").build().expect_err("rejected");
    assert!(error.is_config());
    assert_eq!(
        std::error::Error::source(&error).map(ToString::to_string).as_deref(),
        Some(
            "endpoint: `localhost:4318/v1/logs` has no scheme; write `http://localhost:4318/v1/logs` or `https://localhost:4318/v1/logs`"
        )
    );
    // Each cause said once: the error, then its source.
    let error = OtlpExporter::builder().with_env(false).with_header("x-key", "a\nb").build().expect_err("rejected");
    assert_eq!(error.to_string(), "invalid OTLP exporter configuration");
    assert_eq!(
        std::error::Error::source(&error).map(ToString::to_string).as_deref(),
        Some("headers: the value of `x-key` is not a valid header value")
    );
}

#[test]
fn shutdown_sends_what_is_pending_and_counts_what_the_deadline_leaves() {
    // Pending in a batch that would wait a minute: sent at shutdown.
    let peer = Peer::start("http", 0, "[]");
    let exporter =
        builder(&peer.url("/v1/logs")).with_max_delay(Duration::from_secs(60)).build().expect("exporter starts");
    feed(&exporter, &produce(25));
    let m = exporter.shutdown().expect("clean shutdown");
    assert_eq!(m.records_acknowledged, 25, "{m:?}");
    assert_eq!(exporter.shutdown().expect("a second call"), m, "idempotent");
    assert_accounted(25, &m);

    // An endpoint that never answers in time: the deadline leaves them.
    let stuck = Peer::start("http", 0, r#"[{"sleep": 10}, {"sleep": 10}]"#);
    let exporter = builder(&stuck.url("/v1/logs"))
        .with_max_delay(Duration::from_secs(60))
        .with_shutdown_timeout(Duration::from_millis(500))
        .build()
        .expect("exporter starts");
    feed(&exporter, &produce(9));
    let started = Instant::now();
    let m = exporter.shutdown().expect("clean shutdown");
    assert!(started.elapsed() < Duration::from_secs(8), "shutdown kept to its deadline");
    assert_eq!((m.records_acknowledged, m.dropped_shutdown), (0, 9), "{m:?}");
    assert_accounted(9, &m);
}

#[test]
fn a_burst_into_a_busy_exporter_is_dropped_at_the_channel_and_counted_on_both_sides() {
    // Each batch takes 300 ms to answer; the channel holds 8 requests.
    let peer = Peer::start("http", 0, &format!("[{}]", vec![r#"{"sleep": 0.3}"#; 40].join(",")));
    let exporter = builder(&peer.url("/v1/logs"))
        .with_channel_capacity(8)
        .with_max_batch_records(8)
        .with_shutdown_timeout(Duration::from_secs(20))
        .build()
        .expect("exporter starts");
    // One request per event, straight into the exporter's channel.
    let layer = OtlpTracingLayer::builder(exporter.destination()).with_flood_limit(None).build();
    let handle = layer.handle();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..1000_i64 {
            tracing::info!(target: "burst", i);
        }
    });
    let layer_metrics = handle.metrics();
    let m = exporter.shutdown().expect("clean shutdown");

    assert_eq!(layer_metrics.received(), 1000);
    let full = layer_metrics.dropped(DropReason::ChannelFull);
    assert!(full > 0, "the burst overflowed the channel: {layer_metrics:?}");
    assert_eq!(m.dropped_queue_full, full, "both sides count the same refusals");
    assert_eq!(m.records_acknowledged, layer_metrics.delivered, "{m:?}");
    assert_accounted(1000, &m);
    assert_eq!(
        records(&peer.requests(m.records_acknowledged as usize, Duration::from_secs(10))).len() as u64,
        m.records_acknowledged
    );
}

#[test]
fn the_exporters_layer_batches_per_thread_and_flushes_on_its_timer() {
    let peer = Peer::start("http", 0, "[]");
    let exporter = builder(&peer.url("/v1/logs"))
        .with_service_name("batched")
        .with_max_delay(Duration::from_millis(100))
        .build()
        .expect("exporter starts");
    let layer = exporter.layer_builder().with_flood_limit(None).build();
    let handle = layer.handle();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let (release, parked) = std::sync::mpsc::channel::<()>();
    // Parked on a shared receiver until `release` is dropped.
    let parked = std::sync::Arc::new(std::sync::Mutex::new(parked));
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let (dispatch, parked) = (dispatch.clone(), parked.clone());
            thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    for i in 0..500_i64 {
                        tracing::info!(target: "batched", t, i, "from a thread");
                    }
                });
                // Parked, not ended (an ending thread flushes its buffer):
                // only the exporter's timer can flush it.
                let _ = parked.lock().map(|p| p.recv());
            })
        })
        .collect();

    let m = wait_for(&exporter, |m| m.records_acknowledged == 1000);
    assert_eq!(m.records_acknowledged, 1000, "the timer flushed both threads' buffers: {m:?}");
    assert!(m.requests_received <= 20, "a request per buffer, not per event: {m:?}");
    let buffers = exporter.buffer_metrics();
    assert_eq!((buffers.events_received, buffers.events_delivered), (1000, 1000), "{buffers:?}");
    assert_eq!(handle.metrics().delivered, 1000);
    let got = peer.requests(1000, Duration::from_secs(10));
    assert!(got.iter().flat_map(|r| &r.resources).all(|r| r.contains(&selftrace_tests::hex(b"batched"))));
    assert!(threads.iter().all(|t| !t.is_finished()), "the threads were still alive");
    // Every parked thread wakes when the channel closes.
    drop(release);
    for thread in threads {
        thread.join().expect("joined");
    }

    // After shutdown, events are refused and counted once, by the layer
    // (never delivered by it and dropped again by the buffers).
    let m = exporter.shutdown().expect("clean shutdown");
    tracing::dispatcher::with_default(&dispatch, || tracing::info!(target: "batched", "too late"));
    assert_eq!(handle.metrics().dropped(DropReason::ShutDown), 1);
    assert_eq!(handle.metrics().delivered, 1000);
    let buffers = exporter.buffer_metrics();
    assert_eq!(buffers.events_received, 1000, "{buffers:?}");
    assert_accounted(1000, &m);
}

#[test]
fn oteltap_receives_exactly_what_the_exporter_says_it_acknowledged() {
    let tap = Oteltap::start();
    let exporter = builder(&format!("http://127.0.0.1:{}/v1/logs", tap.port)).build().expect("exporter starts");
    let layer = exporter.layer_builder().with_flood_limit(None).build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..120_i64 {
            tracing::info!(target: "app", i, "hello from selftrace");
        }
    });
    let m = exporter.shutdown().expect("clean shutdown");
    let got = tap.records(120);
    assert_eq!(m.records_acknowledged, 120, "{m:?}");
    assert_eq!(got.len(), 120);
    assert!(got.iter().all(|l| l.contains("hello from selftrace")), "{:?}", got.first());
    assert_accounted(120, &m);
}

/// `with_endpoint("http://host:port")`, as `OTEL_EXPORTER_OTLP_ENDPOINT`
/// and the YAML take it: the logs path is added (it used to post to `/`
/// and get 404).
#[test]
fn an_endpoint_without_a_path_gets_the_logs_path() {
    let peer = Peer::start("http", 0, "[]");
    let exporter = builder(&peer.url("")).build().expect("builds");
    assert_eq!(exporter.endpoint(), format!("{}/v1/logs", peer.url("")));
    let requests = produce(10);
    feed(&exporter, &requests);
    let m = exporter.shutdown().expect("clean shutdown");
    assert_eq!((m.records_acknowledged, m.dropped_rejected), (10, 0), "{m:?}");
}

/// A batch is sent when the endpoint answers it: attempts at an endpoint
/// that is not there are retries and, in the end, drops, never "sent".
#[test]
fn attempts_at_a_dead_endpoint_are_not_counted_as_sent() {
    let exporter = OtlpExporter::builder()
        .with_env(false)
        .with_endpoint(format!("http://127.0.0.1:{}/v1/logs", free_port()))
        .with_max_delay(Duration::from_millis(20))
        .with_retry(RetryPolicy {
            initial: Duration::from_millis(20),
            max_interval: Duration::from_millis(40),
            max_elapsed: Duration::from_millis(200),
        })
        .build()
        .expect("builds");
    let requests = produce(5);
    feed(&exporter, &requests);
    wait_for(&exporter, |m| m.dropped_retries_exhausted == 5);
    let m = exporter.shutdown().expect("clean shutdown");
    assert_eq!((m.batches_sent, m.records_sent, m.bytes_sent), (0, 0, 0), "{m:?}");
    assert!(m.retries > 0, "{m:?}");
    assert_eq!(m.dropped_retries_exhausted, 5, "{m:?}");
}

/// The exporter's timer flushes the per-thread buffers straight into its
/// batcher: a storm that keeps its channel (and its memory) full cannot
/// make it refuse its own flush.
#[test]
fn a_timer_flush_is_delivered_while_a_storm_fills_the_channel() {
    // The first request is held 2 s: the storm fills the memory meanwhile.
    let peer = Peer::start("http", 0, r#"[{"sleep": 2.0}]"#);
    let exporter =
        builder(&peer.url("/v1/logs")).with_channel_capacity(4).with_max_queue_bytes(64 << 10).build().expect("builds");
    let storm = produce(1);
    let sender = exporter.sender();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let storming = {
        let (stop, request) = (stop.clone(), storm[0].clone());
        thread::spawn(move || {
            let mut refused = 0_u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                refused += u64::from(sender.try_send(request.clone()).is_err());
            }
            refused
        })
    };
    thread::sleep(Duration::from_millis(100));
    let node = exporter.node_logs().shared(selftrace::Node::new("storm.node"));
    for i in 0..10_i64 {
        selftrace::otel_info!(node, "node.event", i);
    }
    // Several timer flushes while the storm goes on.
    thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let refused = storming.join().expect("the storm ends");
    assert!(refused > 0, "the storm filled the channel");

    let buffers = exporter.buffer_metrics();
    assert_eq!(buffers.events_dropped(DropReason::ChannelFull), 0, "{buffers:?}");
    assert_eq!(buffers.events_delivered, 10, "{buffers:?}");
    let m = exporter.shutdown().expect("clean shutdown");
    assert_eq!(m.dropped_queue_full, refused, "{m:?}");
    let node_records = peer
        .requests(m.records_acknowledged as usize, Duration::from_secs(10))
        .iter()
        .flat_map(|r| r.records.clone())
        .filter(|r| r.starts_with(&selftrace_tests::hex(b"storm.node")))
        .count();
    assert_eq!(node_records, 10);
}
