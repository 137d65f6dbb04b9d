//! Threads that carry selftrace's bytes onward mark themselves with a
//! `PipelineScope`, and the OpenTelemetry SDK marks its exports with a
//! telemetry-suppressed context: events raised there go to the raw logger and
//! are counted, never back into a channel.

use opentelemetry::Context;
use selftrace::{
    Destination, DropReason, FlushReason, Node, NodeLogs, OtlpBytesChannel, OtlpTracingLayer, otel_info,
    pipeline::{enter_pipeline_scope, in_pipeline_scope},
};
use tracing_subscriber::layer::SubscriberExt;

#[test]
fn events_inside_a_pipeline_scope_are_counted_reentrant_and_not_sent() {
    let channel = OtlpBytesChannel::new(100);
    let layer = OtlpTracingLayer::new(Destination::Channel(channel.sender()));
    let handle = layer.handle();

    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info!("before");
        {
            let _outer = enter_pipeline_scope();
            tracing::warn!(target: "hyper", "exporter chatter");
            {
                let _inner = enter_pipeline_scope();
                tracing::warn!(target: "h2", "nested chatter");
            }
            // Dropping the inner scope restored the outer one, not "outside".
            assert!(in_pipeline_scope());
            tracing::warn!(target: "reqwest", "still inside");
        }
        assert!(!in_pipeline_scope());
        tracing::info!("after");
    });

    let m = handle.metrics();
    assert_eq!((m.received(), m.delivered, m.dropped(DropReason::Reentrant)), (5, 2, 3));
    assert_eq!(channel.receiver().len(), 2, "only the events outside the scope were sent");
}

#[test]
fn events_inside_an_opentelemetry_suppressed_context_are_counted_reentrant() {
    let channel = OtlpBytesChannel::new(100);
    let layer = OtlpTracingLayer::new(Destination::Channel(channel.sender()));
    let handle = layer.handle();

    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        {
            let _suppressed = Context::enter_telemetry_suppressed_scope();
            tracing::warn!(target: "opentelemetry_sdk", "export failed");
        }
        tracing::info!("after");
    });

    let m = handle.metrics();
    assert_eq!((m.received(), m.delivered, m.dropped(DropReason::Reentrant)), (2, 1, 1));
    assert_eq!(channel.receiver().len(), 1);
}

#[test]
fn node_records_inside_a_pipeline_scope_or_a_suppressed_context_are_counted_reentrant() {
    let channel = OtlpBytesChannel::new(100);
    let node_logs = NodeLogs::new(Destination::Channel(channel.sender()));
    let node = node_logs.shared(Node::new("exporter.otlp"));

    {
        let _scope = enter_pipeline_scope();
        otel_info!(node, "export.done", records = 3_i64);
    }
    {
        let _suppressed = Context::enter_telemetry_suppressed_scope();
        otel_info!(node, "export.done", records = 4_i64);
    }
    otel_info!(node, "export.done", records = 5_i64);
    node_logs.flush(FlushReason::Explicit);

    let m = node_logs.metrics();
    assert_eq!((m.events_received, m.events_delivered, m.events_dropped(DropReason::Reentrant)), (3, 1, 2));
}

/// The transport crates' events raised on a pipeline thread (an SDK
/// exporter's HTTP client) follow the transport rule, as everywhere else:
/// kept out and counted, printed only at the rule's level, not a raw line
/// each as re-entrant.
#[test]
fn transport_events_inside_a_pipeline_scope_follow_the_transport_rule() {
    let channel = OtlpBytesChannel::new(100);
    let layer = OtlpTracingLayer::builder(Destination::Channel(channel.sender()))
        .with_denied_targets(selftrace::TRANSPORT_TARGETS.iter().copied())
        .build();
    let handle = layer.handle();

    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let _scope = enter_pipeline_scope();
        for _ in 0..100 {
            tracing::trace!(target: "reqwest::blocking::wait", "wait at most 10s");
        }
        tracing::warn!(target: "my_exporter", "not a transport event");
    });

    let m = handle.metrics();
    // Discarded by the rule (its logger is `Noop`, so no line): only the
    // other event is re-entrant (a raw line).
    assert_eq!((m.dropped(DropReason::Discarded), m.dropped(DropReason::Reentrant)), (100, 1), "{m:?}");
    assert!(channel.receiver().is_empty());
}
