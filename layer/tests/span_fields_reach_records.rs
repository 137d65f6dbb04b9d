//! Span fields on log records (`OtlpTracingLayerBuilder::with_span_fields`),
//! and code location, decoded with `opentelemetry-proto` (prost).

use selftrace::{
    Destination, Node, NodeLogs, OtlpBytesChannel, OtlpTracingLayer,
    encoder::TRUNCATION_MARKER,
    spans::{DEFAULT_MAX_SPAN_FIELDS, SpanFields},
};
use selftrace_test_support::record::{Record, Value, decode};
use tracing::Instrument as _;
use tracing_subscriber::layer::SubscriberExt;

fn layer(channel: &OtlpBytesChannel, fields: SpanFields) -> OtlpTracingLayer {
    OtlpTracingLayer::builder(Destination::Channel(channel.sender()))
        .with_span_fields(Some(fields))
        .with_flood_limit(None)
        .build()
}

/// Every record the closure's events made, in order.
fn capture(fields: SpanFields, f: impl FnOnce()) -> Vec<Record> {
    let channel = OtlpBytesChannel::new(4096);
    let layer = layer(&channel, fields);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
    channel.receiver().drain().flat_map(|b| decode(b.as_bytes()).records).collect()
}

fn attrs(record: &Record) -> Vec<(&str, &Value)> {
    record.attributes.iter().map(|(k, v)| (k.as_str(), v)).collect()
}

fn s(v: &str) -> Value {
    Value::Str(v.into())
}

#[test]
fn the_innermost_span_wins_and_the_event_wins_over_spans() {
    let records = capture(SpanFields::all(), || {
        let _request = tracing::info_span!("request", request_id = 7, user = "alice").entered();
        tracing::info!("outer");
        let _db = tracing::info_span!("db", user = "bob", table = "t").entered();
        tracing::info!(rows = 3, "inner");
        tracing::info!(table = "mine", "own field");
    });
    assert_eq!(records.len(), 3);
    assert_eq!(attrs(&records[0]), [("request_id", &Value::Int(7)), ("user", &s("alice"))]);
    assert_eq!(
        attrs(&records[1]),
        [("rows", &Value::Int(3)), ("user", &s("bob")), ("table", &s("t")), ("request_id", &Value::Int(7))]
    );
    assert_eq!(attrs(&records[2]), [("table", &s("mine")), ("user", &s("bob")), ("request_id", &Value::Int(7))]);
    assert!(records.iter().all(|r| r.dropped == 0));
}

#[test]
fn only_named_spans_give_their_fields() {
    let records = capture(SpanFields::named(["request"]), || {
        let _request = tracing::info_span!("request", request_id = 7).entered();
        let _db = tracing::info_span!("db", table = "t").entered();
        tracing::info!("inner");
    });
    assert_eq!(attrs(&records[0]), [("request_id", &Value::Int(7))]);
}

#[test]
fn span_fields_past_the_count_or_the_bytes_are_counted_as_dropped() {
    let by_count = SpanFields::all().with_bounds(2, 4096).expect("in range");
    let records = capture(by_count, || {
        let _a = tracing::info_span!("a", a1 = 1, a2 = 2).entered();
        let _b = tracing::info_span!("b", b1 = 1, b2 = 2, b3 = 3).entered();
        tracing::info!(own = 0, "e");
    });
    assert_eq!(attrs(&records[0]), [("own", &Value::Int(0)), ("b1", &Value::Int(1)), ("b2", &Value::Int(2))]);
    assert_eq!(records[0].dropped, 3);

    // Each `k = "vvvvvvvvvv"` attribute is 2 + 2 + 1 + 2 + 2 + 10 = 19 bytes.
    let by_bytes = SpanFields::all().with_bounds(32, 40).expect("in range");
    let records = capture(by_bytes, || {
        let _a = tracing::info_span!("a", k1 = "vvvvvvvvvv", k2 = "vvvvvvvvvv", k3 = "vvvvvvvvvv").entered();
        tracing::info!("e");
    });
    assert_eq!(attrs(&records[0]).len(), 2);
    assert_eq!(records[0].dropped, 1);
}

