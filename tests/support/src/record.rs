//! An owned record that implements `LogRecordView`, and the same shape read
//! back from our bytes by `opentelemetry-proto`'s prost types: the one prost
//! decoder of the tests.

use opentelemetry_proto::tonic::{
    collector::logs::v1::ExportLogsServiceRequest,
    common::v1::{AnyValue as PbAnyValue, KeyValue as PbKeyValue, any_value::Value as PbValue},
};
use proptest::prelude::*;
use prost::Message as _;
use selftrace::view::{AnyValue, ArrayView, LogRecordView, MapView, RecordVisitor, Severity, TraceContext};

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Vec<u8>),
    Array(Vec<Value>),
    Map(Vec<(String, Value)>),
}

impl Value {
    pub fn view(&self) -> AnyValue<'_> {
        match self {
            Value::Str(s) => AnyValue::Str(s),
            Value::Bool(b) => AnyValue::Bool(*b),
            Value::Int(i) => AnyValue::Int(*i),
            Value::Double(d) => AnyValue::Double(*d),
            Value::Bytes(b) => AnyValue::Bytes(b),
            Value::Array(_) => AnyValue::Array(self),
            Value::Map(_) => AnyValue::Map(self),
        }
    }

    pub fn from_view(v: AnyValue<'_>) -> Value {
        match v {
            AnyValue::Str(s) => Value::Str(s.to_owned()),
            AnyValue::Bool(b) => Value::Bool(b),
            AnyValue::Int(i) => Value::Int(i),
            AnyValue::Double(d) => Value::Double(d),
            AnyValue::Bytes(b) => Value::Bytes(b.to_vec()),
            AnyValue::Fmt(f) => Value::Str(format!("{f:?}")),
            AnyValue::Array(a) => {
                let mut out = Vec::new();
                a.visit_values(&mut |v| out.push(Value::from_view(v)));
                Value::Array(out)
            }
            AnyValue::Map(m) => {
                let mut out = Vec::new();
                m.visit_entries(&mut |k, v| out.push((k.to_owned(), Value::from_view(v))));
                Value::Map(out)
            }
            _ => unreachable!("new AnyValue kind"),
        }
    }

    pub fn from_proto(v: &PbAnyValue) -> Option<Value> {
        Some(match v.value.as_ref()? {
            PbValue::StringValue(s) => Value::Str(s.clone()),
            PbValue::BoolValue(b) => Value::Bool(*b),
            PbValue::IntValue(i) => Value::Int(*i),
            PbValue::DoubleValue(d) => Value::Double(*d),
            PbValue::BytesValue(b) => Value::Bytes(b.clone()),
            PbValue::ArrayValue(a) => Value::Array(a.values.iter().filter_map(Value::from_proto).collect()),
            PbValue::KvlistValue(kv) => Value::Map(kv.values.iter().map(kv_from_proto).collect()),
            PbValue::StringValueStrindex(_) => return None,
        })
    }
}

pub fn kv_from_proto(kv: &PbKeyValue) -> (String, Value) {
    (kv.key.clone(), kv.value.as_ref().and_then(Value::from_proto).unwrap_or(Value::Str(String::new())))
}

