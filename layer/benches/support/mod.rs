//! What the benches share: the event they log and the SDK anchor's no-op
//! processor.

use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::{
    error::OTelSdkResult,
    logs::{LogProcessor, SdkLogRecord},
};

/// The bench event: a name, a target, four attributes and a message.
pub(crate) fn third_party_event() {
    tracing::info!(
        name: "component.event",
        target: "bench",
        key1 = 42_i64,
        key2 = "value",
        key3 = 3.5_f64,
        key4 = true,
        "message text"
    );
}

/// An SDK processor that drops every record.
#[derive(Debug)]
pub(crate) struct NoopProcessor;

impl LogProcessor for NoopProcessor {
    fn emit(&self, _data: &mut SdkLogRecord, _scope: &InstrumentationScope) {}
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
}
