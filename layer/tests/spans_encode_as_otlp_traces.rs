//! Spans written by the bounded encoder decode, with prost and the
//! `opentelemetry-proto` types, as the `ExportTraceServiceRequest` they
//! stand for: ids, parent, name, kind, times, attributes, status, flags;
//! the limits cut and count as for log records.

#![cfg(feature = "traces")]

use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::any_value::Value,
    trace::v1::{Span, span::SpanKind as ProtoKind, status::StatusCode},
};
use proptest::prelude::*;
use prost::Message as _;
use selftrace::{
    EncoderLimits,
    encoder::{EncodeError, OtlpResource, StatefulOtlpEncoder, TRUNCATION_MARKER},
    traces::{SpanKind, SpanStatus, SpanView},
    view::{AnyValue, RecordVisitor},
};

#[derive(Clone, Debug)]
struct TestSpan {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent: Option<[u8; 8]>,
    name: String,
    kind: SpanKind,
    start: u64,
    end: u64,
    status: Option<Result<(), String>>,
    attributes: Vec<(String, i64, String)>,
}

impl SpanView for TestSpan {
    fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }
    fn span_id(&self) -> [u8; 8] {
        self.span_id
    }
    fn parent_span_id(&self) -> Option<[u8; 8]> {
        self.parent
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> SpanKind {
        self.kind
    }
    fn start_time_unix_nano(&self) -> u64 {
        self.start
    }
    fn end_time_unix_nano(&self) -> u64 {
        self.end
    }
    fn status(&self) -> SpanStatus<'_> {
        match &self.status {
            None => SpanStatus::Unset,
            Some(Ok(())) => SpanStatus::Ok,
            Some(Err(message)) => SpanStatus::Error(message),
        }
    }
    fn visit(&self, v: &mut dyn RecordVisitor) {
        // A body is not part of a span: left out.
        v.visit_body(AnyValue::Str("not a span field"));
        for (key, int, text) in &self.attributes {
            v.visit_attribute(key, AnyValue::Int(*int));
            v.visit_attribute(&format!("{key}.text"), AnyValue::Str(text));
        }
    }
}

fn decode(bytes: &[u8]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest::decode(bytes).expect("prost decodes the request")
}

fn kind_of(kind: SpanKind) -> ProtoKind {
    match kind {
        SpanKind::Server => ProtoKind::Server,
        SpanKind::Client => ProtoKind::Client,
        SpanKind::Producer => ProtoKind::Producer,
        SpanKind::Consumer => ProtoKind::Consumer,
        _ => ProtoKind::Internal,
    }
}

/// `span` as prost reads it, compared field by field.
fn assert_same(span: &TestSpan, got: &Span) {
    assert_eq!(got.trace_id, span.trace_id);
    assert_eq!(got.span_id, span.span_id);
    assert_eq!(got.parent_span_id, span.parent.map(|p| p.to_vec()).unwrap_or_default());
    assert_eq!(got.flags, 1);
    assert_eq!(got.name, span.name);
    assert_eq!(got.kind, kind_of(span.kind) as i32);
    assert_eq!((got.start_time_unix_nano, got.end_time_unix_nano), (span.start, span.end));
    let want: Vec<(String, Value)> = span
        .attributes
        .iter()
        .flat_map(|(k, i, t)| [(k.clone(), Value::IntValue(*i)), (format!("{k}.text"), Value::StringValue(t.clone()))])
        .collect();
    let attributes: Vec<(String, Value)> = got
        .attributes
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.as_ref().and_then(|v| v.value.clone()).expect("a value")))
        .collect();
    assert_eq!(attributes, want);
    assert_eq!(got.dropped_attributes_count, 0);
    let status = got.status.clone().unwrap_or_default();
    match &span.status {
        None => assert_eq!(got.status, None),
        Some(Ok(())) => assert_eq!((status.code, status.message.as_str()), (StatusCode::Ok as i32, "")),
        Some(Err(message)) => assert_eq!((status.code, &status.message), (StatusCode::Error as i32, message)),
    }
}

fn span(name: &str, parent: Option<[u8; 8]>) -> TestSpan {
    TestSpan {
        trace_id: [0x4b; 16],
        span_id: [0x11; 8],
        parent,
        name: name.to_owned(),
        kind: SpanKind::Server,
        start: 1_700_000_000_000_000_000,
        end: 1_700_000_000_000_500_000,
        status: Some(Err("upstream timed out".into())),
        attributes: vec![("http.request.body.size".into(), 512, "POST".into())],
    }
}