impl ArrayView for Value {
    fn visit_values(&self, visitor: &mut dyn FnMut(AnyValue<'_>)) {
        if let Value::Array(items) = self {
            for v in items {
                visitor(v.view());
            }
        }
    }
}

impl MapView for Value {
    fn visit_entries(&self, visitor: &mut dyn FnMut(&str, AnyValue<'_>)) {
        if let Value::Map(entries) = self {
            for (k, v) in entries {
                visitor(k, v.view());
            }
        }
    }
}

/// An owned log record: what we encode and what we expect back.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Record {
    pub scope: String,
    pub time: Option<u64>,
    pub observed: Option<u64>,
    pub severity: Option<i32>,
    pub severity_text: Option<String>,
    pub event_name: Option<String>,
    pub body: Option<Value>,
    pub attributes: Vec<(String, Value)>,
    pub trace: Option<([u8; 16], [u8; 8], u8)>,
    pub dropped: u32,
}

impl LogRecordView for Record {
    fn time_unix_nano(&self) -> Option<u64> {
        self.time
    }
    fn observed_time_unix_nano(&self) -> Option<u64> {
        self.observed
    }
    fn severity(&self) -> Option<Severity> {
        self.severity.and_then(Severity::from_number)
    }
    fn severity_text(&self) -> Option<&str> {
        self.severity_text.as_deref()
    }
    fn event_name(&self) -> Option<&str> {
        self.event_name.as_deref()
    }
    fn trace_context(&self) -> Option<TraceContext> {
        self.trace.map(|(trace_id, span_id, flags)| TraceContext { trace_id, span_id, flags })
    }
    fn dropped_attributes_count(&self) -> u32 {
        self.dropped
    }
    fn visit(&self, visitor: &mut dyn RecordVisitor) {
        if let Some(body) = &self.body {
            visitor.visit_body(body.view());
        }
        for (k, v) in &self.attributes {
            visitor.visit_attribute(k, v.view());
        }
    }
}

impl Record {
    /// The owned copy of `view`, attributed to `scope`.
    pub fn from_view(scope: &str, view: &(impl LogRecordView + ?Sized)) -> Record {
        struct Fields<'r>(&'r mut Record);
        impl RecordVisitor for Fields<'_> {
            fn visit_body(&mut self, body: AnyValue<'_>) {
                self.0.body = Some(Value::from_view(body));
            }
            fn visit_attribute(&mut self, key: &str, value: AnyValue<'_>) {
                self.0.attributes.push((key.to_owned(), Value::from_view(value)));
            }
        }
        let mut record = Record {
            scope: scope.to_owned(),
            time: view.time_unix_nano(),
            observed: view.observed_time_unix_nano(),
            severity: view.severity().map(Severity::number),
            severity_text: view.severity_text().map(str::to_owned),
            event_name: view.event_name().map(str::to_owned),
            trace: view.trace_context().map(|t| (t.trace_id, t.span_id, t.flags)),
            dropped: view.dropped_attributes_count(),
            ..Record::default()
        };
        view.visit(&mut Fields(&mut record));
        record
    }
}

pub fn value_strategy() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        ".{0,40}".prop_map(Value::Str),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<f64>().prop_filter("NaN never equals itself", |d| !d.is_nan()).prop_map(Value::Double),
        prop::collection::vec(any::<u8>(), 0..24).prop_map(Value::Bytes),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z.]{1,8}", inner), 0..4).prop_map(Value::Map),
        ]
    })
}

prop_compose! {
    pub fn record_strategy()(
        scope in prop::sample::select(vec!["a", "b", "receiver.otlp.0", "ünïcode"]),
        time in prop::option::of(1u64..u64::MAX),
        observed in prop::option::of(1u64..u64::MAX),
        severity in prop::option::of(1i32..=24),
        event_name in prop::option::of("[a-z][a-z.]{0,20}"),
        body in prop::option::of(value_strategy()),
        attributes in prop::collection::vec(("[a-z_.]{1,12}", value_strategy()), 0..8),
        trace in prop::option::of((any::<[u8; 16]>(), any::<[u8; 8]>(), any::<u8>())),
    ) -> Record {
        Record {
            scope: scope.to_owned(),
            time,
            observed,
            severity,
            severity_text: severity.and_then(Severity::from_number).map(|s| s.text().to_owned()),
            event_name,
            // An empty string body is omitted by design.
            body: body.filter(|b| *b != Value::Str(String::new())),
            attributes,
            // An all-zero trace id decodes as "no trace context".
            trace: trace.filter(|(t, _, _)| *t != [0; 16]),
            dropped: 0,
        }
    }
}

