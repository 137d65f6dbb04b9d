//! Fidelity against `opentelemetry-appender-tracing`: the same events go
//! through `OpenTelemetryTracingBridge` and through selftrace's layer, channel
//! and bridge, in one subscriber, into two SDK providers; the records are
//! compared field by field. Every difference is one the crate docs list as
//! deliberate.

use selftrace_test_support::sdk as support;

use std::{fmt, time::SystemTime};

use opentelemetry::{
    logs::{AnyValue, Severity},
    trace::{Tracer as _, TracerProvider as _},
};
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_sdk::{logs::SdkLogRecord, trace::SdkTracerProvider};
use selftrace::OtlpTracingLayer;
use selftrace_bridge::SdkBridge;
use support::Keep;
use tracing_subscriber::layer::SubscriberExt;

#[derive(Debug)]
struct Refused;

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection refused")
    }
}

impl std::error::Error for Refused {}

#[derive(Debug)]
#[allow(dead_code, reason = "read through Debug")]
struct Peer {
    addr: &'static str,
    port: u16,
}

/// Every kind of field, level, name and target the two paths may treat
/// differently. Returns the number of events.
fn events(tracer: &opentelemetry_sdk::trace::SdkTracer) -> usize {
    let error: &(dyn std::error::Error + 'static) = &Refused;
    tracing::trace!(target: "hyper::proto", bytes = 512_u64, "read frame");
    tracing::debug!(target: "h2", stream = 3_i64, window = -1_i64, "window update");
    tracing::info!(name: "db.connected", target: "db", pool = 16_u64, ratio = 0.75_f64, tls = true, host = "db.local", "connected to {}", "db.local");
    tracing::warn!(target: "db", big = u64::MAX, wide = i128::MIN, huge = u128::MAX, small = 7_i128, "integers");
    tracing::error!(target: "net", cause = error, peer = ?Peer { addr: "10.0.0.1", port: 4317 }, shown = %"display", "send failed");
    tracing::info!(target: "raw", payload = &b"\x00\x01binary"[..], "bytes");
    tracing::info!(target: "fields_only", answer = 42_i64);
    tracing::info!(target: "unicode", text = "ünïcödé ✓", "héllo wörld");
    tracer.in_span("request", |_cx| {
        tracing::info!(target: "in_span", step = 1_i64, "inside an OpenTelemetry span");
    });
    9
}

/// The appender's attribute for our field `key`: the appender writes errors
/// as `exception.message`.
fn appender_key(key: &str) -> &str {
    if key == "cause" { "exception.message" } else { key }
}

fn attributes(record: &SdkLogRecord) -> Vec<(String, AnyValue)> {
    record.attributes_iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

#[test]
fn every_field_matches_the_appender_or_differs_as_documented() {
    let theirs = Keep::default();
    let ours = Keep::default();
    let appender_provider = theirs.provider();
    let bridge = SdkBridge::builder(ours.provider()).spawn().expect("thread");
    let layer = OtlpTracingLayer::builder(bridge.destination()).with_trace_context(true).build();
    let layer_metrics = layer.handle();
    let tracer_provider = SdkTracerProvider::builder().build();
    let tracer = tracer_provider.tracer("fidelity");

    let before = SystemTime::now();
    let subscriber =
        tracing_subscriber::registry().with(OpenTelemetryTracingBridge::new(&appender_provider)).with(layer);
    let produced = tracing::subscriber::with_default(subscriber, || events(&tracer));
    let after = SystemTime::now();

    let metrics = bridge.shutdown().expect("clean shutdown");
    assert_eq!(layer_metrics.metrics().delivered, produced as u64);
    assert_eq!(metrics.records_emitted, produced as u64);
    assert_eq!(metrics.malformed_requests, 0);

    let theirs = theirs.records();
    let ours = ours.records();
    assert_eq!((theirs.len(), ours.len()), (produced, produced));

    for ((a, a_scope), (b, b_scope)) in theirs.iter().zip(&ours) {
        let target = a.target().expect("the appender sets the target").to_string();
        let what = format!("event of target {target}");

        // Same.
        assert_eq!(b.target().map(|t| t.to_string()), Some(target.clone()), "{what}");
        assert_eq!(b.severity_number(), a.severity_number(), "{what}");
        assert_eq!(b.severity_text(), a.severity_text(), "{what}");
        assert_eq!(
            b.trace_context().map(|t| (t.trace_id, t.span_id, t.trace_flags)),
            a.trace_context().map(|t| (t.trace_id, t.span_id, t.trace_flags)),
            "{what}"
        );
        assert_eq!(b.body(), a.body(), "{what}");
        let a_attributes = attributes(a);
        let b_attributes: Vec<_> = attributes(b).into_iter().map(|(k, v)| (appender_key(&k).to_owned(), v)).collect();
        assert_eq!(b_attributes, a_attributes, "{what}");

        // Deliberately different: event names, timestamps, scope.
        match a.event_name() {
            Some(name) if name.starts_with("event ") => assert_eq!(b.event_name(), None, "{what}: {name}"),
            name => assert_eq!(b.event_name(), name, "{what}"),
        }
        assert_eq!(a.timestamp(), None, "the appender leaves the timestamp to the exporter");
        let t = b.timestamp().expect("we set the event's time");
        assert!(before <= t && t <= after, "{what}: the time of the event");
        assert_eq!(b.observed_timestamp(), Some(t), "{what}");
        assert!(a.observed_timestamp().is_some(), "the SDK sets the observed time");
        assert_eq!(a_scope.name(), "", "the appender logs through one logger with an empty scope name");
        assert_eq!(b_scope.name(), target, "{what}: our scope is the target");
    }

    // The interesting cases, spelled out.
    let by_target = |target: &str| {
        ours.iter().find(|(r, _)| r.target().is_some_and(|t| t == target)).map(|(r, _)| r).expect("record")
    };
    let db = by_target("db");
    assert_eq!(db.event_name(), Some("db.connected"));
    assert_eq!(db.body(), Some(&AnyValue::from("connected to db.local".to_owned())));
    assert_eq!(db.severity_number(), Some(Severity::Info));
    let integers = &ours.iter().filter(|(r, _)| r.target().is_some_and(|t| t == "db")).nth(1).expect("two db events").0;
    assert_eq!(
        attributes(integers),
        [
            ("big".into(), AnyValue::from(u64::MAX.to_string())),
            ("wide".into(), AnyValue::from(i128::MIN.to_string())),
            ("huge".into(), AnyValue::from(u128::MAX.to_string())),
            ("small".into(), AnyValue::Int(7)),
        ]
    );
    let net = attributes(by_target("net"));
    assert_eq!(net[0], ("cause".into(), AnyValue::from("connection refused".to_owned())));
    assert_eq!(net[2], ("shown".into(), AnyValue::from("display".to_owned())));
    assert_eq!(attributes(by_target("raw"))[0].1, AnyValue::Bytes(Box::new(b"\x00\x01binary".to_vec())));
    assert_eq!(by_target("fields_only").body(), None);
    let in_span = by_target("in_span").trace_context().expect("inside a span");
    assert_ne!(in_span.trace_id, opentelemetry::TraceId::INVALID);
}

#[test]
fn an_empty_message_gives_no_body_where_the_appender_gives_an_empty_one() {
    let theirs = Keep::default();
    let ours = Keep::default();
    let appender_provider = theirs.provider();
    let bridge = SdkBridge::builder(ours.provider()).spawn().expect("thread");
    let subscriber =
        tracing_subscriber::registry().with(OpenTelemetryTracingBridge::new(&appender_provider)).with(bridge.layer());
    tracing::subscriber::with_default(subscriber, || tracing::info!(target: "quiet", ""));
    bridge.shutdown().expect("clean shutdown");

    assert_eq!(theirs.records()[0].0.body(), Some(&AnyValue::from(String::new())));
    assert_eq!(ours.records()[0].0.body(), None);
}
