//! OTLP/JSON lines (`selftrace::json`), checked by an independent parser:
//! each line is strict JSON, parses with protobuf's own JSON parser
//! (Python's `google.protobuf.json_format.Parse`) into an
//! `ExportLogsServiceRequest`, and equals the request decoded from the
//! protobuf bytes it was written from.
//!
//! Needs `python3` (or `$SELFTRACE_PYTHON`) with `opentelemetry-proto`
//! installed; a missing package fails the test: it is never skipped.

use std::path::PathBuf;

use proptest::{
    strategy::{Strategy as _, ValueTree as _},
    test_runner::TestRunner,
};
use selftrace::{
    Destination, OtlpBytes, OtlpBytesChannel, OtlpTracingLayer,
    encoder::{EncoderLimits, OtlpResource, StatefulOtlpEncoder},
    spans::SpanFields,
    view::{AnyValue, LogRecordView, RecordVisitor, Severity, TraceContext},
};
use selftrace_test_support::record::record_strategy;
use selftrace_tests::{peer::free_port, python, python_script};
use tracing_subscriber::layer::SubscriberExt;

/// Runs `json_lines_match.py` on the JSON lines of `requests`; panics
/// unless every line matches its request.
fn check_in_python(requests: &[OtlpBytes]) -> Vec<String> {
    let dir = std::env::temp_dir().join(format!("selftrace-json-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut lines = String::new();
    let mut paths: Vec<PathBuf> = Vec::new();
    for (i, request) in requests.iter().enumerate() {
        selftrace::json::write_request(&mut lines, request.as_bytes()).expect("our bytes decode");
        lines.push('\n');
        let path = dir.join(format!("request-{i}.bin"));
        std::fs::write(&path, request.as_bytes()).expect("write request");
        paths.push(path);
    }
    let lines_path = dir.join("lines.json");
    std::fs::write(&lines_path, &lines).expect("write lines");
    let python = python();
    let script = python_script("json_lines_match.py");
    let output =
        std::process::Command::new(&python).arg(&script).arg(&lines_path).args(&paths).output().unwrap_or_else(|e| {
            panic!("cannot run {python}: {e}; install Python 3 with `pip install opentelemetry-proto`")
        });
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "{python} {}:\n{}{}",
        script.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), format!("ok {}", requests.len()));
    lines.lines().map(str::to_owned).collect()
}

