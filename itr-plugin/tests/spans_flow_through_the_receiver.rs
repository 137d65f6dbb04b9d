//! `tracing` spans through an Internal Telemetry Receiver built for traces:
//! the application's spans arrive downstream as `ExportTraceServiceRequest`
//! batches (prost decodes them), with their parents; the spans the
//! receiver's pipeline makes (an exporter node of the zone opening a span
//! per batch) are never traced, so nothing grows while time passes; an
//! internal telemetry of logs refuses spans, and one of traces refuses
//! records, each counted.
#![cfg(feature = "traces")]
#![allow(clippy::unwrap_used)]

use selftrace_test_support::host as support;

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use selftrace::{DropReason, Node, otel_info};
use selftrace_itr::{InternalTelemetry, PipelineLogger, ReceiverConfig, Zone, receiver::Control};
use support::TokioHost;
use tokio::sync::mpsc;
use tracing_subscriber::layer::SubscriberExt;

const REQUESTS: u64 = 10;

#[test]
fn application_spans_arrive_downstream_and_the_zone_traces_nothing() {
    let telemetry = InternalTelemetry::builder().for_traces().with_service_name("engine").build();
    let config = ReceiverConfig { flush_interval: Duration::from_millis(50), ..ReceiverConfig::default() };
    let receiver = telemetry.receiver("itr.traces", config).unwrap();
    let zone =
        Zone::builder().receiver("itr.traces", PipelineLogger::Noop).edge("itr.traces", "exporter").build().unwrap();
    let exporter = telemetry.node_logs().shared(zone.node("exporter", None).unwrap());
    let layer = telemetry.span_layer();
    let spans = layer.clone();
    let subscriber = tracing_subscriber::registry().with(layer);

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
    let (decoded, seen, later) = tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let (output, mut downstream) = mpsc::channel(4);
            let (control, control_rx) = mpsc::channel(1);
            let running = tokio::spawn(receiver.run(TokioHost { output, control: control_rx }));
            // The exporter node of the zone: a span per batch, as an
            // instrumented exporter would make.
            let exporting = tokio::spawn(exporter.clone().scope(async move {
                let mut decoded = Vec::new();
                while let Some(batch) = downstream.recv().await {
                    let _span = tracing::info_span!("export.batch", bytes = batch.len() as i64).entered();
                    decoded.push(ExportTraceServiceRequest::decode(batch.as_bytes()).unwrap());
                }
                decoded
            }));
            for i in 0..REQUESTS {
                let request = tracing::info_span!(target: "engine", "request", i, otel.kind = "server");
                request.in_scope(|| tracing::info_span!(target: "engine", "decode").in_scope(|| {}));
            }
            // Many flush intervals pass (the paused clock jumps ahead).
            tokio::time::sleep(Duration::from_secs(5)).await;
            let seen = telemetry.metrics().receivers[0].clone();
            tokio::time::sleep(Duration::from_secs(30)).await;
            let later = telemetry.metrics().receivers[0].clone();
            control.send(Control::shutdown_within(Duration::from_secs(1))).await.unwrap();
            running.await.unwrap();
            (exporting.await.unwrap(), seen, later)
        })
    });

    let arrived: Vec<_> = decoded
        .iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| s.spans.iter().map(move |span| (s.scope.as_ref().map(|s| s.name.clone()), span)))
        .collect();
    assert_eq!(arrived.len() as u64, 2 * REQUESTS, "{arrived:#?}");
    assert_eq!((seen.records_received, later.records_received), (2 * REQUESTS, 2 * REQUESTS), "{later:?}");
    assert!(later.batches_sent < 2 * REQUESTS, "batched: {later:?}");
    for (scope, span) in &arrived {
        assert_eq!(scope.as_deref(), Some("engine"));
        if span.name == "decode" {
            let parent = arrived.iter().find(|(_, p)| p.span_id == span.parent_span_id).expect("its parent arrived");
            assert_eq!((parent.1.name.as_str(), &parent.1.trace_id), ("request", &span.trace_id));
        }
    }
    let service = decoded[0].resource_spans[0].resource.as_ref().unwrap().attributes[0].clone();
    assert_eq!(service.key, "service.name");
    let m = spans.metrics();
    assert_eq!((m.started, m.delivered, m.dropped(), m.open), (2 * REQUESTS, 2 * REQUESTS, 0, 0), "{m:?}");
    assert!(m.in_pipeline >= later.batches_sent, "the exporter's spans, not traced: {m:?}");
}

#[test]
fn spans_and_records_never_share_a_batch() {
    let logs = InternalTelemetry::builder().build();
    let traces = InternalTelemetry::builder().for_traces().build();
    let refused = logs.span_layer();
    let counting = refused.clone();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(refused), || {
        tracing::info_span!("request").in_scope(|| {});
    });
    let m = counting.metrics();
    assert_eq!((m.started, m.delivered, m.dropped_channel_closed), (1, 0, 1), "{m:?}");
    assert_eq!(logs.metrics().node_logs.events_received, 0);

    // Records given to the traces one are discarded, counted.
    let node = traces.node_logs().shared(Node::new("processor"));
    otel_info!(node, "item.processed");
    assert_eq!(traces.node_logs().metrics().events_dropped(DropReason::Discarded), 1);
    assert!(matches!(traces.destination(), selftrace::Destination::Noop));
    // Counted where it was refused; nothing reached the span buffers.
    let node_logs = traces.metrics().node_logs;
    assert_eq!((node_logs.events_received, node_logs.events_delivered, node_logs.events_buffered()), (1, 0, 0));
}
