//! Hosts and decoding shared by the receiver's tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::{cell::RefCell, rc::Rc, time::Duration};

use opentelemetry_proto::tonic::{
    collector::logs::v1::ExportLogsServiceRequest,
    common::v1::{AnyValue, any_value},
};
use prost::Message;
use selftrace::OtlpBytes;
use selftrace_itr::{
    ReceiverHost,
    receiver::{Control, OutputClosed},
};
use tokio::sync::mpsc;

/// A multi-threaded tokio host: everything `Send`.
pub struct TokioHost {
    pub output: mpsc::Sender<OtlpBytes>,
    pub control: mpsc::Receiver<Control>,
}

impl ReceiverHost for TokioHost {
    type Sleep = tokio::time::Sleep;

    async fn send(&mut self, batch: OtlpBytes) -> Result<(), OutputClosed> {
        self.output.send(batch).await.map_err(|_| OutputClosed)
    }
    async fn recv_control(&mut self) -> Control {
        self.control.recv().await.unwrap_or(Control::shutdown_within(Duration::from_secs(5)))
    }
    fn sleep(&self, duration: Duration) -> tokio::time::Sleep {
        tokio::time::sleep(duration)
    }
}

/// A thread-per-core host: its state is `Rc`, so its futures are `!Send`.
pub struct LocalHost {
    pub output: Rc<RefCell<Vec<OtlpBytes>>>,
    pub control: mpsc::UnboundedReceiver<Control>,
}

impl ReceiverHost for LocalHost {
    type Sleep = tokio::time::Sleep;

    async fn send(&mut self, batch: OtlpBytes) -> Result<(), OutputClosed> {
        let output = self.output.clone();
        tokio::task::yield_now().await; // a host hop, holding an `Rc` across it
        output.borrow_mut().push(batch);
        Ok(())
    }
    async fn recv_control(&mut self) -> Control {
        self.control.recv().await.unwrap_or(Control::shutdown_within(Duration::from_secs(5)))
    }
    fn sleep(&self, duration: Duration) -> tokio::time::Sleep {
        tokio::time::sleep(duration)
    }
}

/// One decoded record: its resource's service.name, scope, event name,
/// body and attributes rendered as text.
#[derive(Clone, Debug, PartialEq)]
pub struct Rec {
    pub service: String,
    pub scope: String,
    pub name: String,
    pub body: String,
    pub attributes: Vec<(String, String)>,
}

impl Rec {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// Decodes a request with opentelemetry-proto (prost).
pub fn decode(bytes: &[u8]) -> Vec<Rec> {
    let request = ExportLogsServiceRequest::decode(bytes).expect("opentelemetry-proto decodes the batch");
    let mut out = Vec::new();
    for resource_logs in request.resource_logs {
        let service = resource_logs
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .map(|kv| text(kv.value.as_ref()))
            .unwrap_or_default();
        for scope_logs in resource_logs.scope_logs {
            let scope = scope_logs.scope.map(|s| s.name).unwrap_or_default();
            for record in scope_logs.log_records {
                out.push(Rec {
                    service: service.clone(),
                    scope: scope.clone(),
                    name: record.event_name,
                    body: text(record.body.as_ref()),
                    attributes: record.attributes.iter().map(|kv| (kv.key.clone(), text(kv.value.as_ref()))).collect(),
                });
            }
        }
    }
    out
}

/// The records of every batch, in order.
pub fn decode_all<'a>(batches: impl IntoIterator<Item = &'a OtlpBytes>) -> Vec<Rec> {
    batches.into_iter().flat_map(|b| decode(b.as_bytes())).collect()
}

/// Checks that each scope's records carry `seq` 0, 1, 2, ... in order, and
/// returns how many each scope has.
pub fn assert_in_order_per_scope(records: &[Rec]) -> std::collections::BTreeMap<String, u64> {
    let mut next = std::collections::BTreeMap::<String, u64>::new();
    for record in records {
        let expected = next.entry(record.scope.clone()).or_default();
        let seq: u64 = record.attribute("seq").expect("a seq attribute").parse().unwrap();
        assert_eq!(seq, *expected, "records of {} out of order", record.scope);
        *expected += 1;
    }
    next
}
