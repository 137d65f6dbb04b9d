//! Our bytes decode with Python's `opentelemetry-proto` package (protobuf's
//! own runtime, an implementation independent of prost) to exactly what
//! prost decodes, and to what was logged.
//!
//! Needs `python3` (or `$SELFTRACE_PYTHON`) with `opentelemetry-proto`
//! installed (`pip install opentelemetry-proto`; `scripts/test` and CI do
//! this). A missing package fails the test: it is never skipped.

use opentelemetry_proto::tonic::{
    collector::logs::v1::ExportLogsServiceRequest,
    common::v1::{AnyValue, KeyValue, any_value::Value},
};
use prost::Message as _;
use selftrace::{
    Destination, EncoderLimits, OtlpBytes, OtlpBytesChannel, OtlpTracingLayer,
    encoder::{OtlpResource, StatefulOtlpEncoder},
    view::{LogRecordView, RecordVisitor, Severity, TraceContext},
};
use selftrace_tests::{hex, python_decode};
use tracing_subscriber::layer::SubscriberExt;

fn value(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        None => "none".into(),
        Some(Value::StringValue(s)) => format!("s:{}", hex(s.as_bytes())),
        Some(Value::BoolValue(b)) => format!("b:{}", u8::from(*b)),
        Some(Value::IntValue(i)) => format!("i:{i}"),
        Some(Value::DoubleValue(d)) => format!("d:{}", hex(&d.to_le_bytes())),
        Some(Value::BytesValue(b)) => format!("x:{}", hex(b)),
        Some(Value::ArrayValue(a)) => {
            format!("[{}]", a.values.iter().map(|v| value(Some(v))).collect::<Vec<_>>().join(","))
        }
        Some(Value::KvlistValue(l)) => format!("{{{}}}", l.values.iter().map(kv).collect::<Vec<_>>().join(",")),
        Some(other) => panic!("unexpected value {other:?}"),
    }
}

fn kv(kv: &KeyValue) -> String {
    format!("{}={}", hex(kv.key.as_bytes()), value(kv.value.as_ref()))
}

/// The same canonical lines as `python/decode_logs.py`, from prost.
fn prost_lines(requests: &[OtlpBytes]) -> Vec<String> {
    let mut lines = Vec::new();
    for bytes in requests {
        let request = ExportLogsServiceRequest::decode(bytes.as_bytes()).expect("prost decodes");
        for rl in &request.resource_logs {
            let attrs = rl.resource.as_ref().map(|r| r.attributes.iter().map(kv).collect::<Vec<_>>());
            lines.push(format!("resource|{}", attrs.unwrap_or_default().join(";")));
            for sl in &rl.scope_logs {
                let scope = sl.scope.as_ref().map(|s| s.name.as_str()).unwrap_or_default();
                for r in &sl.log_records {
                    lines.push(
                        [
                            hex(scope.as_bytes()),
                            r.time_unix_nano.to_string(),
                            r.observed_time_unix_nano.to_string(),
                            r.severity_number.to_string(),
                            r.severity_text.clone(),
                            hex(r.event_name.as_bytes()),
                            r.body.as_ref().map_or("-".into(), |b| value(Some(b))),
                            r.attributes.iter().map(kv).collect::<Vec<_>>().join(";"),
                            r.dropped_attributes_count.to_string(),
                            hex(&r.trace_id),
                            hex(&r.span_id),
                            r.flags.to_string(),
                        ]
                        .join("|"),
                    );
                }
            }
        }
    }
    lines
}

/// A record with nested values and a trace context, through the encoder.
struct Nested;

