//! The D2 mapping, checked on decoded bytes.

use selftrace_test_support::record as support;

use selftrace::{Destination, OtlpBytesChannel, OtlpTracingLayer, encoder::TRUNCATION_MARKER};
use support::{Value, decode};
use tracing_subscriber::{EnvFilter, Layer as _, layer::SubscriberExt};

#[derive(Debug)]
struct Oops;

impl std::fmt::Display for Oops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("disk on fire")
    }
}

impl std::error::Error for Oops {}

fn capture(f: impl FnOnce()) -> Vec<support::Decoded> {
    let channel = OtlpBytesChannel::new(64);
    let layer = OtlpTracingLayer::builder(Destination::Channel(channel.sender()))
        .with_service_name("mapping-test")
        .with_resource_attribute("host.name", "box")
        .build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
    channel.receiver().drain().map(|b| decode(b.as_bytes())).collect()
}

#[test]
fn every_field_type_maps_to_its_otlp_value() {
    let error: &(dyn std::error::Error + 'static) = &Oops;
    let requests = capture(|| {
        tracing::warn!(
            name: "component.event",
            target: "my_crate::module",
            int = -5_i64,
            small_u64 = 7_u64,
            big_u64 = u64::MAX,
            big_i128 = i128::MIN,
            small_u128 = 3_u128,
            float = 3.5_f64,
            flag = true,
            text = "value",
            shown = %"display me",
            debugged = ?vec![1, 2],
            error,
            "message {}", 42
        );
    });
    assert_eq!(requests.len(), 1, "one request per event");
    let request = &requests[0];
    assert_eq!(request.resource_logs, 1);
    assert_eq!(
        request.resource,
        vec![
            ("service.name".to_owned(), Value::Str("mapping-test".into())),
            ("host.name".to_owned(), Value::Str("box".into()))
        ]
    );
    let record = &request.records[0];
    assert_eq!(record.scope, "my_crate::module");
    assert_eq!(record.severity, Some(13));
    assert_eq!(record.severity_text.as_deref(), Some("WARN"));
    assert_eq!(record.event_name.as_deref(), Some("component.event"));
    assert_eq!(record.body, Some(Value::Str("message 42".into())));
    let time = record.time.expect("time is set");
    assert_eq!(record.observed, Some(time), "observed time is set too");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64);
    assert!(now.is_ok_and(|now| now >= time && now - time < 60_000_000_000));
    let attrs: Vec<(&str, &Value)> = record.attributes.iter().map(|(k, v)| (k.as_str(), v)).collect();
    assert_eq!(
        attrs,
        vec![
            ("int", &Value::Int(-5)),
            ("small_u64", &Value::Int(7)),
            ("big_u64", &Value::Str(u64::MAX.to_string())),
            ("big_i128", &Value::Str(i128::MIN.to_string())),
            ("small_u128", &Value::Int(3)),
            ("float", &Value::Double(3.5)),
            ("flag", &Value::Bool(true)),
            ("text", &Value::Str("value".into())),
            ("shown", &Value::Str("display me".into())),
            ("debugged", &Value::Str("[1, 2]".into())),
            ("error", &Value::Str("disk on fire".into())),
        ]
    );
    assert_eq!(record.dropped, 0);
}

#[test]
fn generated_names_and_empty_messages_are_left_out() {
    let requests = capture(|| {
        tracing::info!(key = 1_i64);
        tracing::info!("");
        tracing::error!(target: "t", "plain");
    });
    let records: Vec<_> = requests.iter().flat_map(|r| r.records.iter()).collect();
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|r| r.event_name.is_none()), "\"event file:line\" is not a name");
    assert_eq!(records[0].body, None);
    assert_eq!(records[1].body, None, "an empty message is no body");
    assert_eq!(records[2].body, Some(Value::Str("plain".into())));
    assert_eq!(records[2].severity, Some(17));
    assert_eq!(records[0].scope, module_path!(), "the default target is the module path");
}

#[test]
fn levels_map_to_otlp_severity_numbers() {
    let requests = capture(|| {
        tracing::trace!("t");
        tracing::debug!("d");
        tracing::info!("i");
        tracing::warn!("w");
        tracing::error!("e");
    });
    let got: Vec<_> = requests
        .iter()
        .flat_map(|r| r.records.iter())
        .map(|r| (r.severity.unwrap_or_default(), r.severity_text.clone().unwrap_or_default()))
        .collect();
    let want: Vec<_> =
        [(1, "TRACE"), (5, "DEBUG"), (9, "INFO"), (13, "WARN"), (17, "ERROR")].map(|(n, t)| (n, t.to_owned())).into();
    assert_eq!(got, want);
}

#[test]
fn oversized_values_are_truncated_and_counted_not_dropped() {
    let channel = OtlpBytesChannel::new(4);
    let layer = OtlpTracingLayer::new(Destination::Channel(channel.sender()));
    let handle = layer.handle();
    let huge = "é".repeat(1 << 19); // 1 MiB of two-byte characters
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info!(huge = huge.as_str(), "body");
    });
    let bytes = channel.receiver().try_recv().expect("delivered");
    let record = &decode(bytes.as_bytes()).records[0];
    let Value::Str(value) = &record.attributes[0].1 else { panic!("string") };
    assert!(value.ends_with(TRUNCATION_MARKER));
    assert_eq!(record.dropped, 1);
    let metrics = handle.metrics();
    assert_eq!((metrics.delivered, metrics.truncated_values), (1, 1));
}

#[test]
fn the_layer_composes_with_per_layer_filters() {
    let channel = OtlpBytesChannel::new(16);
    let layer = OtlpTracingLayer::new(Destination::Channel(channel.sender()));
    let handle = layer.handle();
    let subscriber = tracing_subscriber::registry().with(layer.with_filter(EnvFilter::new("warn,noisy=off")));
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("filtered by level");
        tracing::error!(target: "noisy", "filtered by target");
        tracing::warn!("kept");
    });
    assert_eq!(channel.receiver().len(), 1);
    assert_eq!(handle.metrics().received(), 1, "filtered events never reach the layer");
}
