//! What a run left behind, as (scope, event name, body) triples.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use opentelemetry_sdk::{
    error::OTelSdkResult,
    logs::{LogProcessor, SdkLogRecord, SdkLoggerProvider},
};

/// One record: its scope (the node id or the event's target), its event
/// name and its body (empty when absent).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seen {
    /// Scope name.
    pub scope: String,
    /// Event name.
    pub name: String,
    /// Body, as a string.
    pub body: String,
}

/// Decodes OTLP requests with `opentelemetry-proto` (prost), through the
/// tests' one decoder ([`selftrace_test_support::record::decode`]).
pub fn decode(requests: &[impl AsRef<[u8]>]) -> Vec<Seen> {
    use selftrace_test_support::record::Value;
    let mut out = Vec::new();
    for bytes in requests {
        for r in selftrace_test_support::record::decode(bytes.as_ref()).records {
            let body = match r.body {
                Some(Value::Str(s)) => s,
                Some(other) => format!("{other:?}"),
                None => String::new(),
            };
            out.push(Seen { scope: r.scope, name: r.event_name.unwrap_or_default(), body });
        }
    }
    out
}

/// An SDK log processor that keeps what it is given (the SDK's in-memory
/// exporter forgets on shutdown).
#[derive(Clone, Debug, Default)]
pub struct KeepSdk(Arc<Mutex<Vec<Seen>>>);

impl KeepSdk {
    /// A provider whose only processor is this one.
    pub fn provider(&self) -> SdkLoggerProvider {
        SdkLoggerProvider::builder().with_log_processor(self.clone()).build()
    }

    /// Everything kept so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl LogProcessor for KeepSdk {
    fn emit(&self, record: &mut SdkLogRecord, scope: &opentelemetry::InstrumentationScope) {
        let body = match record.body() {
            Some(opentelemetry::logs::AnyValue::String(s)) => s.to_string(),
            Some(other) => format!("{other:?}"),
            None => String::new(),
        };
        let seen =
            Seen { scope: scope.name().to_owned(), name: record.event_name().unwrap_or_default().to_owned(), body };
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(seen);
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}