/// Lines a process printed, parsed one by one by protobuf's JSON parser in
/// Python (`json_lines_match.py --parse-only`): one line per record, its
/// scope, severity number, body (hex) and attribute keys.
fn parse_in_python(lines: &[&str]) -> Vec<String> {
    let dir = std::env::temp_dir().join(format!("selftrace-json-lines-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("printed.json");
    std::fs::write(&path, lines.join("\n")).expect("write");
    let parsed = std::process::Command::new(python())
        .arg(python_script("json_lines_match.py"))
        .arg("--parse-only")
        .arg(&path)
        .output()
        .expect("python runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(parsed.status.success(), "{}", String::from_utf8_lossy(&parsed.stderr));
    String::from_utf8_lossy(&parsed.stdout).lines().map(str::to_owned).collect()
}

/// A record with what JSON must escape, every value kind and a trace
/// context.
struct Awkward;

struct Items;

impl selftrace::view::ArrayView for Items {
    fn visit_values(&self, visitor: &mut dyn FnMut(AnyValue<'_>)) {
        visitor(AnyValue::Int(i64::MIN));
        visitor(AnyValue::Double(f64::INFINITY));
        visitor(AnyValue::Double(f64::NEG_INFINITY));
        visitor(AnyValue::Double(-0.0));
        visitor(AnyValue::Double(1e300));
        visitor(AnyValue::Str(""));
    }
}

struct Entries;

impl selftrace::view::MapView for Entries {
    fn visit_entries(&self, visitor: &mut dyn FnMut(&str, AnyValue<'_>)) {
        visitor("nested \"key\"", AnyValue::Array(&Items));
        visitor("bytes", AnyValue::Bytes(&[0, 1, 2, 0xfe, 0xff]));
    }
}

#[derive(Debug)]
struct Tricky;

impl LogRecordView for Awkward {
    fn time_unix_nano(&self) -> Option<u64> {
        Some(u64::MAX)
    }
    fn observed_time_unix_nano(&self) -> Option<u64> {
        Some(1)
    }
    fn severity(&self) -> Option<Severity> {
        Severity::from_number(24)
    }
    fn event_name(&self) -> Option<&str> {
        Some("awkward.\"event\"")
    }
    fn trace_context(&self) -> Option<TraceContext> {
        Some(TraceContext { trace_id: [0xab; 16], span_id: [0x0c; 8], flags: 1 })
    }
    fn visit(&self, v: &mut dyn RecordVisitor) {
        v.visit_body(AnyValue::Str("quote \" backslash \\ newline \n tab \t nul \u{0} bell \u{7} del \u{7f} é 😀"));
        v.visit_attribute("debug", AnyValue::Fmt(&Tricky));
        v.visit_attribute("ctl\u{1}key", AnyValue::Str("\u{1f}\u{2028}"));
        v.visit_attribute("map", AnyValue::Map(&Entries));
        v.visit_attribute("big", AnyValue::Int(i64::MAX));
        v.visit_attribute("yes", AnyValue::Bool(false));
    }
}

impl std::fmt::Display for Tricky {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("{\"json\": \"inside\\\"\"}\r\n\u{0}")
    }
}

#[test]
fn awkward_records_and_layer_records_parse_as_their_protobuf() {
    let resource = OtlpResource::builder()
        .with_attribute("service.name", "json \"lines\"")
        .with_attribute("pid", 4242_i64)
        .build();
    let mut encoder = StatefulOtlpEncoder::with_limits(EncoderLimits::default(), resource);
    encoder.encode_log_record("scope \"a\"", &Awkward).expect("fits");
    encoder.encode_log_record("b", &Awkward).expect("fits");
    let mut requests = vec![encoder.flush()];

    // From the layer: span fields, code location, a `Debug` value and
    // truncation.
    let channel = OtlpBytesChannel::new(64);
    let layer = OtlpTracingLayer::builder(Destination::Channel(channel.sender()))
        .with_service_name("json-check")
        .with_span_fields(Some(SpanFields::all()))
        .with_code_location(true)
        .build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let _s = tracing::info_span!("request", request_id = 7, user = "al\"ice").entered();
        tracing::info!(rows = 3, ratio = 0.25, ok = true, list = ?vec!["a\n", "b"], "query \\ done");
        tracing::error!(huge = "é".repeat(20_000).as_str(), "cut");
    });
    requests.extend(channel.receiver().drain());
    assert_eq!(requests.len(), 3);

    let lines = check_in_python(&requests);
    // What the specification asks of the encoding, on the line itself.
    let first = &lines[0];
    assert!(first.contains(r#""timeUnixNano":"18446744073709551615""#), "{first}");
    assert!(first.contains(r#""severityNumber":24"#), "{first}");
    assert!(first.contains(r#""traceId":"abababababababababababababababab","spanId":"0c0c0c0c0c0c0c0c""#), "{first}");
    assert!(first.contains(r#"{"intValue":"-9223372036854775808"}"#), "{first}");
    assert!(first.contains(r#"{"doubleValue":"Infinity"}"#), "{first}");
    assert!(first.contains(r#"nul \u0000 bell \u0007 del"#), "{first}");
    assert!(first.contains(r#"{"bytesValue":"AAEC/v8="}"#), "{first}");
    assert!(!first.contains('\n'));
}

#[test]
fn arbitrary_records_parse_as_their_protobuf() {
    let mut runner = TestRunner::deterministic();
    let strategy = proptest::collection::vec(record_strategy(), 1..6);
    let mut requests = Vec::new();
    for _ in 0..200 {
        let records = strategy.new_tree(&mut runner).expect("a value").current();
        let resource = OtlpResource::builder().with_attribute("service.name", "prop").build();
        let mut encoder = StatefulOtlpEncoder::with_limits(EncoderLimits::default(), resource);
        for record in &records {
            if encoder.encode_log_record(&record.scope, record).is_err() {
                requests.push(encoder.flush());
                encoder.encode_log_record(&record.scope, record).expect("fits an empty request");
            }
        }
        requests.push(encoder.flush());
    }
    requests.retain(|r| !r.is_empty());
    assert!(requests.len() >= 200);
    check_in_python(&requests);
}

/// In the child process: logs through the JSON console destination and
/// node logs printing OTLP/JSON, to stdout.
fn log_json_lines_to_stdout() {
    use selftrace::{Node, NodeLogs, console::ConsoleStream};
    let layer = OtlpTracingLayer::builder(Destination::OtlpJson(ConsoleStream::Stdout))
        .with_service_name("json-console")
        .build();
    let handle = layer.handle();
    let logs = NodeLogs::new(Destination::OtlpJson(ConsoleStream::Stdout));
    let node = logs.shared(Node::new("receiver.0"));
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info!(target: "app", n = 1, "to \"stdout\"\n");
        tracing::warn!(target: "app", "again");
        selftrace::otel_info!(node, "node.ready", port = 4318_i64, "ready");
    });
    assert_eq!(handle.metrics().delivered, 2);
    assert_eq!(logs.metrics().events_delivered, 1);
}

#[test]
fn the_json_console_destination_and_node_logs_print_lines_protobuf_parses() {
    if std::env::var_os("SELFTRACE_JSON_CHILD").is_some() {
        return log_json_lines_to_stdout();
    }
    let exe = std::env::current_exe().expect("test binary");
    let output = std::process::Command::new(exe)
        .args(["the_json_console_destination_and_node_logs_print_lines_protobuf_parses", "--exact", "--nocapture"])
        .env("SELFTRACE_JSON_CHILD", "1")
        .output()
        .expect("child runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    // The test harness prints its own lines too: the JSON ones start with `{`.
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with('{')).collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    let hex = selftrace_tests::hex;
    assert_eq!(
        parse_in_python(&lines),
        [
            format!("app|9|{}|n", hex("to \"stdout\"\n".as_bytes())),
            format!("app|13|{}|", hex(b"again")),
            format!("receiver.0|9|{}|port", hex(b"ready")),
        ]
    );
}

/// In the child process: the telemetry a YAML builds, printing OTLP/JSON
/// lines on stdout, with span fields and code location.
fn log_through_yaml(case: &str) {
    let logs = match case {
        "exporter" => "processors:\n        - simple: { exporter: { console: { format: otlp_json, stream: stdout } } }",
        // Two exporters: a fan-out, each gets every record.
        "fanout" => {
            "processors:\n        - simple: { exporter: { console: { format: otlp_json } } }\n        - batch: { exporter: { console: { format: otlp_json, stream: stderr } } }"
        }
        _ => "processors: []\n      console: { format: otlp_json, stream: stdout }",
    };
    let yaml = format!(
        "service:\n  telemetry:\n    resource: {{ service.name: yaml-json }}\n    logs:\n      level: info\n      span_fields: {{ enabled: true, spans: [request] }}\n      code_location: true\n      {logs}\n"
    );
    let config = selftrace_itr::ServiceConfig::from_yaml("service.yaml", &yaml).expect("parses");
    let telemetry = selftrace_itr::SelfTelemetry::builder(&config.telemetry).node("main").build().expect("builds");
    let node = telemetry.shared("main").expect("node");
    tracing::subscriber::with_default(tracing_subscriber::registry().with(telemetry.layer()), || {
        let _request = tracing::info_span!("request", request_id = 7).entered();
        let _other = tracing::info_span!("other", hidden = 1).entered();
        tracing::info!(target: "app", rows = 3, "served");
        node.in_scope(|| tracing::warn!(target: "lib", "in the node"));
    });
    telemetry.shutdown();
}

#[test]
fn yaml_console_exporters_print_otlp_json_lines_with_span_fields_and_code_location() {
    if let Ok(case) = std::env::var("SELFTRACE_JSON_YAML_CHILD") {
        return log_through_yaml(&case);
    }
    for case in ["exporter", "console", "fanout"] {
        let exe = std::env::current_exe().expect("test binary");
        let output = std::process::Command::new(exe)
            .args([
                "yaml_console_exporters_print_otlp_json_lines_with_span_fields_and_code_location",
                "--exact",
                "--nocapture",
            ])
            .env("SELFTRACE_JSON_YAML_CHILD", case)
            .output()
            .expect("child runs");
        assert!(output.status.success(), "{case}: {}", String::from_utf8_lossy(&output.stderr));
        let stdout = String::from_utf8(output.stdout).expect("utf-8");
        let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with('{')).collect();
        assert_eq!(lines.len(), 2, "{case}: {stdout}");
        if case == "fanout" {
            let stderr = String::from_utf8(output.stderr).expect("utf-8");
            let on_stderr: Vec<&str> = stderr.lines().filter(|l| l.starts_with('{')).collect();
            assert_eq!(on_stderr, lines, "both exporters print every record");
        }
        assert!(lines.iter().all(|l| l.contains(r#"{"key":"service.name","value":{"stringValue":"yaml-json"}}"#)));
        let hex = selftrace_tests::hex;
        let location = "code.file.path,code.line.number,code.module.name";
        assert_eq!(
            parse_in_python(&lines),
            [
                format!("app|9|{}|{location},rows,request_id", hex(b"served")),
                format!("main|13|{}|{location},request_id", hex(b"in the node")),
            ],
            "{case}"
        );
    }
}
