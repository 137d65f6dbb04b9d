//! Runnable examples for selftrace (see `examples/`), and the small consumer
//! they share: it decodes [`OtlpBytes`] and prints each record as a console
//! line.
//!
//! The decoding here uses `opentelemetry-proto`'s prost types, an independent
//! decoder. The zero-copy decoder of `selftrace-bridge` will replace it.

use std::io::{self, Write};

use opentelemetry_proto::tonic::{
    collector::logs::v1::ExportLogsServiceRequest,
    common::v1::{AnyValue as PbAnyValue, ArrayValue, KeyValueList, any_value::Value as PbValue},
    logs::v1::LogRecord,
};
use prost::Message as _;
use selftrace::{
    AnyValue, ArrayView, LogRecordView, MapView, OtlpBytes, RecordVisitor, Severity, TraceContext, write_console_line,
};

/// A [`LogRecordView`] over a decoded prost `LogRecord`.
#[derive(Debug)]
pub struct ProtoRecord<'a>(pub &'a LogRecord);

impl LogRecordView for ProtoRecord<'_> {
    fn time_unix_nano(&self) -> Option<u64> {
        (self.0.time_unix_nano != 0).then_some(self.0.time_unix_nano)
    }
    fn observed_time_unix_nano(&self) -> Option<u64> {
        (self.0.observed_time_unix_nano != 0).then_some(self.0.observed_time_unix_nano)
    }
    fn severity(&self) -> Option<Severity> {
        Severity::from_number(self.0.severity_number)
    }
    fn severity_text(&self) -> Option<&str> {
        (!self.0.severity_text.is_empty()).then_some(self.0.severity_text.as_str())
    }
    fn event_name(&self) -> Option<&str> {
        (!self.0.event_name.is_empty()).then_some(self.0.event_name.as_str())
    }
    fn trace_context(&self) -> Option<TraceContext> {
        let trace_id = self.0.trace_id.as_slice().try_into().ok()?;
        let span_id = self.0.span_id.as_slice().try_into().ok()?;
        Some(TraceContext { trace_id, span_id, flags: self.0.flags as u8 })
    }
    fn dropped_attributes_count(&self) -> u32 {
        self.0.dropped_attributes_count
    }
    fn visit(&self, visitor: &mut dyn RecordVisitor) {
        if let Some(body) = &self.0.body {
            with_value(body, &mut |v| visitor.visit_body(v));
        }
        for kv in &self.0.attributes {
            if let Some(value) = &kv.value {
                with_value(value, &mut |v| visitor.visit_attribute(&kv.key, v));
            }
        }
    }
}

struct Array<'a>(&'a ArrayValue);
struct Map<'a>(&'a KeyValueList);

impl ArrayView for Array<'_> {
    fn visit_values(&self, visitor: &mut dyn FnMut(AnyValue<'_>)) {
        for v in &self.0.values {
            with_value(v, visitor);
        }
    }
}

impl MapView for Map<'_> {
    fn visit_entries(&self, visitor: &mut dyn FnMut(&str, AnyValue<'_>)) {
        for kv in &self.0.values {
            if let Some(value) = &kv.value {
                with_value(value, &mut |v| visitor(&kv.key, v));
            }
        }
    }
}

/// Calls `f` with a borrowed view of `value` (nested values are wrapped on
/// the stack for the duration of the call).
fn with_value(value: &PbAnyValue, f: &mut dyn FnMut(AnyValue<'_>)) {
    match &value.value {
        Some(PbValue::StringValue(s)) => f(AnyValue::Str(s)),
        Some(PbValue::BoolValue(b)) => f(AnyValue::Bool(*b)),
        Some(PbValue::IntValue(i)) => f(AnyValue::Int(*i)),
        Some(PbValue::DoubleValue(d)) => f(AnyValue::Double(*d)),
        Some(PbValue::BytesValue(b)) => f(AnyValue::Bytes(b)),
        Some(PbValue::ArrayValue(a)) => f(AnyValue::Array(&Array(a))),
        Some(PbValue::KvlistValue(m)) => f(AnyValue::Map(&Map(m))),
        Some(PbValue::StringValueStrindex(_)) | None => {}
    }
}

/// Decodes one request and writes a console line per record to `out`;
/// returns the number of records.
///
/// # Errors
///
/// When the bytes are not an `ExportLogsServiceRequest`, or `out` fails.
pub fn print_request(bytes: &OtlpBytes, out: &mut impl Write) -> io::Result<usize> {
    let request = ExportLogsServiceRequest::decode(bytes.as_bytes()).map_err(io::Error::other)?;
    let mut records = 0;
    let mut line = String::new();
    for rl in &request.resource_logs {
        for sl in &rl.scope_logs {
            let scope = sl.scope.as_ref().map(|s| s.name.as_str()).unwrap_or_default();
            for record in &sl.log_records {
                line.clear();
                write_console_line(&mut line, scope, &ProtoRecord(record)).map_err(io::Error::other)?;
                writeln!(out, "{line}")?;
                records += 1;
            }
        }
    }
    Ok(records)
}