#[test]
fn a_field_recorded_later_reaches_the_events_after_it() {
    let records = capture(SpanFields::all(), || {
        let span = tracing::info_span!("request", status = tracing::field::Empty, user = "alice");
        let _in = span.enter();
        tracing::info!("before");
        span.record("status", 200);
        tracing::info!("after");
        span.record("user", "bob");
        tracing::info!("again");
    });
    assert_eq!(attrs(&records[0]), [("user", &s("alice"))]);
    assert_eq!(attrs(&records[1]), [("user", &s("alice")), ("status", &Value::Int(200))]);
    assert_eq!(attrs(&records[2]), [("user", &s("bob")), ("status", &Value::Int(200))]);
}

#[test]
fn a_huge_span_field_is_cut_once_and_counted() {
    let big = "x".repeat(1 << 20);
    // Room for one value at the value limit (8 KiB).
    let fields = SpanFields::all().with_bounds(32, 12 * 1024).expect("in range");
    let records = capture(fields, || {
        let _s = tracing::info_span!("big", blob = big.as_str(), shown = ?big.len()).entered();
        tracing::info!("e");
        tracing::info!("f");
    });
    assert_eq!(records.len(), 2);
    for record in &records {
        let Value::Str(blob) = &record.attributes[0].1 else { panic!("{record:?}") };
        assert!(blob.ends_with(TRUNCATION_MARKER));
        assert!(blob.len() <= selftrace::encoder::DEFAULT_MAX_VALUE_BYTES);
        assert_eq!(record.attributes[1], ("shown".into(), s("1048576")));
        assert_eq!(record.dropped, 1);
    }
}

#[test]
fn a_span_field_past_the_byte_budget_is_left_out_and_counted() {
    let big = "x".repeat(1 << 20);
    // The default budget (4 KiB) is less than a value at its limit (8 KiB).
    let records = capture(SpanFields::all(), || {
        let _s = tracing::info_span!("big", blob = big.as_str(), small = 1).entered();
        tracing::info!("e");
    });
    assert_eq!(attrs(&records[0]), [("small", &Value::Int(1))]);
    // Left out, and cut: counted once.
    assert_eq!(records[0].dropped, 1);
}

#[test]
fn a_debug_value_longer_than_the_limit_is_formatted_once_and_cut() {
    let long: Vec<u32> = (0..10_000).collect();
    let fields = SpanFields::all().with_bounds(32, 12 * 1024).expect("in range");
    let records = capture(fields, || {
        let _s = tracing::info_span!("big", list = ?long).entered();
        tracing::info!("e");
    });
    let Value::Str(list) = &records[0].attributes[0].1 else { panic!() };
    assert!(list.starts_with("[0, 1, 2"));
    assert!(list.ends_with(TRUNCATION_MARKER));
    assert_eq!(records[0].dropped, 1);
}

#[test]
fn a_thousand_spans_of_32_fields_stay_bounded() {
    fn nest(depth: usize, f: &mut dyn FnMut()) {
        if depth == 0 {
            return f();
        }
        let _s = tracing::info_span!(
            "deep",
            f00 = depth,
            f01 = 1,
            f02 = 2,
            f03 = 3,
            f04 = 4,
            f05 = 5,
            f06 = 6,
            f07 = 7,
            f08 = 8,
            f09 = 9,
            f10 = 10,
            f11 = 11,
            f12 = 12,
            f13 = 13,
            f14 = 14,
            f15 = 15,
            f16 = 16,
            f17 = 17,
            f18 = 18,
            f19 = 19,
            f20 = 20,
            f21 = 21,
            f22 = 22,
            f23 = 23,
            f24 = 24,
            f25 = 25,
            f26 = 26,
            f27 = 27,
            f28 = 28,
            f29 = 29,
            f30 = 30,
            f31 = 31
        )
        .entered();
        nest(depth - 1, f)
    }
    let records = capture(SpanFields::all(), || nest(1000, &mut || tracing::info!("deep inside")));
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record.attributes.len(), DEFAULT_MAX_SPAN_FIELDS);
    // The innermost span's fields (depth 1), each key once.
    assert_eq!(record.attributes[0], ("f00".into(), Value::Int(1)));
    // Every other span's 32 fields left out, counted.
    assert_eq!(record.dropped, 999 * 32);
}

