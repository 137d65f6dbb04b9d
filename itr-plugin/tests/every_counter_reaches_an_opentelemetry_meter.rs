//! `service.telemetry.metrics`: every counter of a `SelfTelemetry` as
//! OpenTelemetry instruments on the engine's meter, exported by the SDK's
//! in-memory exporter equal to the snapshot.

#![cfg(feature = "metrics")]

use opentelemetry::metrics::MeterProvider as _;
use selftrace::{DropReason, FlushReason, otel_info, raw::set_raw_lines_per_second};
use selftrace_itr::{ReceiverSettings, SelfTelemetry, ServiceConfig, config::from_yaml};
use selftrace_test_support::metrics::{collect, in_memory_provider, value};
use tracing_subscriber::layer::SubscriberExt;

#[test]
fn a_stalled_receiver_queue_is_exported_as_the_snapshot_counts_it() {
    set_raw_lines_per_second(0);
    let yaml = "service:\n  telemetry:\n    metrics: { enabled: true }\n    logs:\n      level: info\n      flood_control: { enabled: false }\n      internal_collection: { enabled: true }\n      processors: []\n";
    let config = ServiceConfig::from_yaml("service.yaml", yaml).expect("parses");
    let (provider, exporter) = in_memory_provider();
    let settings: ReceiverSettings = from_yaml("itr.yaml", "channel_capacity: 2").expect("parses");
    let telemetry = SelfTelemetry::builder(&config.telemetry)
        .with_meter(provider.meter("selftrace"))
        .node("main/processor")
        .receiver("itr", settings)
        .build()
        .expect("builds");
    // Taken (so the router feeds it) and never run: its queue of 2 stalls.
    let receiver = telemetry.take_receiver("itr").expect("the receiver");
    let node = telemetry.shared("main/processor").expect("the node");
    tracing::subscriber::with_default(tracing_subscriber::registry().with(telemetry.layer()), || {
        for i in 0..20 {
            tracing::warn!(target: "some_library", attempt = i, "connection refused");
        }
    });
    for i in 0..30_i64 {
        otel_info!(node, "batch.done", i);
    }
    telemetry.node_logs().flush(FlushReason::Explicit);

    let series = collect(&provider, &exporter);
    set_raw_lines_per_second(selftrace::raw::DEFAULT_RAW_LINES_PER_SECOND);
    let snapshot = telemetry.metrics();
    let itr = &snapshot.receivers[0];
    let receiver_value = |name: &str| value(&series, &format!("selftrace.receiver.{name}{{receiver=itr}}"));
    assert_eq!(receiver_value("requests.offered"), itr.offered);
    assert_eq!(itr.offered, 21, "20 third-party requests and one flush of the node's records");
    assert_eq!(receiver_value("requests.accepted"), itr.accepted);
    assert_eq!(receiver_value("queue.length"), 2);
    let queue_full = value(&series, "selftrace.receiver.requests.dropped{reason=queue_full,receiver=itr}");
    assert_eq!(queue_full, itr.dropped_newest);
    assert_eq!(queue_full, 19);
    assert_eq!(receiver_value("requests.accepted") + queue_full, receiver_value("requests.offered"));
    assert_eq!(
        value(&series, "selftrace.receiver.records.dropped{reason=router,receiver=itr}"),
        itr.router_dropped_records
    );

    // The layer: every third-party event delivered to the router.
    assert_eq!(value(&series, "selftrace.layer.records.received{}"), 20);
    assert_eq!(value(&series, "selftrace.layer.records.delivered{}"), snapshot.layer.delivered);
    // The node logs: 30 records, one request, accepted or not by the router.
    assert_eq!(value(&series, "selftrace.telemetry.events_received{}"), 30);
    let delivered = value(&series, "selftrace.telemetry.events_delivered{}");
    let dropped: u64 = DropReason::ALL
        .iter()
        .map(|r| value(&series, &format!("selftrace.telemetry.records.dropped{{reason={}}}", r.as_str())))
        .sum();
    assert_eq!(delivered + dropped, 30, "received == delivered + dropped, exported");
    assert_eq!(delivered, snapshot.node_logs.events_delivered);

    drop(receiver);
    telemetry.shutdown();
    provider.shutdown().expect("shuts down");
}

#[test]
fn the_sdk_bridge_is_exported_as_it_counts() {
    let yaml = "service:\n  telemetry:\n    metrics: { enabled: true }\n    logs:\n      level: info\n      processors: [{ simple: { exporter: { console: } } }]\n";
    let config = ServiceConfig::from_yaml("service.yaml", yaml).expect("parses");
    let (provider, exporter) = in_memory_provider();
    let keep = selftrace_test_support::sdk::Keep::default();
    let telemetry = SelfTelemetry::builder(&config.telemetry)
        .with_meter(provider.meter("selftrace"))
        .with_sdk_provider(keep.provider())
        .build()
        .expect("builds");
    tracing::subscriber::with_default(tracing_subscriber::registry().with(telemetry.layer()), || {
        for i in 0..5 {
            tracing::info!(target: "app", i, "served");
        }
    });
    let last = telemetry.shutdown();
    let series = collect(&provider, &exporter);
    let sdk = last.sdk.expect("the bridge");
    assert_eq!(sdk.records_emitted, 5);
    assert_eq!(keep.len(), 5);
    assert_eq!(value(&series, "selftrace.bridge.records.emitted{}"), sdk.records_emitted);
    assert_eq!(value(&series, "selftrace.bridge.requests{}"), sdk.requests);
    assert_eq!(value(&series, "selftrace.bridge.flushes{outcome=failed}"), 0);
    provider.shutdown().expect("shuts down");
}

#[test]
fn metrics_need_no_meter_and_reject_unknown_keys() {
    // With the feature and no meter given: the global provider's meter (a
    // no-op one here): it builds.
    let yaml = "service:\n  telemetry:\n    metrics: { enabled: true }\n    logs:\n      processors: []\n";
    let config = ServiceConfig::from_yaml("service.yaml", yaml).expect("parses");
    SelfTelemetry::builder(&config.telemetry).build().expect("builds").shutdown();
    let unknown = ServiceConfig::from_yaml("service.yaml", "service:\n  telemetry:\n    metrics: { enable: true }\n");
    assert_eq!(
        unknown.expect_err("a typo").to_string(),
        "service.yaml:3:16: `service.telemetry.metrics.enable`: unknown field `enable`, expected one of enabled"
    );
}
