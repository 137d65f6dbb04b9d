//! Fidelity: the same `tracing` spans through `OtlpSpanLayer` and through
//! `tracing-opentelemetry` + the OpenTelemetry SDK (in-memory exporter)
//! give the same names, kinds, parents, attributes, status, span events and
//! links.

#![cfg(feature = "traces")]

use std::collections::BTreeMap;

use opentelemetry::{
    KeyValue, Value as OtelValue,
    trace::{SpanKind as OtelKind, Status, TracerProvider as _},
};
use opentelemetry_proto::tonic::{
    common::v1::any_value::Value,
    trace::v1::{span::SpanKind as ProtoKind, status::StatusCode},
};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use selftrace::{OtlpBytesChannel, traces::OtlpSpanLayer};
use selftrace_test_support::spans::drain_spans;
use tracing_subscriber::layer::SubscriberExt;

/// What both sides must agree on, per span: kind, parent's name,
/// attributes (as text), status (code, message), events (name and
/// attributes as text), links (the linked spans' names).
type Events = Vec<(String, Vec<(String, String)>)>;
type Summary =
    BTreeMap<String, (String, Option<String>, BTreeMap<String, String>, (String, String), Events, Vec<String>)>;

fn workload() {
    let request = tracing::info_span!(
        "request",
        otel.name = "GET /v1/logs",
        otel.kind = "server",
        route = "/v1/logs",
        size = 512_i64,
        ok = true,
        ratio = 0.5
    );
    request.in_scope(|| {
        let decode = tracing::info_span!("decode", otel.kind = "internal", records = 3_i64);
        decode.in_scope(|| {
            tracing::info!(records = 3_i64, "decoded");
            tracing::warn!(name: "decode.slow", late = true, "slow batch");
            tracing::info_span!(
                "call",
                otel.kind = "client",
                peer = "db",
                otel.status_code = "error",
                otel.status_description = "timed out"
            )
            .in_scope(|| {});
        });
        tracing::info_span!("retry", attempt = 2_i64).in_scope(|| tracing::error!("gave up"));
        tracing::info_span!("flush").in_scope(|| tracing::warn!(error = %"disk full"));
        let publish = tracing::info_span!("publish", otel.kind = "producer", otel.status_code = "ok");
        publish.follows_from(&decode);
        publish.in_scope(|| {});
    });
    request.record("size", 1024_i64);
}

fn ours() -> Summary {
    let channel = OtlpBytesChannel::new(64);
    tracing::subscriber::with_default(
        tracing_subscriber::registry().with(OtlpSpanLayer::builder(channel.sender()).with_span_events(true).build()),
        workload,
    );
    let spans: Vec<_> = drain_spans(&channel).into_iter().map(|(_, span)| span).collect();
    let names: BTreeMap<Vec<u8>, String> = spans.iter().map(|s| (s.span_id.clone(), s.name.clone())).collect();
    spans
        .iter()
        .map(|s| {
            let kind = match ProtoKind::try_from(s.kind).unwrap_or(ProtoKind::Unspecified) {
                ProtoKind::Server => "server",
                ProtoKind::Client => "client",
                ProtoKind::Producer => "producer",
                ProtoKind::Consumer => "consumer",
                _ => "internal",
            };
            let text = |kv: &opentelemetry_proto::tonic::common::v1::KeyValue| {
                let text = match kv.value.as_ref().and_then(|v| v.value.clone()) {
                    Some(Value::StringValue(v)) => v,
                    Some(Value::IntValue(v)) => v.to_string(),
                    Some(Value::BoolValue(v)) => v.to_string(),
                    Some(Value::DoubleValue(v)) => v.to_string(),
                    other => format!("{other:?}"),
                };
                (kv.key.clone(), text)
            };
            let attributes = s.attributes.iter().map(text).collect();
            let events = s.events.iter().map(|e| (e.name.clone(), e.attributes.iter().map(text).collect())).collect();
            let links = s.links.iter().filter_map(|l| names.get(&l.span_id).cloned()).collect();
            let status = s.status.clone().unwrap_or_default();
            let status = match StatusCode::try_from(status.code).unwrap_or(StatusCode::Unset) {
                StatusCode::Ok => ("ok".to_owned(), String::new()),
                StatusCode::Error => ("error".to_owned(), status.message),
                StatusCode::Unset => ("unset".to_owned(), String::new()),
            };
            let parent = names.get(&s.parent_span_id).cloned();
            (s.name.clone(), (kind.to_owned(), parent, attributes, status, events, links))
        })
        .collect()
}

fn theirs() -> Summary {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("fidelity"))
        .with_location(false)
        .with_target(false)
        .with_threads(false)
        .with_tracked_inactivity(false);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), workload);
    let _ = provider.force_flush();
    let spans = exporter.get_finished_spans().expect("the SDK's spans");
    let names: std::collections::HashMap<_, _> =
        spans.iter().map(|s| (s.span_context.span_id(), s.name.to_string())).collect();
    let text = |value: &OtelValue| match value {
        OtelValue::String(s) => s.to_string(),
        other => other.to_string(),
    };
    spans
        .iter()
        .map(|s| {
            let kind = match s.span_kind {
                OtelKind::Server => "server",
                OtelKind::Client => "client",
                OtelKind::Producer => "producer",
                OtelKind::Consumer => "consumer",
                OtelKind::Internal => "internal",
            };
            let attributes =
                s.attributes.iter().map(|KeyValue { key, value, .. }| (key.to_string(), text(value))).collect();
            let events: Events = s
                .events
                .iter()
                .map(|e| {
                    let attributes = e.attributes.iter().map(|kv| (kv.key.to_string(), text(&kv.value))).collect();
                    (e.name.to_string(), attributes)
                })
                .collect();
            let status = match &s.status {
                Status::Ok => ("ok".to_owned(), String::new()),
                Status::Error { description } => ("error".to_owned(), description.to_string()),
                Status::Unset => ("unset".to_owned(), String::new()),
            };
            let links = s.links.iter().filter_map(|l| names.get(&l.span_context.span_id()).cloned()).collect();
            let parent = names.get(&s.parent_span_id).cloned();
            (s.name.to_string(), (kind.to_owned(), parent, attributes, status, events, links))
        })
        .collect()
}

#[test]
fn the_same_spans_give_the_same_names_kinds_parents_attributes_status_and_events() {
    let (ours, theirs) = (ours(), theirs());
    assert_eq!(ours.keys().collect::<Vec<_>>(), ["GET /v1/logs", "call", "decode", "flush", "publish", "retry"]);
    assert_eq!(ours["retry"].3, ("error".to_owned(), String::new()), "an ERROR event fails its span");
    assert_eq!(ours["publish"].5, ["decode"], "{ours:#?}");
    assert_eq!(ours, theirs);
}
