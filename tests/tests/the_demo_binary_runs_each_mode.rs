//! The README's first command, in each mode: the demo exits by itself, its
//! counters add up, and its own logs show up where the mode says, with
//! their node. Then ITR-only mode exporting over OTLP/HTTP to a real
//! receiver process (Python's `oteltap`, installed by `scripts/test`): what
//! arrives is decoded there and checked here.

use std::{
    io::{BufRead as _, BufReader},
    net::TcpListener,
    process::{Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use selftrace_tests::{demo_binary, python};

fn demo(args: &[&str]) -> String {
    let output = Command::new(demo_binary()).args(args).output().expect("the demo runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "demo {args:?} failed: {stderr}\n{stdout}");
    assert!(stdout.contains("== every event accounted for"), "{stdout}");
    // selftrace's counters exported through the SDK's periodic reader, the
    // last export equal to the final counters.
    assert!(stdout.contains("== metrics (OpenTelemetry, periodic reader) selftrace.layer: "), "{stdout}");
    assert!(stdout.contains("== the exported metrics match the counters"), "{stdout}");
    stdout
}

// The ITR pipeline's console exporter prints `<time>  INFO <scope> <event>:` /
// `<time>  INFO <scope>: <body>`; the SDK's stdout exporter prints
// `Instrumentation Scope: InstrumentationScope { name: "<scope>"`.
const ITR_COMPONENT: &str = "INFO main/receiver/generator generator.batch.generated:";
const ITR_LIBRARY_IN_NODE: &str = "INFO main/receiver/generator: sampled sensors";
const ITR_THIRD_PARTY: &str = "INFO pool: connection pool stats";
const SDK_COMPONENT: &str = "InstrumentationScope { name: \"main/receiver/generator\"";
const SDK_THIRD_PARTY: &str = "InstrumentationScope { name: \"pool\"";

#[test]
fn itr_only() {
    let out = demo(&["--mode", "itr-only", "--seconds", "1.5"]);
    assert!(out.contains("mode itr-only"));
    for line in [ITR_COMPONENT, ITR_LIBRARY_IN_NODE, ITR_THIRD_PARTY] {
        assert!(out.contains(line), "missing {line:?}:\n{out}");
    }
    assert!(!out.contains("InstrumentationScope"), "no SDK:\n{out}");
    assert!(!out.contains("INFO internal_telemetry/"), "nothing from the zone:\n{out}");
}

#[test]
fn hybrid() {
    let out = demo(&["--mode", "hybrid", "--seconds", "1.5"]);
    for line in [ITR_COMPONENT, ITR_LIBRARY_IN_NODE, SDK_THIRD_PARTY] {
        assert!(out.contains(line), "missing {line:?}:\n{out}");
    }
    assert!(!out.contains(ITR_THIRD_PARTY), "third-party logs outside nodes go to the SDK:\n{out}");
    assert!(!out.contains(SDK_COMPONENT), "component logs go to the pipeline:\n{out}");
}

#[test]
fn sdk_only() {
    let out = demo(&["--mode", "sdk-only", "--seconds", "1.5"]);
    for line in [SDK_COMPONENT, SDK_THIRD_PARTY, "Body: String(Owned(\"sampled sensors\"))"] {
        assert!(out.contains(line), "missing {line:?}:\n{out}");
    }
    assert!(!out.contains(ITR_COMPONENT) && !out.contains("receiver internal_telemetry"), "no pipeline:\n{out}");
}

#[test]
fn a_bad_configuration_exits_with_a_precise_message() {
    let path = std::env::temp_dir().join(format!("selftrace-bad-{}.yaml", std::process::id()));
    std::fs::write(&path, "service:\n  telemetry:\n    logs:\n      levl: info\n").expect("temp file");
    let output = Command::new(demo_binary()).arg("--config").arg(&path).output().expect("runs");
    let _ = std::fs::remove_file(&path);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(":4:7: `service.telemetry.logs.levl`: unknown field `levl`"), "{stderr}");
}

#[test]
fn itr_only_exports_over_otlp_http_to_a_real_receiver() {
    let port = TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
    let mut tap = Command::new(python())
        .args(["-m", "oteltap", "--port", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    let (lines_tx, lines) = mpsc::channel::<String>();
    let stdout = tap.stdout.take().expect("piped");
    let reader = thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let first = lines.recv_timeout(Duration::from_secs(30));
    if !matches!(&first, Ok(l) if l.starts_with("Listening")) {
        let _ = tap.kill();
        let output = tap.wait_with_output().expect("waits");
        panic!(
            "oteltap did not start (scripts/test installs it: pip install oteltap): {first:?} {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let endpoint = format!("http://127.0.0.1:{port}/v1/logs");
    let out = demo(&["--mode", "itr-only", "--seconds", "2", "--otlp-endpoint", &endpoint]);
    // What the pipeline sent, from the demo's counters.
    // "receiver <id>: a requests (b records) in, c records in d batches out, ..."
    let sent: usize = out
        .lines()
        .find(|l| l.starts_with("receiver internal_telemetry/"))
        .and_then(|l| l.split("in, ").nth(1))
        .and_then(|after| after.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the receiver's line");
    // The demo's OTLP exporter shut down (flushed) before the demo exited:
    // read what the receiver prints until every record sent is there.
    // oteltap prints metrics too (the demo sends selftrace's to the same
    // endpoint's /v1/metrics): a metric has data points, a record never.
    let is_metric = |line: &str| line.contains("\"dataPoints\"");
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut records, mut metrics): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    while records.len() < sent {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else { break };
        match lines.recv_timeout(left) {
            Ok(line) if line.starts_with('{') && is_metric(&line) => metrics.push(line),
            Ok(line) if line.starts_with('{') => records.push(line),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let _ = tap.kill();
    let _ = tap.wait();
    let _ = reader.join();
    // Anything printed beyond them (a record twice) is counted too.
    for line in lines.try_iter().filter(|l| l.starts_with('{')) {
        if is_metric(&line) { metrics.push(line) } else { records.push(line) }
    }
    assert!(
        metrics.iter().any(|m| m.contains("selftrace.layer.records.received")),
        "selftrace's metrics over OTLP/HTTP: {metrics:#?}"
    );

    assert!(sent > 0, "{out}");
    assert_eq!(records.len(), sent, "every record the pipeline sent arrived:\n{records:#?}\n{out}");
    let count = |needle: &str| records.iter().filter(|r| r.contains(needle)).count();
    assert!(count("\"eventName\":\"generator.batch.generated\"") >= 2, "{records:#?}");
    assert!(count("\"stringValue\":\"sampled sensors\"") >= 2, "{records:#?}");
    assert!(count("\"stringValue\":\"connection pool stats\"") >= 2, "{records:#?}");
    // INFO, the stuck sensor's WARN retries, cut by flood control to 10 and
    // one summary, and after the demo's level change halfway, DEBUG.
    let by_severity = count("\"severityNumber\":9") + count("\"severityNumber\":13") + count("\"severityNumber\":5");
    assert_eq!(by_severity, records.len(), "{records:#?}");
    assert!(count("\"eventName\":\"batch.flushed\"") >= 1, "a debug record after the level change: {records:#?}");
    assert!(out.contains("== level changed at runtime: info -> debug"), "{out}");
    assert_eq!(count("sensor not responding"), 10, "{records:#?}");
    assert_eq!(count("\"stringValue\":\"suppressed "), 1, "one flood summary: {records:#?}");
}
