//! Arbitrary bytes through the zero-copy decoder and the writers that read
//! encoded requests (console lines, OTLP/JSON lines): no input may panic,
//! loop without end or allocate without bound.
//!
//! Run: `bash scripts/fuzz [seconds]` from the repository root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use selftrace::{
    decode::LogsRequest,
    view::{AnyValue, LogRecordView as _, MapView as _, RecordVisitor},
};

/// Walks every nested value, as exporters do.
struct Walk;

fn walk(value: AnyValue<'_>) {
    match value {
        AnyValue::Array(array) => array.visit_values(&mut walk),
        AnyValue::Map(map) => map.visit_entries(&mut |_, v| walk(v)),
        _ => {}
    }
}

impl RecordVisitor for Walk {
    fn visit_body(&mut self, body: AnyValue<'_>) {
        walk(body);
    }
    fn visit_attribute(&mut self, _key: &str, value: AnyValue<'_>) {
        walk(value);
    }
}

fuzz_target!(|bytes: &[u8]| {
    for resource_logs in LogsRequest::new(bytes).resource_logs() {
        let Ok(resource_logs) = resource_logs else { break };
        if let Some(resource) = resource_logs.resource() {
            resource.visit_entries(&mut |_, v| walk(v));
        }
        for scope_logs in resource_logs.scope_logs() {
            let Ok(scope_logs) = scope_logs else { break };
            scope_logs.visit_attributes(&mut |_, v| walk(v));
            for record in scope_logs.records() {
                let Ok(record) = record else { break };
                let _ = (record.severity_text(), record.event_name(), record.trace_context(), record.body_str());
                record.visit(&mut Walk);
            }
        }
    }
    let mut lines = String::new();
    let _ = selftrace::console::write_request(&mut lines, bytes);
    lines.clear();
    let _ = selftrace::json::write_request(&mut lines, bytes);
});
