//! The SDK bridge's and the native exporter's counters as OpenTelemetry
//! observable instruments (feature `metrics`; see
//! [`selftrace::instruments`] for the layer's and the node logs', the
//! conventions and the helpers): [`SdkBridge::observe`](crate::SdkBridge::observe),
//! [`OtlpExporter::observe`](crate::OtlpExporter::observe).
//!
//! | instrument | kind | unit | from |
//! |---|---|---|---|
//! | `selftrace.bridge.requests` | counter | `{request}` | [`BridgeMetrics::requests`] |
//! | `selftrace.bridge.records.emitted` | counter | `{record}` | [`BridgeMetrics::records_emitted`] |
//! | `selftrace.bridge.requests.malformed` | counter | `{request}` | [`BridgeMetrics::malformed_requests`] |
//! | `selftrace.bridge.values.dropped` (`field`: `event_name`, `severity_text`) | counter | `{value}` | [`BridgeMetrics::event_names_dropped`], [`BridgeMetrics::severity_texts_dropped`] |
//! | `selftrace.bridge.loggers.uncached` | counter | `{logger}` | [`BridgeMetrics::uncached_loggers`] |
//! | `selftrace.bridge.flushes` (`outcome`: `done`, `failed`) | counter | `{flush}` | [`BridgeMetrics::backpressure_flushes`] |
//! | `selftrace.exporter.requests.received` | counter | `{request}` | [`ExporterMetrics::requests_received`] |
//! | `selftrace.exporter.requests.malformed` | counter | `{request}` | [`ExporterMetrics::malformed_requests`] |
//! | `selftrace.exporter.responses.malformed` | counter | `{response}` | [`ExporterMetrics::malformed_responses`] |
//! | `selftrace.exporter.records.received` | counter | `{record}` | [`ExporterMetrics::records_received`] |
//! | `selftrace.exporter.records.sent` | counter | `{record}` | [`ExporterMetrics::records_sent`] |
//! | `selftrace.exporter.records.acknowledged` | counter | `{record}` | [`ExporterMetrics::records_acknowledged`] |
//! | `selftrace.exporter.records.rejected` | counter | `{record}` | [`ExporterMetrics::records_rejected`] |
//! | `selftrace.exporter.records.dropped` (`reason`: `queue_full`, `rejected`, `retries_exhausted`, `shutdown`) | counter | `{record}` | the `dropped_*` fields |
//! | `selftrace.exporter.records.in_flight` | gauge | `{record}` | [`ExporterMetrics::records_in_flight`] |
//! | `selftrace.exporter.batches.sent` | counter | `{batch}` | [`ExporterMetrics::batches_sent`] |
//! | `selftrace.exporter.bytes.sent` | counter | `By` | [`ExporterMetrics::bytes_sent`] |
//! | `selftrace.exporter.retries` | counter | `{attempt}` | [`ExporterMetrics::retries`] |

use std::sync::Arc;

use opentelemetry::{KeyValue, metrics::Meter};
#[cfg(feature = "export")]
use selftrace::instruments::gauge;
use selftrace::instruments::{Read, counter, counters};

#[cfg(feature = "sdk")]
use crate::{BridgeMetrics, SdkBridge};
#[cfg(feature = "export")]
use crate::{ExporterMetrics, OtlpExporter};

#[cfg(feature = "sdk")]
impl SdkBridge {
    /// Registers the bridge's counters as observable instruments on
    /// `meter`, each series with `attributes` (see the
    /// [`instruments`](crate::instruments) module); read at collection
    /// only. Once per meter.
    pub fn observe(&self, meter: &Meter, attributes: &[KeyValue]) {
        observe_bridge(meter, self.metrics_reader(), attributes);
    }
}

#[cfg(feature = "export")]
impl OtlpExporter {
    /// Registers the exporter's counters as observable instruments on
    /// `meter`, each series with `attributes` (see the
    /// [`instruments`](crate::instruments) module); read at collection
    /// only, also after the exporter stopped. Once per meter.
    pub fn observe(&self, meter: &Meter, attributes: &[KeyValue]) {
        observe_exporter(meter, self.metrics_reader(), attributes);
    }
}

/// `attributes` and one more.
fn with(attributes: &[KeyValue], key: &'static str, value: &'static str) -> Vec<KeyValue> {
    let mut all = attributes.to_vec();
    all.push(KeyValue::new(key, value));
    all
}

#[cfg(feature = "sdk")]
fn observe_bridge(meter: &Meter, read: Read<BridgeMetrics>, attributes: &[KeyValue]) {
    let attributes: Arc<[KeyValue]> = attributes.into();
    counters(
        meter,
        &read,
        &attributes,
        &[
            ("selftrace.bridge.requests", "{request}", "Requests the bridge read", |m| m.requests),
            ("selftrace.bridge.records.emitted", "{record}", "Records emitted into the SDK", |m| m.records_emitted),
            ("selftrace.bridge.requests.malformed", "{request}", "Requests with malformed bytes", |m| {
                m.malformed_requests
            }),
            ("selftrace.bridge.loggers.uncached", "{logger}", "Groups of records through an uncached logger", |m| {
                m.uncached_loggers
            }),
        ],
    );
    let values = (read.clone(), attributes.clone());
    counter(
        meter,
        "selftrace.bridge.values.dropped",
        "{value}",
        "Values left off records: the interner was full",
        move |observe| {
            let m = (values.0)();
            observe(m.event_names_dropped, &with(&values.1, "field", "event_name"));
            observe(m.severity_texts_dropped, &with(&values.1, "field", "severity_text"));
        },
    );
    counter(
        meter,
        "selftrace.bridge.flushes",
        "{flush}",
        "Waits for the provider to export before emitting more",
        move |observe| {
            let m = read();
            observe(m.backpressure_flushes.saturating_sub(m.failed_flushes), &with(&attributes, "outcome", "done"));
            observe(m.failed_flushes, &with(&attributes, "outcome", "failed"));
        },
    );
}

