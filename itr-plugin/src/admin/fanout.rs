//! The destination of the exporting side: one exporter or bridge as it is,
//! several through a fan-out, none: the console.

use std::sync::Arc;

use selftrace::{Destination, OtlpBytes, OtlpBytesSender, TrySendError, channel::OtlpSink, json::JsonLines};

pub(super) fn destination(mut destinations: Vec<Destination>) -> Option<Destination> {
    if destinations.len() <= 1 {
        return destinations.pop();
    }
    let senders = destinations
        .into_iter()
        .filter_map(|d| match d {
            Destination::Channel(sender) => Some(sender),
            Destination::OtlpJson(stream) => Some(OtlpBytesSender::from_sink(Arc::new(JsonLines(stream)))),
            // The exporting side makes channels and JSON lines only.
            _ => None,
        })
        .collect();
    Some(Destination::Channel(OtlpBytesSender::from_sink(Arc::new(Fanout(senders)))))
}

/// Every request to every sender (a `Bytes` clone each); each counts
/// its own refusals.
#[derive(Debug)]
struct Fanout(Vec<OtlpBytesSender>);

impl OtlpSink for Fanout {
    fn try_send(&self, bytes: OtlpBytes) -> Result<(), TrySendError> {
        let (mut taken, mut full) = (false, false);
        for sender in &self.0 {
            match sender.try_send(bytes.clone()) {
                Ok(()) => taken = true,
                Err(e) => full |= e.is_full(),
            }
        }
        match (taken, full) {
            (true, _) => Ok(()),
            (false, true) => Err(TrySendError::Full(bytes)),
            (false, false) => Err(TrySendError::Closed(bytes)),
        }
    }

    fn capacity(&self) -> usize {
        self.0.iter().map(OtlpBytesSender::capacity).min().unwrap_or(0)
    }

    fn queued(&self) -> usize {
        self.0.iter().map(OtlpBytesSender::len).max().unwrap_or(0)
    }

    fn is_closed(&self) -> bool {
        self.0.iter().all(OtlpBytesSender::is_closed)
    }
}
