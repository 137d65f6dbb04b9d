//! Arbitrary bytes through the SDK emitter (the decoder's own target is
//! `layer/fuzz`): no input may panic, loop without end or allocate without
//! bound in the OpenTelemetry SDK's hands.
//!
//! Run: `bash scripts/fuzz [seconds]` from the repository root.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use selftrace::view::{AnyValue, LogRecordView as _, MapView as _, RecordVisitor};
use selftrace::decode::LogsRequest;
use selftrace_bridge::sdk::SdkEmitter;

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

static PROVIDER: LazyLock<SdkLoggerProvider> = LazyLock::new(|| SdkLoggerProvider::builder().build());

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
                let _ = (record.severity_text(), record.event_name(), record.trace_context());
                record.visit(&mut Walk);
            }
        }
    }
    let mut lines = String::new();
    let _ = selftrace::console::write_request(&mut lines, bytes);
    let _ = SdkEmitter::new(PROVIDER.clone()).emit_request(bytes);
});
