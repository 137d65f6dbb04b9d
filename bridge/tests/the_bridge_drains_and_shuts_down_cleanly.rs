//! The consumer, as a thread and as a tokio task: everything queued before
//! shutdown is emitted, the provider is flushed and shut down once, later
//! sends are refused and counted by the producer, malformed bytes are counted.

use selftrace_test_support::sdk as support;

use bytes::Bytes;
use selftrace::{
    Destination, DropReason, FlushReason, Node, NodeLogs, OtlpBytes, OtlpTracingLayer, TrySendError, otel_info,
};
use selftrace_bridge::SdkBridge;
use support::Keep;
use tracing_subscriber::layer::SubscriberExt;

fn sender(destination: Destination) -> selftrace::OtlpBytesSender {
    match destination {
        Destination::Channel(sender) => sender,
        _ => unreachable!("a bridge's destination is its channel"),
    }
}

#[test]
fn a_thread_bridge_emits_everything_queued_before_shutdown_and_shuts_down_once() {
    let keep = Keep::default();
    let bridge = SdkBridge::builder(keep.provider()).with_channel_capacity(10_000).spawn().expect("thread");
    let layer = OtlpTracingLayer::builder(bridge.destination()).with_flood_limit(None).build();
    let layer_metrics = layer.handle();
    let node_logs = NodeLogs::builder(bridge.destination()).with_flood_limit(None).build();
    let node = node_logs.shared(Node::new("processor.batch"));

    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..3_000_i64 {
            tracing::info!(target: "app", i, "third-party");
            otel_info!(node, "node.tick", i);
        }
    });
    node_logs.shutdown();

    let metrics = bridge.shutdown().expect("clean");
    let delivered = layer_metrics.metrics().delivered + node_logs.metrics().events_delivered;
    assert_eq!(delivered, 6_000);
    assert_eq!(metrics.records_emitted, delivered);
    assert_eq!(keep.len(), 6_000);
    assert_eq!(keep.shutdowns(), 1);
    assert_eq!(bridge.shutdown(), Ok(metrics), "idempotent: the same result again");
    assert_eq!(keep.shutdowns(), 1, "the provider is shut down once");

    // The channel is closed now: a producer counts what it cannot send.
    let late = sender(bridge.destination()).try_send(OtlpBytes::from_bytes(Bytes::from_static(b"")));
    assert!(matches!(late, Err(TrySendError::Closed(_))));
    let late_layer = OtlpTracingLayer::builder(bridge.destination()).with_flood_limit(None).build();
    let late_metrics = late_layer.handle();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(late_layer), || tracing::info!("too late"));
    assert_eq!(late_metrics.metrics().dropped(DropReason::ChannelClosed), 1);
}

#[test]
fn records_of_one_thread_arrive_in_order() {
    let keep = Keep::default();
    let bridge = SdkBridge::builder(keep.provider()).with_channel_capacity(2_000).spawn().expect("thread");
    tracing::subscriber::with_default(
        tracing_subscriber::registry()
            .with(OtlpTracingLayer::builder(bridge.destination()).with_flood_limit(None).build()),
        || {
            for i in 0..1_000_i64 {
                tracing::info!(i);
            }
        },
    );
    bridge.shutdown().expect("clean");
    let order: Vec<_> = keep
        .records()
        .iter()
        .map(|(r, _)| r.attributes_iter().next().map(|(_, v)| v.clone()).expect("attribute i"))
        .collect();
    let expected: Vec<_> = (0..1_000_i64).map(opentelemetry::logs::AnyValue::Int).collect();
    assert_eq!(order, expected);
}

#[test]
fn malformed_requests_are_counted_and_the_records_before_the_error_emitted() {
    let keep = Keep::default();
    let bridge = SdkBridge::builder(keep.provider()).spawn().expect("thread");
    let node_logs = NodeLogs::builder(bridge.destination()).with_flood_limit(None).build();
    let node = node_logs.shared(Node::new("receiver"));
    otel_info!(node, "one");
    otel_info!(node, "two");
    node_logs.flush(FlushReason::Explicit);
    let sender = sender(bridge.destination());
    // Garbage, then a truncated copy of nothing useful.
    sender.try_send(OtlpBytes::from_bytes(Bytes::from_static(&[0xff, 0xff, 0xff]))).expect("room");
    sender.try_send(OtlpBytes::from_bytes(Bytes::from_static(&[0x0a, 0x7f]))).expect("room");

    let metrics = bridge.shutdown().expect("clean");
    assert_eq!((metrics.requests, metrics.records_emitted, metrics.malformed_requests), (3, 2, 2));
    assert_eq!(keep.len(), 2);
}

#[test]
fn a_full_bridge_channel_is_counted_by_the_producer_never_waited_on() {
    let keep = Keep::default();
    // The task is never polled: nothing drains the channel of 4.
    let (bridge, _task) = SdkBridge::builder(keep.provider()).with_channel_capacity(4).into_task();
    let layer = OtlpTracingLayer::builder(bridge.destination()).with_flood_limit(None).build();
    let metrics = layer.handle();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for _ in 0..100 {
            tracing::info!("x");
        }
    });
    let m = metrics.metrics();
    assert_eq!((m.delivered, m.dropped(DropReason::ChannelFull)), (4, 96));
}

#[test]
fn a_task_bridge_on_a_tokio_runtime_drains_and_shuts_down() {
    let keep = Keep::default();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().expect("runtime");
    let (bridge, task) = SdkBridge::builder(keep.provider()).with_channel_capacity(1_000).into_task();
    let running = runtime.spawn(task);
    let layer = OtlpTracingLayer::builder(bridge.destination()).with_flood_limit(None).build();

    runtime.block_on(async {
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            for i in 0..500_i64 {
                tracing::info!(target: "async", i);
            }
        });
        let metrics = bridge.shutdown_async().await.expect("clean");
        assert_eq!(metrics.records_emitted, 500);
        assert_eq!(bridge.shutdown_async().await, Ok(metrics), "idempotent");
    });
    runtime.block_on(running).expect("the task ended");
    assert_eq!(keep.len(), 500);
}

#[test]
fn a_task_bridge_on_a_current_thread_runtime_works_too() {
    let keep = Keep::default();
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let (bridge, task) = SdkBridge::builder(keep.provider()).into_task();
    let local = bridge.node_logs();
    runtime.block_on(async {
        let running = tokio::spawn(task);
        // Flood control off: one callsite, 100 times.
        let node = local.local(Node::new("exporter").with_flood_limit(None));
        for i in 0..100_i64 {
            otel_info!(node, "sent", i);
            tokio::task::yield_now().await;
        }
        local.flush(FlushReason::Explicit);
        bridge.shutdown_async().await.expect("clean");
        running.await.expect("ended");
    });
    assert_eq!(keep.len(), 100);
}

#[test]
fn dropping_a_thread_bridge_shuts_it_down() {
    let keep = Keep::default();
    let bridge = SdkBridge::builder(keep.provider()).spawn().expect("thread");
    tracing::subscriber::with_default(
        tracing_subscriber::registry()
            .with(OtlpTracingLayer::builder(bridge.destination()).with_flood_limit(None).build()),
        || {
            tracing::info!("before drop");
        },
    );
    drop(bridge);
    assert_eq!(keep.len(), 1, "the queued request was emitted before the drop returned");
}
