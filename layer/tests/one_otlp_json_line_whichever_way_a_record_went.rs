//! One OTLP/JSON writer: the same event printed by the layer's
//! `Destination::OtlpJson`, by node logs printing OTLP/JSON for a layer
//! (`Destination::Buffered`), and by a node's own logger, is the same line
//! (the same resource, scope, values cut at the same limit), save for the
//! time it was stamped.
//!
//! The lines go to stderr, so the test runs itself again as a child and
//! reads them from the child's output.

use std::{process::Command, sync::Arc};

use selftrace::{
    Destination, EncoderLimits, Node, NodeLogs, OtlpTracingLayer,
    console::ConsoleStream,
    encoder::{DEFAULT_BUFFER_CAPACITY, DEFAULT_MAX_RECORD_BYTES, TRUNCATION_MARKER},
};
use tracing_subscriber::layer::SubscriberExt;

/// Values longer than this are cut (by both writers).
const MAX_VALUE_BYTES: usize = 64;

fn limits() -> EncoderLimits {
    EncoderLimits::new(DEFAULT_BUFFER_CAPACITY, DEFAULT_MAX_RECORD_BYTES, MAX_VALUE_BYTES).expect("valid limits")
}

#[derive(Debug)]
#[expect(dead_code, reason = "read through Debug")]
struct Config {
    name: &'static str,
    peers: Vec<u32>,
}

fn event() {
    let long = "é".repeat(100);
    let config = Config { name: "pipeline\n\"main\"", peers: (0..40).collect() };
    tracing::warn!(
        name: "user.login",
        target: "app",
        user = long.as_str(),
        attempts = 3_u64,
        ok = false,
        ratio = 0.5,
        ?config,
        "login from \u{1b}[2J \"{}\"",
        long
    );
}

/// Prints the event three ways on stderr; run as a child by
/// `the_layer_and_node_logs_print_the_same_json`.
#[test]
fn print_one_event_three_ways() {
    let json = Destination::OtlpJson(ConsoleStream::Stderr);
    let layer = OtlpTracingLayer::builder(json.clone())
        .with_service_name("json-test")
        .with_limits(limits())
        .with_flood_limit(None)
        .build();
    let layer_handle = layer.handle();
    let nodes = NodeLogs::builder(json).with_service_name("json-test").with_limits(limits()).build();
    let through_nodes = OtlpTracingLayer::builder(Destination::Buffered(nodes.clone()))
        .with_service_name("json-test")
        .with_limits(limits())
        .with_flood_limit(None)
        .build();
    let through_nodes_handle = through_nodes.handle();
    let direct = Arc::new(tracing_subscriber::registry().with(layer));
    let buffered = Arc::new(tracing_subscriber::registry().with(through_nodes));

    tracing::subscriber::with_default(direct, event);
    tracing::subscriber::with_default(buffered.clone(), event);
    // A node whose id is the event's target: its records' scope.
    let node = nodes.shared(Node::new("app"));
    tracing::subscriber::with_default(buffered, || node.in_scope(event));

    assert_eq!(layer_handle.metrics().delivered, 1);
    assert_eq!(through_nodes_handle.metrics().delivered, 2);
    let metrics = nodes.metrics();
    assert_eq!(metrics.events_received, 2, "{metrics:?}");
    assert_eq!(metrics.events_delivered, 2, "{metrics:?}");
    // The two long values and the Debug output are cut, in each record.
    assert_eq!(metrics.truncated_values, 2 * 3, "{metrics:?}");
}

#[test]
fn the_layer_and_node_logs_print_the_same_json() {
    let exe = std::env::current_exe().expect("test binary path");
    let out = Command::new(exe)
        .args(["--exact", "print_one_event_three_ways", "--nocapture", "--test-threads=1"])
        .output()
        .expect("run the child");
    let stderr = String::from_utf8(out.stderr).expect("OTLP/JSON lines are UTF-8");
    assert!(out.status.success(), "child failed: {}\n{stderr}", String::from_utf8_lossy(&out.stdout));
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("{\"resourceLogs\"")).collect();
    assert_eq!(lines.len(), 3, "{stderr}");

    let without_time: Vec<String> = lines.iter().map(|l| without_times(l)).collect();
    assert_eq!(without_time[0], without_time[1], "the layer and a layer into node logs");
    assert_eq!(without_time[0], without_time[2], "the layer and a node's own logger");

    let line = &without_time[0];
    for part in [
        r#""resource":{"attributes":[{"key":"service.name","value":{"stringValue":"json-test"}}]}"#,
        r#""scope":{"name":"app"}"#,
        r#""severityNumber":13,"severityText":"WARN","eventName":"user.login""#,
        r#"{"key":"attempts","value":{"intValue":"3"}}"#,
        r#"{"key":"ok","value":{"boolValue":false}}"#,
        r#"{"key":"ratio","value":{"doubleValue":0.5}}"#,
        r#""droppedAttributesCount":3"#,
    ] {
        assert!(line.contains(part), "{part} in {line}");
    }
    // Every value cut at the same UTF-8 boundary, with the marker; control
    // characters escaped per RFC 8259.
    let cut = format!(r#"{{"key":"user","value":{{"stringValue":"{}{TRUNCATION_MARKER}"}}}}"#, cut_prefix());
    assert!(line.contains(&cut), "{cut} in {line}");
    assert!(line.contains(r#""body":{"stringValue":"login from \u001b[2J \"é"#), "{line}");
    assert!(!line.bytes().any(|b| b < 0x20), "{line}");
}

/// The longest prefix of the long value that fits with the marker in the
/// value limit, at a character boundary.
fn cut_prefix() -> String {
    let room = MAX_VALUE_BYTES - TRUNCATION_MARKER.len();
    "é".repeat(room / "é".len())
}

/// `line` without its two time stamps (the only fields that differ).
fn without_times(line: &str) -> String {
    let mut out = line.to_owned();
    for key in ["\"timeUnixNano\":\"", "\"observedTimeUnixNano\":\""] {
        let start = out.find(key).unwrap_or_else(|| panic!("{key} in {line}"));
        let end = start + key.len() + out[start + key.len()..].find("\",").expect("a closing quote") + 2;
        out.replace_range(start..end, "");
    }
    out
}