struct Items;
impl selftrace::view::ArrayView for Items {
    fn visit_values(&self, v: &mut dyn FnMut(selftrace::view::AnyValue<'_>)) {
        v(selftrace::view::AnyValue::Int(1));
        v(selftrace::view::AnyValue::Str("two"));
        v(selftrace::view::AnyValue::Map(&Entries));
    }
}
struct Entries;
impl selftrace::view::MapView for Entries {
    fn visit_entries(&self, v: &mut dyn FnMut(&str, selftrace::view::AnyValue<'_>)) {
        v("bytes", selftrace::view::AnyValue::Bytes(&[0, 159, 255]));
        v("nan-free double", selftrace::view::AnyValue::Double(-0.25));
    }
}

impl LogRecordView for Nested {
    fn time_unix_nano(&self) -> Option<u64> {
        Some(1_700_000_000_000_000_001)
    }
    fn observed_time_unix_nano(&self) -> Option<u64> {
        Some(1_700_000_000_000_000_002)
    }
    fn severity(&self) -> Option<Severity> {
        Severity::from_number(22)
    }
    fn event_name(&self) -> Option<&str> {
        Some("nested.values")
    }
    fn trace_context(&self) -> Option<TraceContext> {
        Some(TraceContext { trace_id: [0xAB; 16], span_id: [0xCD; 8], flags: 1 })
    }
    fn visit(&self, v: &mut dyn RecordVisitor) {
        v.visit_body(selftrace::view::AnyValue::Map(&Entries));
        v.visit_attribute("list", selftrace::view::AnyValue::Array(&Items));
    }
}

#[test]
fn python_opentelemetry_proto_decodes_our_bytes_like_prost() {
    // Requests from the layer: every field type, unicode, truncation.
    let channel = OtlpBytesChannel::new(64);
    let layer = OtlpTracingLayer::builder(Destination::Channel(channel.sender()))
        .with_service_name("python-check")
        .with_resource_attribute("pid", 4242_i64)
        .build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info!(
            name: "component.event",
            target: "bench",
            key1 = 42_i64,
            key2 = "value",
            key3 = 3.5_f64,
            key4 = true,
            big = u64::MAX,
            neg = -7_i64,
            dbg = ?Some("x"),
            "message text"
        );
        tracing::warn!(target: "ünïcode::target", text = "héllo wörld 😀", "😀 body");
        tracing::error!(huge = "é".repeat(20_000).as_str(), "cut");
    });
    let mut requests: Vec<OtlpBytes> = channel.receiver().drain().collect();
    assert_eq!(requests.len(), 3);

    // A batched request from the encoder: two scopes, nested values.
    let resource = OtlpResource::builder().with_attribute("service.name", "batch").build();
    let mut encoder = StatefulOtlpEncoder::with_limits(EncoderLimits::default(), resource);
    for scope in ["a", "a", "b"] {
        encoder.encode_log_record(scope, &Nested).expect("fits");
    }
    requests.push(encoder.flush());

    let expected = prost_lines(&requests);
    let got = python_decode(&requests);
    assert_eq!(got, expected);

    // And the values are what was logged, not merely the same garbage twice.
    let first = &expected[1];
    assert!(first.starts_with(&format!("{}|", hex(b"bench"))), "{first}");
    assert!(first.contains(&format!("|9|INFO|{}|s:{}|", hex(b"component.event"), hex(b"message text"))));
    assert!(first.contains(&format!("{}=s:{}", hex(b"big"), hex(u64::MAX.to_string().as_bytes()))));
    assert!(expected[0].contains(&format!("{}=i:4242", hex(b"pid"))));
    assert!(expected[5].ends_with("|1|||0"), "dropped_attributes_count of the cut value: {}", expected[5]);
    assert_eq!(expected.iter().filter(|l| l.starts_with(&hex(b"a"))).count(), 2);
    assert!(expected.last().is_some_and(|l| l.ends_with(&format!("|{}|{}|1", "ab".repeat(16), "cd".repeat(8)))));
}

#[test]
fn span_fields_and_code_location_decode_in_python_like_prost() {
    let channel = OtlpBytesChannel::new(64);
    let layer = OtlpTracingLayer::builder(Destination::Channel(channel.sender()))
        .with_service_name("python-spans")
        .with_span_fields(Some(selftrace::spans::SpanFields::all()))
        .with_code_location(true)
        .build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let _request = tracing::info_span!("request", request_id = 7_i64, user = "alice", ratio = 0.5_f64).entered();
        let _db = tracing::info_span!("db", user = "bøb", blob = "x".repeat(10_000).as_str()).entered();
        tracing::info!(rows = 3_i64, "query done");
    });
    let requests: Vec<OtlpBytes> = channel.receiver().drain().collect();
    assert_eq!(requests.len(), 1);
    let expected = prost_lines(&requests);
    assert_eq!(python_decode(&requests), expected);
    let record = &expected[1];
    for (key, value) in [
        ("code.file.path", format!("s:{}", hex(file!().as_bytes()))),
        ("rows", "i:3".into()),
        ("user", format!("s:{}", hex("bøb".as_bytes()))),
        ("request_id", "i:7".into()),
    ] {
        assert!(record.contains(&format!("{}={value}", hex(key.as_bytes()))), "{key} in {record}");
    }
    assert!(!record.contains(&format!("{}=s:{}", hex(b"user"), hex(b"alice"))), "{record}");
    // The 10 000-byte blob: cut to the value limit, then past the span
    // fields' byte budget: left out, counted once.
    assert!(record.ends_with("|1|||0"), "{record}");
}
