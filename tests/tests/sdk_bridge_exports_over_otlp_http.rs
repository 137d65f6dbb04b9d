//! End to end: third-party and node logs → selftrace → SDK bridge → the
//! OpenTelemetry SDK's batch processor → `opentelemetry-otlp` over HTTP
//! (protobuf) → a real receiver process (Python, `opentelemetry-proto`
//! behind `http.server`), which decodes what arrived.
//!
//! Needs `python3` (or `$SELFTRACE_PYTHON`) with `opentelemetry-proto`; a
//! missing package fails the test, it is never skipped.

use std::{
    io::{BufRead, BufReader, Read as _},
    process::{Child, ChildStdout, Command, Stdio},
};

use opentelemetry_sdk::Resource;
use selftrace::{Node, otel_info, otel_warn};
use selftrace_bridge::{SdkBridge, otlp_http_provider};
use selftrace_tests::{hex, python, python_script};
use tracing_subscriber::layer::SubscriberExt;

struct Receiver {
    child: Child,
    stdout: BufReader<ChildStdout>,
    port: u16,
}

impl Receiver {
    fn start() -> Self {
        let python = python();
        let script = python_script("otlp_http_receiver.py");
        let mut child = Command::new(&python)
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {python}: {e}; install Python 3 and `pip install opentelemetry-proto`")
            });
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut first = String::new();
        stdout.read_line(&mut first).expect("read the receiver's first line");
        let port = first.trim().strip_prefix("listening ").and_then(|p| p.parse().ok()).unwrap_or_else(|| {
            let _ = child.kill();
            panic!(
                "{python} {} did not start (is `opentelemetry-proto` installed? `pip install opentelemetry-proto`): {first:?}",
                script.display()
            )
        });
        Self { child, stdout, port }
    }

    /// Stops the receiver and returns every line it printed.
    fn stop(mut self) -> Vec<String> {
        drop(self.child.stdin.take());
        let lines: Vec<String> = self.stdout.by_ref().lines().map(|l| l.expect("utf-8 line")).collect();
        let status = self.child.wait().expect("receiver exits");
        assert!(status.success(), "receiver failed: {status}");
        lines
    }
}

impl Drop for Receiver {
    /// A failing test must not leave the receiver running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn logs_reach_a_real_otlp_http_receiver_through_the_sdk() {
    let receiver = Receiver::start();
    let endpoint = format!("http://127.0.0.1:{}/v1/logs", receiver.port);
    let resource = Resource::builder().with_service_name("selftrace-e2e").build();
    let bridge =
        SdkBridge::builder(otlp_http_provider(&endpoint, resource).expect("exporter")).spawn().expect("thread");
    let layer = bridge.layer();
    let layer_metrics = layer.handle();
    let nodes = bridge.node_logs();
    let node = nodes.shared(Node::new("receiver.otlp.0"));

    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info!(name: "db.connected", target: "db", pool = 16_u64, host = "db.local", "connected");
        otel_info!(node, "receiver.started", port = 4318_i64, "listening");
        let _in_node = node.enter();
        tracing::warn!(target: "hyper", retries = 3_i64, "slow peer");
        otel_warn!(node, "receiver.backpressure", queued = 128_i64);
    });
    nodes.shutdown();
    let metrics = bridge.shutdown().expect("flushed and shut down");
    assert_eq!(metrics.records_emitted, 4);
    // The layer counts the in-scope `hyper` event as delivered to the node,
    // and the node logs counts it with the node's own records.
    assert_eq!((layer_metrics.metrics().delivered, nodes.metrics().events_delivered), (2, 3));

    let lines = receiver.stop();
    assert!(!lines.iter().any(|l| l.starts_with("malformed|")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.starts_with("request|application/x-protobuf|")), "{lines:#?}");
    let resource = lines.iter().find(|l| l.starts_with("resource|")).expect("a resource line");
    assert!(resource.contains(&format!("{}=s:{}", hex(b"service.name"), hex(b"selftrace-e2e"))), "{resource}");

    let records: Vec<&String> =
        lines.iter().filter(|l| !l.starts_with("request|") && !l.starts_with("resource|")).collect();
    assert_eq!(records.len(), 4, "{lines:#?}");
    let find = |scope: &str, body: &str| {
        let prefix = format!("{}|", hex(scope.as_bytes()));
        let body = format!("|s:{}|", hex(body.as_bytes()));
        records
            .iter()
            .find(|l| l.starts_with(&prefix) && l.contains(&body))
            .unwrap_or_else(|| panic!("no record of scope {scope} with body {body}: {records:#?}"))
            .split('|')
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    // scope|time|observed|severity|text|event_name|body|attributes|dropped|trace_id|span_id|flags
    let db = find("db", "connected");
    assert_eq!((db[3].as_str(), db[4].as_str(), db[5].as_str()), ("9", "INFO", hex(b"db.connected").as_str()));
    assert_ne!(db[1], "0", "the event's time is exported");
    assert_eq!(db[7], format!("{}=i:16;{}=s:{}", hex(b"pool"), hex(b"host"), hex(b"db.local")));
    let started = find("receiver.otlp.0", "listening");
    assert_eq!(started[5], hex(b"receiver.started"));
    assert_eq!(started[7], format!("{}=i:4318", hex(b"port")));
    let slow = find("receiver.otlp.0", "slow peer");
    assert_eq!((slow[3].as_str(), slow[7].clone()), ("13", format!("{}=i:3", hex(b"retries"))));
    let backpressure = records
        .iter()
        .find(|l| l.contains(&hex(b"receiver.backpressure")))
        .expect("the node's warning, which has no body");
    assert!(backpressure.contains(&format!("|-|{}=i:128|", hex(b"queued"))), "{backpressure}");
}
