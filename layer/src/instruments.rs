//! selftrace's counters as OpenTelemetry instruments (feature `metrics`).
//!
//! Every counter selftrace keeps can be read by an OpenTelemetry
//! `MeterProvider` as observable instruments on a [`Meter`] of the user's
//! (the API crate only: the application brings the SDK and its exporter).
//! The callbacks read the counters that exist anyway, when the provider
//! collects: registering costs the event path nothing (no allocation, no
//! atomic more).
//!
//! Names are under `selftrace.`; monotonic counts are
//! `ObservableCounter<u64>`, levels that go up and down (queues, buffers)
//! `ObservableGauge<u64>`; units follow the semantic conventions
//! (`{record}`, `{request}`, `By`). Drops are one instrument with a
//! `reason` attribute, one value per [`DropReason`] (zeros included, so
//! dashboards see every series).
//!
//! | instrument | kind | unit | from |
//! |---|---|---|---|
//! | `selftrace.layer.records.received` | counter | `{record}` | [`LayerMetrics::received`] |
//! | `selftrace.layer.records.delivered` | counter | `{record}` | [`LayerMetrics::delivered`] |
//! | `selftrace.layer.records.dropped` (`reason`) | counter | `{record}` | [`LayerMetrics::dropped`] |
//! | `selftrace.layer.records.buffered` | gauge | `{record}` | [`LayerMetrics::startup_buffered`] |
//! | `selftrace.layer.values.truncated` | counter | `{value}` | [`LayerMetrics::truncated_values`] |
//! | `selftrace.telemetry.events_received` | counter | `{record}` | [`NodeMetrics::events_received`] |
//! | `selftrace.telemetry.events_delivered` | counter | `{record}` | [`NodeMetrics::events_delivered`] |
//! | `selftrace.telemetry.events_dropped` | counter | `{record}` | [`NodeMetrics::events_dropped_total`] |
//! | `selftrace.telemetry.records.dropped` (`reason`) | counter | `{record}` | [`NodeMetrics::events_dropped`] |
//! | `selftrace.telemetry.events_buffered` | gauge | `{record}` | [`NodeMetrics::events_buffered`] |
//! | `selftrace.telemetry.bytes_flushed` | counter | `By` | [`NodeMetrics::bytes_flushed`] |
//! | `selftrace.telemetry.flush_count` | counter | `{flush}` | [`NodeMetrics::flush_count`] |
//! | `selftrace.telemetry.overflow_flush_count` | counter | `{flush}` | [`NodeMetrics::overflow_flush_count`] |
//! | `selftrace.telemetry.timer_flush_count` | counter | `{flush}` | [`NodeMetrics::timer_flush_count`] |
//!
//! Register each source once per meter: the instruments of a second call
//! report the same series again.
//!
//! The `telemetry.*` names are the design's own list for the node logs.
//! `selftrace-itr` adds each receiver's (attribute `receiver`) and
//! `selftrace-bridge` the SDK bridge's and each native exporter's, with the
//! same helpers.
//!
//! # Examples
//!
//! ```
//! use opentelemetry::metrics::MeterProvider as _;
//! use selftrace::{Destination, NodeLogs, OtlpTracingLayer, instruments};
//!
//! # let provider = opentelemetry::metrics::noop::NoopMeterProvider::new();
//! // `provider`: the application's `SdkMeterProvider`.
//! let meter = provider.meter("selftrace");
//! let layer = OtlpTracingLayer::new(Destination::Noop);
//! instruments::observe_layer(&meter, &layer.handle());
//! instruments::observe_node_logs(&meter, &NodeLogs::new(Destination::Noop), &[]);
//! ```

use std::borrow::Cow;

use opentelemetry::{
    KeyValue,
    metrics::{AsyncInstrument, Meter},
};

use crate::{
    layer::DestinationHandle,
    metrics::{DropReason, LayerMetrics, NodeMetrics},
    node::NodeLogs,
};

/// What an instrument's callback reports: `observe(value, attributes)` once
/// per series.
#[doc(hidden)]
pub type Observe<'a> = &'a mut dyn FnMut(u64, &[KeyValue]);