#[cfg(feature = "export")]
fn observe_exporter(meter: &Meter, read: Read<ExporterMetrics>, attributes: &[KeyValue]) {
    let attributes: Arc<[KeyValue]> = attributes.into();
    counters(
        meter,
        &read,
        &attributes,
        &[
            ("selftrace.exporter.requests.received", "{request}", "Requests taken from the channel", |m| {
                m.requests_received
            }),
            ("selftrace.exporter.requests.malformed", "{request}", "Requests that were not OTLP, never sent", |m| {
                m.malformed_requests
            }),
            ("selftrace.exporter.responses.malformed", "{response}", "Successful answers that were not OTLP", |m| {
                m.malformed_responses
            }),
            ("selftrace.exporter.records.received", "{record}", "Records taken from the channel", |m| {
                m.records_received
            }),
            ("selftrace.exporter.records.sent", "{record}", "Records in batches that reached the endpoint", |m| {
                m.records_sent
            }),
            ("selftrace.exporter.records.acknowledged", "{record}", "Records the endpoint accepted", |m| {
                m.records_acknowledged
            }),
            (
                "selftrace.exporter.records.rejected",
                "{record}",
                "Records the endpoint rejected in a partial success",
                |m| m.records_rejected,
            ),
            ("selftrace.exporter.batches.sent", "{batch}", "Batches that reached the endpoint", |m| m.batches_sent),
            ("selftrace.exporter.bytes.sent", "By", "Bytes of the batches sent, before compression", |m| m.bytes_sent),
            ("selftrace.exporter.retries", "{attempt}", "Attempts that were retries", |m| m.retries),
            ("selftrace.exporter.spool.records.written", "{record}", "Records written to the spool", |m| {
                m.records_spooled
            }),
            (
                "selftrace.exporter.spool.records.recovered",
                "{record}",
                "Records a previous exporter left in the spool",
                |m| m.records_recovered,
            ),
            (
                "selftrace.exporter.spool.records.redelivered",
                "{record}",
                "Recovered records sent before (possible duplicates)",
                |m| m.records_redelivered,
            ),
            (
                "selftrace.exporter.spool.frames.corrupt",
                "{frame}",
                "Spool frames torn or damaged, cut off or skipped",
                |m| m.spool_corrupt_frames,
            ),
            ("selftrace.exporter.spool.errors", "{error}", "Spool writes and reads that failed", |m| {
                m.spool_write_errors + m.spool_read_errors
            }),
            ("selftrace.exporter.tls.failures", "{handshake}", "TLS handshakes that failed", |m| m.tls_failures),
            ("selftrace.exporter.tls.reloads", "{reload}", "Certificate files read again after a change", |m| {
                m.tls_reloads
            }),
            (
                "selftrace.exporter.tls.reload_errors",
                "{error}",
                "Certificate file changes that did not load (the last good ones stayed)",
                |m| m.tls_reload_errors,
            ),
        ],
    );
    for (name, unit, description, value) in [
        (
            "selftrace.exporter.spool.records",
            "{record}",
            "Records in the spool not yet acknowledged",
            (|m| m.spool_records) as fn(&ExporterMetrics) -> u64,
        ),
        ("selftrace.exporter.spool.size", "By", "Bytes of the spool's segments", |m| m.spool_bytes),
        ("selftrace.exporter.queue.size", "By", "Bytes the exporter holds in memory", |m| m.queue_bytes),
    ] {
        let (read, attributes) = (read.clone(), attributes.clone());
        gauge(meter, name, unit, description, move |observe| observe(value(&read()), &attributes));
    }
    let (in_flight, in_flight_attributes) = (read.clone(), attributes.clone());
    gauge(
        meter,
        "selftrace.exporter.records.in_flight",
        "{record}",
        "Records taken, not yet acknowledged or dropped",
        move |observe| observe(in_flight().records_in_flight, &in_flight_attributes),
    );
    counter(
        meter,
        "selftrace.exporter.records.dropped",
        "{record}",
        "Records the exporter dropped, by reason",
        move |observe| {
            let m = read();
            for (reason, value) in [
                ("queue_full", m.dropped_queue_full),
                ("spool_full", m.dropped_spool_full),
                ("rejected", m.dropped_rejected),
                ("retries_exhausted", m.dropped_retries_exhausted),
                ("shutdown", m.dropped_shutdown),
            ] {
                observe(value, &with(&attributes, "reason", reason));
            }
        },
    );
}
