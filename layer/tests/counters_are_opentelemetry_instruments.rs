//! selftrace's counters through an OpenTelemetry `MeterProvider`
//! (`selftrace::instruments`, feature `metrics`), exported by the SDK's
//! in-memory exporter: what is exported equals the snapshots, and the
//! accounting holds on the exported values.

#![cfg(feature = "metrics")]

use opentelemetry::metrics::MeterProvider as _;
use selftrace::{
    Destination, DropReason, FlushReason, Node, OtlpBytesChannel, OtlpTracingLayer, instruments, otel_info,
    raw::set_raw_lines_per_second,
};
use selftrace_test_support::{
    bench::unlimited_node_logs,
    metrics::{collect, in_memory_provider, value},
};
use tracing_subscriber::layer::SubscriberExt;

#[test]
fn a_storm_into_a_stalled_channel_is_exported_as_counted() {
    set_raw_lines_per_second(0);
    let (provider, exporter) = in_memory_provider();
    let meter = provider.meter("selftrace");

    // A channel of 2 that nobody drains: after 2 events, every event is
    // dropped as `channel_full`.
    let channel = OtlpBytesChannel::new(2);
    let layer = OtlpTracingLayer::builder(Destination::Channel(channel.sender())).with_flood_limit(None).build();
    let handle = layer.handle();
    instruments::observe_layer(&meter, &handle);

    // Node logs into a stalled channel of 1, their requests flushed each
    // 10 records.
    let node_channel = OtlpBytesChannel::new(1);
    let logs = unlimited_node_logs(Destination::Channel(node_channel.sender()));
    instruments::observe_node_logs(&meter, &logs, &[opentelemetry::KeyValue::new("pipeline", "main")]);
    let node = logs.shared(Node::new("receiver.0"));

    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..1000 {
            tracing::warn!(attempt = i, "connection refused");
        }
    });
    for i in 0..50_i64 {
        otel_info!(node, "batch.done", i);
        if i % 10 == 9 {
            logs.flush(FlushReason::Explicit);
        }
    }
    let series = collect(&provider, &exporter);
    set_raw_lines_per_second(selftrace::raw::DEFAULT_RAW_LINES_PER_SECOND);

    let layer = handle.metrics();
    assert_eq!(layer.delivered, 2);
    assert_eq!(layer.dropped(DropReason::ChannelFull), 998);
    let dropped =
        |reason: DropReason| value(&series, &format!("selftrace.layer.records.dropped{{reason={}}}", reason.as_str()));
    assert_eq!(dropped(DropReason::ChannelFull), layer.dropped(DropReason::ChannelFull));
    let exported_drops: u64 = DropReason::ALL.iter().map(|r| dropped(*r)).sum();
    let received = value(&series, "selftrace.layer.records.received{}");
    let delivered = value(&series, "selftrace.layer.records.delivered{}");
    let buffered = value(&series, "selftrace.layer.records.buffered{}");
    assert_eq!(received, 1000);
    assert_eq!(received, delivered + exported_drops + buffered, "received == delivered + dropped, exported");
    assert!(series["selftrace.layer.records.received{}"].1, "a monotonic sum");
    assert!(!series["selftrace.layer.records.buffered{}"].1, "a gauge");

    let nodes = logs.metrics();
    let node_value = |name: &str| value(&series, &format!("selftrace.telemetry.{name}{{pipeline=main}}"));
    assert_eq!(node_value("events_received"), 50);
    assert_eq!(node_value("events_received"), nodes.events_received);
    assert_eq!(node_value("events_delivered"), nodes.events_delivered);
    assert_eq!(nodes.events_delivered, 10, "the first request fits the channel of 1");
    let full = value(&series, "selftrace.telemetry.records.dropped{pipeline=main,reason=channel_full}");
    assert_eq!(full, nodes.events_dropped(DropReason::ChannelFull));
    assert_eq!(full, 40);
    assert_eq!(node_value("events_dropped"), nodes.events_dropped_total());
    assert_eq!(node_value("flush_count"), 5);
    assert_eq!(node_value("bytes_flushed"), nodes.bytes_flushed);
    assert_eq!(node_value("events_buffered"), 0);
    assert_eq!(node_value("events_received"), node_value("events_delivered") + node_value("events_dropped"));
    provider.shutdown().expect("shuts down");
}
