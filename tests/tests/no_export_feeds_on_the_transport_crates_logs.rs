//! The demo engine at `level: trace`, exporting over the network, as a real
//! process (the global subscriber, every thread of the transport stacks):
//! the transport crates' own events (hyper, h2, reqwest, tonic, ...) never
//! reach the endpoint, whichever way the logs leave: selftrace's exporter
//! over OTLP/HTTP or OTLP/gRPC, or the SDK bridge with `opentelemetry-otlp`,
//! whose reqwest client logs on a thread of its own (the loop of
//! opentelemetry-rust #2877: each export logged events for the next). What
//! the endpoint received is exactly what the exporting side says it sent.

use std::time::Duration;

use selftrace_tests::{demo_binary, hex, peer::Peer};

const TRANSPORT: [&str; 7] = ["h2", "hyper", "hyper_util", "tonic", "tower", "reqwest", "rustls"];

/// Runs the demo (SDK-only mode, `level: trace`) with `processors`; its
/// stdout and every record line the peer received.
fn run(peer: &Peer, processors: &str) -> (String, Vec<String>) {
    run_with(peer, include_str!("../../examples/configs/sdk-only.yaml"), "", processors, &[])
}

/// Runs the demo at `level: trace` with the pipelines of `base`, the
/// `logs` keys `logs_extra`, `processors` and `args`.
fn run_with(peer: &Peer, base: &str, logs_extra: &str, processors: &str, args: &[&str]) -> (String, Vec<String>) {
    let dir = std::env::temp_dir().join(format!("selftrace-transport-{}-{}", std::process::id(), peer.port));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("config.yaml");
    let pipelines = &base[base.find("pipelines:").expect("a pipelines section")..];
    let config = format!(
        "service:\n  telemetry:\n    resource:\n      service.name: transport-test\n    logs:\n      level: trace\n{logs_extra}      processors:\n{processors}\n{pipelines}"
    );
    std::fs::write(&path, config).expect("written");
    let output = std::process::Command::new(demo_binary())
        .arg("--config")
        .arg(&path)
        .args(["--seconds", "3"])
        .args(args)
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .expect("the demo runs");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "demo failed: {}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("== every event accounted for"), "{stdout}");
    let records = peer.requests(usize::MAX, Duration::from_secs(2)).into_iter().flat_map(|r| r.records).collect();
    (stdout, records)
}

/// The number just before (`before`) or just after `label` on the line
/// starting with `line`.
fn number(stdout: &str, line: &str, label: &str, before: bool) -> u64 {
    let words = |text: &str| {
        text.split([' ', ',', ':', '(', ')']).filter(|w| !w.is_empty()).map(str::to_owned).collect::<Vec<_>>()
    };
    stdout
        .lines()
        .find(|l| l.starts_with(line))
        .and_then(|l| l.split_once(label))
        .and_then(|(head, tail)| if before { words(head).pop() } else { words(tail).into_iter().next() })
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number by `{label}` on `{line}` in:\n{stdout}"))
}

fn assert_no_transport_records(records: &[String]) {
    let scopes: Vec<String> = TRANSPORT.iter().map(|t| hex(t.as_bytes())).collect();
    let leaked: Vec<&String> = records
        .iter()
        .filter(|r| {
            let scope = r.split('|').next().unwrap_or_default();
            scopes.iter().any(|t| scope == t || scope.starts_with(&format!("{t}3a3a")))
        })
        .collect();
    assert!(leaked.is_empty(), "{} transport records reached the endpoint: {:?}", leaked.len(), leaked.first());
}

fn native_exporter(protocol: &str) {
    let peer = Peer::start(protocol, 0, "[]");
    let endpoint = if protocol == "grpc" { peer.url("") } else { peer.url("/v1/logs") };
    let processors = format!(
        "        - batch:\n            exporter:\n              otlp: {{ endpoint: \"{endpoint}\", protocol: {} }}\n",
        if protocol == "grpc" { "grpc" } else { "http/protobuf" }
    );
    let (stdout, records) = run(&peer, &processors);
    let acknowledged = number(&stdout, "otlp exporter:", "acknowledged", true);
    assert!(acknowledged > 0, "{stdout}");
    assert_eq!(records.len() as u64, acknowledged, "{stdout}");
    assert_no_transport_records(&records);
}

#[test]
fn selftraces_exporter_at_trace_over_http_exports_no_transport_event() {
    native_exporter("http");
}

#[test]
fn selftraces_exporter_at_trace_over_grpc_exports_no_transport_event() {
    native_exporter("grpc");
}

#[test]
fn the_sdk_path_at_trace_over_otlp_http_does_not_feed_on_reqwests_logs() {
    let peer = Peer::start("http", 0, "[]");
    let processors = format!(
        "        - simple:\n            exporter:\n              otlp: {{ endpoint: \"{}\" }}\n",
        peer.url("/v1/logs")
    );
    let (stdout, records) = run(&peer, &processors);
    // reqwest's client thread logs on every export: kept out, counted.
    assert!(number(&stdout, "third-party (layer):", "(discarded", false) > 0, "{stdout}");
    assert_no_transport_records(&records);
    let emitted = number(&stdout, "sdk bridge:", "records_emitted", false);
    assert_eq!(records.len() as u64, emitted, "{stdout}");
}

#[test]
fn hybrid_mode_at_trace_with_both_pipelines_exporting_feeds_on_nothing() {
    // Third-party logs through selftrace's exporter; component logs through
    // the internal pipeline, whose own otlp exporter (on the demo's zone
    // runtime) sends to the same endpoint.
    let peer = Peer::start("http", 0, "[]");
    let endpoint = peer.url("/v1/logs");
    let processors =
        format!("        - batch:\n            exporter:\n              otlp: {{ endpoint: \"{endpoint}\" }}\n");
    let (stdout, records) = run_with(
        &peer,
        include_str!("../../examples/configs/hybrid.yaml"),
        "      internal_collection: { enabled: true, flush_interval: 200ms }\n",
        &processors,
        &["--otlp-endpoint", &endpoint],
    );
    assert!(stdout.contains("(mode hybrid)"), "{stdout}");
    let acknowledged = number(&stdout, "otlp exporter:", "acknowledged", true);
    let sent = number(&stdout, "receiver ", "in,", false);
    assert!(acknowledged > 0 && sent > 0, "{stdout}");
    // Every record the endpoint got came from one of the two, once.
    assert_eq!(records.len() as u64, acknowledged + sent, "{stdout}");
    assert_no_transport_records(&records);
}
