//! The receivers' counters as OpenTelemetry observable instruments
//! (feature `metrics`; see [`selftrace::instruments`] for the conventions,
//! the layer's and the node logs'): every series has the attribute
//! `receiver` (the receiver's id), and receivers made after the
//! registration are read too.
//!
//! | instrument | kind | unit | from [`ReceiverMetrics`] |
//! |---|---|---|---|
//! | `selftrace.receiver.requests.offered` | counter | `{request}` | `offered` |
//! | `selftrace.receiver.requests.accepted` | counter | `{request}` | `accepted` |
//! | `selftrace.receiver.requests.dropped` (`reason`: `queue_full`, `evicted`, `malformed`) | counter | `{request}` | `dropped_newest`, `dropped_oldest`, `malformed_requests` |
//! | `selftrace.receiver.queue.length` | gauge | `{request}` | `queued` |
//! | `selftrace.receiver.requests.received` | counter | `{request}` | `requests_received` |
//! | `selftrace.receiver.records.received` | counter | `{record}` | `records_received` |
//! | `selftrace.receiver.records.sent` | counter | `{record}` | `records_sent` |
//! | `selftrace.receiver.records.dropped` (`reason`: `router`, `output_closed`, `deadline`, `unsent`) | counter | `{record}` | `router_dropped_records`, `dropped_output_closed`, `dropped_deadline`, `dropped_unsent` |
//! | `selftrace.receiver.records.pending` | gauge | `{record}` | `pending_records` |
//! | `selftrace.receiver.batches.sent` | counter | `{batch}` | `batches_sent` |
//! | `selftrace.receiver.bytes.sent` | counter | `By` | `bytes_sent` |
//! | `selftrace.receiver.timer_flush_count` | counter | `{flush}` | `timer_flush_count` |

use opentelemetry::{KeyValue, metrics::Meter};
use selftrace::instruments::{Observe, counter, gauge};

use crate::{receiver::ReceiverMetrics, telemetry::InternalTelemetry};

impl InternalTelemetry {
    /// Registers the node logs' and every receiver's counters as
    /// observable instruments on `meter` (see the module docs); receivers
    /// made later are read too. Read at collection only. Once per meter.
    pub fn observe(&self, meter: &Meter) {
        selftrace::instruments::observe_node_logs(meter, self.node_logs(), &[]);
        observe_receivers(meter, self);
    }
}

type Field = (&'static str, &'static str, &'static str, fn(&ReceiverMetrics) -> u64);

/// Observes `value` of every receiver of `telemetry`, with its id.
fn each_receiver(
    telemetry: &InternalTelemetry,
    observe: Observe<'_>,
    value: impl Fn(&ReceiverMetrics, Observe<'_>, &[KeyValue]),
) {
    for receiver in telemetry.metrics().receivers {
        let id = [KeyValue::new("receiver", receiver.id.clone())];
        value(&receiver, &mut *observe, &id);
    }
}

/// Registers every receiver's counters (see the module docs).
pub(crate) fn observe_receivers(meter: &Meter, telemetry: &InternalTelemetry) {
    let counters: [Field; 9] = [
        ("selftrace.receiver.requests.offered", "{request}", "Requests offered to the receiver's queue", |m| m.offered),
        ("selftrace.receiver.requests.accepted", "{request}", "Requests its queue took", |m| m.accepted),
        ("selftrace.receiver.requests.received", "{request}", "Requests the receiver took from its queue", |m| {
            m.requests_received
        }),
        ("selftrace.receiver.records.received", "{record}", "Records in the requests taken", |m| m.records_received),
        ("selftrace.receiver.records.sent", "{record}", "Records sent to the pipeline", |m| m.records_sent),
        ("selftrace.receiver.batches.sent", "{batch}", "Batches sent to the pipeline", |m| m.batches_sent),
        ("selftrace.receiver.bytes.sent", "By", "Bytes of the batches sent", |m| m.bytes_sent),
        ("selftrace.receiver.timer_flush_count", "{flush}", "Timer ticks that flushed the node logs", |m| {
            m.timer_flush_count
        }),
        ("selftrace.receiver.records.pending", "{record}", "Records taken, not sent yet", |m| m.pending_records),
    ];
    for (i, (name, unit, description, read)) in counters.into_iter().enumerate() {
        let telemetry = telemetry.clone();
        let callback = move |observe: Observe<'_>| {
            each_receiver(&telemetry, observe, |m, observe, id| observe(read(m), id));
        };
        // The last one is a level, not a count.
        if i == 8 {
            gauge(meter, name, unit, description, callback)
        } else {
            counter(meter, name, unit, description, callback)
        }
    }
    let queue = telemetry.clone();
    gauge(
        meter,
        "selftrace.receiver.queue.length",
        "{request}",
        "Requests waiting in the receiver's queue",
        move |observe| {
            each_receiver(&queue, observe, |m, observe, id| observe(m.queued, id));
        },
    );
    let requests = telemetry.clone();
    counter(meter, "selftrace.receiver.requests.dropped", "{request}", "Requests dropped, by reason", move |observe| {
        each_receiver(&requests, observe, |m, observe, id| {
            for (reason, value) in
                [("queue_full", m.dropped_newest), ("evicted", m.dropped_oldest), ("malformed", m.malformed_requests)]
            {
                observe(value, &[id[0].clone(), KeyValue::new("reason", reason)]);
            }
        });
    });
    let records = telemetry.clone();
    counter(meter, "selftrace.receiver.records.dropped", "{record}", "Records dropped, by reason", move |observe| {
        each_receiver(&records, observe, |m, observe, id| {
            for (reason, value) in [
                ("router", m.router_dropped_records),
                ("output_closed", m.dropped_output_closed),
                ("deadline", m.dropped_deadline),
                ("unsent", m.dropped_unsent),
            ] {
                observe(value, &[id[0].clone(), KeyValue::new("reason", reason)]);
            }
        });
    });
}