/// One counter read off a snapshot `T`: its name, unit, description and
/// value (see [`counters`]).
#[doc(hidden)]
pub type Field<T> = (&'static str, &'static str, &'static str, fn(&T) -> u64);

/// Reads a snapshot at collection: what the callbacks of [`counters`] share.
#[doc(hidden)]
pub type Read<T> = std::sync::Arc<dyn Fn() -> T + Send + Sync>;

/// Registers one [`counter`] per field of `fields`, each reading `read()`
/// and reporting one series with `attributes`.
#[doc(hidden)]
pub fn counters<T: 'static>(
    meter: &Meter,
    read: &Read<T>,
    attributes: &std::sync::Arc<[KeyValue]>,
    fields: &[Field<T>],
) {
    for &(name, unit, description, value) in fields {
        let (read, attributes) = (read.clone(), attributes.clone());
        counter(meter, name, unit, description, move |observe: Observe<'_>| observe(value(&read()), &attributes));
    }
}

/// Registers a monotonic counter (`ObservableCounter<u64>`) named `name`
/// whose callback hands `read` the observer at each collection.
#[doc(hidden)]
pub fn counter(
    meter: &Meter,
    name: impl Into<Cow<'static, str>>,
    unit: &'static str,
    description: &'static str,
    read: impl Fn(Observe<'_>) + Send + Sync + 'static,
) {
    meter
        .u64_observable_counter(name)
        .with_unit(unit)
        .with_description(description)
        .with_callback(callback(read))
        .build();
}

/// Registers a gauge (`ObservableGauge<u64>`): a level that goes up and
/// down (a queue, a buffer), read as [`counter`] reads.
#[doc(hidden)]
pub fn gauge(
    meter: &Meter,
    name: impl Into<Cow<'static, str>>,
    unit: &'static str,
    description: &'static str,
    read: impl Fn(Observe<'_>) + Send + Sync + 'static,
) {
    meter
        .u64_observable_gauge(name)
        .with_unit(unit)
        .with_description(description)
        .with_callback(callback(read))
        .build();
}

/// The SDK's callback for `read`: each `observe` it makes is the
/// instrument's.
fn callback(
    read: impl Fn(Observe<'_>) + Send + Sync + 'static,
) -> impl Fn(&dyn AsyncInstrument<u64>) + Send + Sync + 'static {
    move |instrument| read(&mut |value, attributes| instrument.observe(value, attributes))
}

/// `attributes` with `reason` added: one series per [`DropReason`].
#[doc(hidden)]
pub fn by_reason(observe: Observe<'_>, attributes: &[KeyValue], count: impl Fn(DropReason) -> u64) {
    let mut with_reason = Vec::with_capacity(attributes.len() + 1);
    with_reason.extend_from_slice(attributes);
    with_reason.push(KeyValue::new("reason", ""));
    for reason in DropReason::ALL {
        if let Some(last) = with_reason.last_mut() {
            *last = KeyValue::new("reason", reason.as_str());
        }
        observe(count(reason), &with_reason);
    }
}

/// Registers the layer's counters (see the module docs) through `handle`,
/// which keeps them readable after the layer is gone.
pub fn observe_layer(meter: &Meter, handle: &DestinationHandle) {
    let layer = |read: fn(&LayerMetrics) -> u64| {
        let handle = handle.clone();
        move |observe: Observe<'_>| observe(read(&handle.metrics()), &[])
    };
    counter(
        meter,
        "selftrace.layer.records.received",
        "{record}",
        "Events the layer saw",
        layer(LayerMetrics::received),
    );
    counter(
        meter,
        "selftrace.layer.records.delivered",
        "{record}",
        "Events the layer handed to its destination or to a node",
        layer(|m| m.delivered),
    );
    gauge(
        meter,
        "selftrace.layer.records.buffered",
        "{record}",
        "Events waiting in a startup buffer for their destination",
        layer(|m| m.startup_buffered),
    );
    counter(
        meter,
        "selftrace.layer.values.truncated",
        "{value}",
        "Values cut or left out to respect the encoder's limits",
        layer(|m| m.truncated_values),
    );
    let handle = handle.clone();
    counter(
        meter,
        "selftrace.layer.records.dropped",
        "{record}",
        "Events the layer dropped, by reason",
        move |observe| {
            let metrics = handle.metrics();
            by_reason(observe, &[], |reason| metrics.dropped(reason));
        },
    );
}

/// Registers the node logs' counters (see the module docs), each series
/// with `attributes` (none, or what tells several node logs apart).
pub fn observe_node_logs(meter: &Meter, logs: &NodeLogs, attributes: &[KeyValue]) {
    let attributes: std::sync::Arc<[KeyValue]> = attributes.into();
    let read: Read<NodeMetrics> = {
        let logs = logs.clone();
        std::sync::Arc::new(move || logs.metrics())
    };
    counters(
        meter,
        &read,
        &attributes,
        &[
            (
                "selftrace.telemetry.events_received",
                "{record}",
                "Records produced by nodes and events raised in node scopes",
                |m| m.events_received,
            ),
            ("selftrace.telemetry.events_delivered", "{record}", "Records handed to the node logs' destination", |m| {
                m.events_delivered
            }),
            ("selftrace.telemetry.events_dropped", "{record}", "Records dropped, every reason", |m| {
                m.events_dropped_total()
            }),
            ("selftrace.telemetry.bytes_flushed", "By", "Bytes of the requests the destination took", |m| {
                m.bytes_flushed
            }),
            ("selftrace.telemetry.flush_count", "{flush}", "Requests flushed out of buffers", |m| m.flush_count),
            ("selftrace.telemetry.overflow_flush_count", "{flush}", "Flushes made because a buffer was full", |m| {
                m.overflow_flush_count
            }),
            ("selftrace.telemetry.timer_flush_count", "{flush}", "Flushes made by a timer owner", |m| {
                m.timer_flush_count
            }),
        ],
    );
    let (buffered, buffered_attributes) = (read.clone(), attributes.clone());
    gauge(
        meter,
        "selftrace.telemetry.events_buffered",
        "{record}",
        "Records waiting in buffers for their flush",
        move |observe| observe(buffered().events_buffered(), &buffered_attributes),
    );
    let logs = logs.clone();
    counter(
        meter,
        "selftrace.telemetry.records.dropped",
        "{record}",
        "Records the node logs dropped, by reason",
        move |observe| {
            let metrics = logs.metrics();
            by_reason(observe, &attributes, |reason| metrics.events_dropped(reason));
        },
    );
}