#[test]
fn spans_follow_async_tasks_across_threads() {
    let channel = OtlpBytesChannel::new(4096);
    let layer = layer(&channel, SpanFields::all());
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        let tasks: Vec<_> = (0..20_i64)
            .map(|task| {
                let span = tracing::dispatcher::with_default(&dispatch, || tracing::info_span!("task", task));
                tokio::spawn(
                    async move {
                        for step in 0..5_i64 {
                            tokio::task::yield_now().await;
                            tracing::info!(step, "working");
                        }
                    }
                    .instrument(span)
                    .with_subscriber(dispatch.clone()),
                )
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
    });
    let records: Vec<Record> = channel.receiver().drain().flat_map(|b| decode(b.as_bytes()).records).collect();
    assert_eq!(records.len(), 100);
    let mut seen = std::collections::BTreeMap::<i64, Vec<i64>>::new();
    for r in &records {
        let [(step_key, Value::Int(step)), (task_key, Value::Int(task))] = &r.attributes[..] else { panic!("{r:?}") };
        assert_eq!((step_key.as_str(), task_key.as_str()), ("step", "task"));
        seen.entry(*task).or_default().push(*step);
    }
    assert_eq!(seen.len(), 20);
    assert!(seen.values().all(|steps| steps == &[0, 1, 2, 3, 4]));
}

use tracing::instrument::WithSubscriber as _;

#[test]
fn events_in_a_node_scope_carry_span_fields_too() {
    let node_channel = OtlpBytesChannel::new(64);
    let logs = NodeLogs::new(Destination::Channel(node_channel.sender()));
    let node = logs.shared(Node::new("receiver.0"));
    let channel = OtlpBytesChannel::new(64);
    let layer = layer(&channel, SpanFields::all());
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let _s = tracing::info_span!("batch", batch_id = 42).entered();
        node.in_scope(|| tracing::info!(target: "some_library", "inside the node"));
    });
    logs.flush(selftrace::FlushReason::Explicit);
    let records: Vec<Record> = node_channel.receiver().drain().flat_map(|b| decode(b.as_bytes()).records).collect();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].scope, "receiver.0");
    assert!(records[0].attributes.contains(&("batch_id".into(), Value::Int(42))), "{:?}", records[0]);
    assert_eq!(channel.receiver().len(), 0);
}

#[test]
fn code_location_is_written_from_the_callsite() {
    let channel = OtlpBytesChannel::new(64);
    let layer = OtlpTracingLayer::builder(Destination::Channel(channel.sender())).with_code_location(true).build();
    let mut lines = Vec::new();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for _ in 0..2 {
            lines.push(line!() + 1);
            tracing::info!(n = 1, "located");
        }
    });
    let records: Vec<Record> = channel.receiver().drain().flat_map(|b| decode(b.as_bytes()).records).collect();
    assert_eq!(records.len(), 2);
    for (record, line) in records.iter().zip(lines) {
        assert_eq!(
            attrs(record),
            [
                ("code.file.path", &s(file!())),
                ("code.line.number", &Value::Int(i64::from(line))),
                ("code.module.name", &s(module_path!())),
                ("n", &Value::Int(1)),
            ]
        );
    }
}

#[test]
fn otel_records_carry_the_current_spans_when_their_node_logs_ask() {
    let node_channel = OtlpBytesChannel::new(64);
    let logs = NodeLogs::builder(Destination::Channel(node_channel.sender()))
        .with_span_fields(Some(SpanFields::all()))
        .build();
    let plain = NodeLogs::new(Destination::Channel(node_channel.sender()));
    let node = logs.shared(Node::new("processor.0"));
    let plain_node = plain.shared(Node::new("processor.1"));
    let channel = OtlpBytesChannel::new(64);
    let layer = layer(&channel, SpanFields::all());
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        selftrace::otel_info!(node, "outside.span");
        let _s = tracing::info_span!("batch", batch_id = 42, size = 10).entered();
        selftrace::otel_info!(node, "batch.done", size = 11_i64);
        selftrace::otel_info!(plain_node, "batch.done");
    });
    logs.flush(selftrace::FlushReason::Explicit);
    plain.flush(selftrace::FlushReason::Explicit);
    let records: Vec<Record> = node_channel.receiver().drain().flat_map(|b| decode(b.as_bytes()).records).collect();
    assert_eq!(records.len(), 3);
    assert_eq!(attrs(&records[0]), []);
    // The record's own `size` wins over the span's.
    assert_eq!(attrs(&records[1]), [("size", &Value::Int(11)), ("batch_id", &Value::Int(42))]);
    // Node logs that did not ask: none.
    assert_eq!(attrs(&records[2]), []);
}