/// Decodes a request with prost and flattens it into records, checking the
/// envelope on the way. Also returns the number of ScopeLogs seen and the
/// resource attributes.
pub fn decode(bytes: &[u8]) -> Decoded {
    let request = ExportLogsServiceRequest::decode(bytes).expect("prost decodes our bytes");
    let mut out = Decoded::default();
    for rl in &request.resource_logs {
        out.resource_logs += 1;
        let mut service = String::new();
        if let Some(resource) = &rl.resource {
            out.resource.extend(resource.attributes.iter().map(kv_from_proto));
            service = resource
                .attributes
                .iter()
                .map(kv_from_proto)
                .find_map(|(k, v)| match (k.as_str(), v) {
                    ("service.name", Value::Str(s)) => Some(s),
                    _ => None,
                })
                .unwrap_or_default();
        }
        for sl in &rl.scope_logs {
            out.scope_logs += 1;
            let scope = sl.scope.as_ref().map(|s| s.name.clone()).unwrap_or_default();
            for lr in &sl.log_records {
                let trace = (!lr.trace_id.is_empty()).then(|| {
                    (
                        lr.trace_id.as_slice().try_into().expect("16-byte trace id"),
                        lr.span_id.as_slice().try_into().expect("8-byte span id"),
                        lr.flags as u8,
                    )
                });
                out.services.push(service.clone());
                out.records.push(Record {
                    scope: scope.clone(),
                    time: (lr.time_unix_nano != 0).then_some(lr.time_unix_nano),
                    observed: (lr.observed_time_unix_nano != 0).then_some(lr.observed_time_unix_nano),
                    severity: (lr.severity_number != 0).then_some(lr.severity_number),
                    severity_text: (!lr.severity_text.is_empty()).then(|| lr.severity_text.clone()),
                    event_name: (!lr.event_name.is_empty()).then(|| lr.event_name.clone()),
                    body: lr.body.as_ref().and_then(Value::from_proto),
                    attributes: lr.attributes.iter().map(kv_from_proto).collect(),
                    trace,
                    dropped: lr.dropped_attributes_count,
                });
            }
        }
    }
    out
}

#[derive(Debug, Default)]
pub struct Decoded {
    pub resource_logs: usize,
    pub scope_logs: usize,
    pub resource: Vec<(String, Value)>,
    pub records: Vec<Record>,
    /// The `service.name` of each record's resource, in the order of
    /// `records`.
    pub services: Vec<String>,
}

/// The resource of [`encode_records`]' requests: two attributes.
pub fn test_resource() -> selftrace::encoder::OtlpResource {
    selftrace::encoder::OtlpResource::builder()
        .with_attribute("service.name", "engine")
        .with_attribute("host.cores", 2_i64)
        .build()
}

/// The request `records` make, as one encoder writes them: what the
/// decoder's and the SDK emitter's tests read.
pub fn encode_records(records: &[Record]) -> Vec<u8> {
    let mut encoder =
        selftrace::encoder::StatefulOtlpEncoder::with_limits(selftrace::EncoderLimits::default(), test_resource());
    for r in records {
        encoder.encode_log_record(&r.scope, r).expect("record fits");
    }
    encoder.flush().as_bytes().to_vec()
}

/// The request `records` make with `flips` written over it, whole and cut
/// at `cut`.
pub fn corrupted(records: &[Record], flips: &[(prop::sample::Index, u8)], cut: prop::sample::Index) -> [Vec<u8>; 2] {
    let mut bytes = encode_records(records);
    for (at, byte) in flips {
        let i = at.index(bytes.len());
        bytes[i] = *byte;
    }
    let truncated = bytes[..cut.index(bytes.len() + 1)].to_vec();
    [bytes, truncated]
}

/// Whether prost (`opentelemetry-proto`) accepts `bytes` as a request.
pub fn prost_accepts(bytes: &[u8]) -> bool {
    opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest::decode(bytes).is_ok()
}
