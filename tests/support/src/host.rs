//! Receiver hosts, and decoded records as text.

use std::{cell::RefCell, rc::Rc, time::Duration};

use selftrace::OtlpBytes;
use selftrace_itr::{
    ReceiverHost,
    receiver::{Control, OutputClosed},
};
use tokio::sync::mpsc;

use crate::record::Value;

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

/// A value as text: strings as they are, numbers and booleans as Rust
/// prints them, the rest as `Debug`.
fn text(value: &Value) -> String {
    match value {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Double(d) => d.to_string(),
        other => format!("{other:?}"),
    }
}

/// The records of a request, as text, through [`crate::record::decode`].
pub fn decode(bytes: &[u8]) -> Vec<Rec> {
    let decoded = crate::record::decode(bytes);
    decoded
        .records
        .iter()
        .zip(decoded.services)
        .map(|(record, service)| Rec {
            service,
            scope: record.scope.clone(),
            name: record.event_name.clone().unwrap_or_default(),
            body: record.body.as_ref().map(text).unwrap_or_default(),
            attributes: record.attributes.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
        })
        .collect()
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