#[test]
fn spans_of_two_scopes_decode_under_one_resource() {
    let resource = OtlpResource::builder().with_attribute("service.name", "engine").build();
    let mut encoder = StatefulOtlpEncoder::with_limits(EncoderLimits::default(), resource);
    let (a, b, c) = (span("GET /", None), span("db.query", Some([0x11; 8])), span("flush", Some([0x22; 8])));
    encoder.encode_span("receiver", &a).expect("fits");
    encoder.encode_span("receiver", &b).expect("fits");
    encoder.encode_span("exporter", &c).expect("fits");
    let request = decode(encoder.flush().as_bytes());
    let [resource_spans] = &request.resource_spans[..] else { panic!("one resource: {request:?}") };
    let service = &resource_spans.resource.as_ref().expect("the resource").attributes[0];
    assert_eq!(service.key, "service.name");
    let scopes: Vec<(&str, usize)> = resource_spans
        .scope_spans
        .iter()
        .map(|s| (s.scope.as_ref().map_or("", |s| s.name.as_str()), s.spans.len()))
        .collect();
    assert_eq!(scopes, [("receiver", 2), ("exporter", 1)]);
    assert_same(&a, &resource_spans.scope_spans[0].spans[0]);
    assert_same(&b, &resource_spans.scope_spans[0].spans[1]);
    assert_same(&c, &resource_spans.scope_spans[1].spans[0]);
}

#[test]
fn values_past_the_limit_are_cut_and_counted_and_a_full_buffer_is_said() {
    let limits = EncoderLimits::new(4096, 1024, 64).expect("limits");
    let mut encoder = StatefulOtlpEncoder::with_limits(limits, OtlpResource::default());
    let mut long = span("cut", None);
    long.attributes = vec![("query".into(), 1, "x".repeat(500))];
    assert_eq!(encoder.encode_span("s", &long), Ok(1));
    let request = decode(encoder.flush().as_bytes());
    let got = &request.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(got.dropped_attributes_count, 1);
    let Some(Value::StringValue(text)) = got.attributes[1].value.as_ref().and_then(|v| v.value.clone()) else {
        panic!("a string: {got:?}")
    };
    assert!(text.ends_with(TRUNCATION_MARKER) && text.len() <= 64, "{text:?}");
    // Spans until the buffer is full: the one that does not fit is refused
    // whole and the request holds every span before it.
    let mut n = 0;
    loop {
        match encoder.encode_span("s", &span("fill", None)) {
            Ok(_) => n += 1,
            Err(EncodeError::BufferFull) => break,
            Err(e) => panic!("{e:?}"),
        }
    }
    let request = decode(encoder.flush().as_bytes());
    assert_eq!(request.resource_spans[0].scope_spans[0].spans.len(), n);
}

fn any_span() -> impl Strategy<Value = TestSpan> {
    (
        any::<[u8; 16]>(),
        any::<[u8; 8]>(),
        proptest::option::of(any::<[u8; 8]>()),
        ".{0,40}",
        prop_oneof![
            Just(SpanKind::Internal),
            Just(SpanKind::Server),
            Just(SpanKind::Client),
            Just(SpanKind::Producer),
            Just(SpanKind::Consumer)
        ],
        any::<(u64, u64)>(),
        proptest::option::of(proptest::result::maybe_ok(Just(()), ".{0,30}")),
        proptest::collection::vec(("[a-z.]{1,12}", any::<i64>(), ".{0,20}"), 0..6),
    )
        .prop_map(|(trace_id, span_id, parent, name, kind, (start, end), status, attributes)| TestSpan {
            trace_id,
            span_id,
            parent,
            name,
            kind,
            start,
            end,
            status,
            attributes,
        })
}

proptest! {
    #[test]
    fn any_span_decodes_as_it_was_given(spans in proptest::collection::vec(any_span(), 1..8)) {
        let mut encoder = StatefulOtlpEncoder::new();
        for span in &spans {
            encoder.encode_span("scope", span).expect("fits the default limits");
        }
        let request = decode(encoder.flush().as_bytes());
        let got: Vec<&Span> = request.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans).collect();
        prop_assert_eq!(got.len(), spans.len());
        for (span, got) in spans.iter().zip(got) {
            assert_same(span, got);
        }
    }
}
