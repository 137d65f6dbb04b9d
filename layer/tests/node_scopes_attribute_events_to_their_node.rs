//! Node scopes and the `otel_*!` macros: which node a record is attributed
//! to, what each logger override does, and scopes that follow futures.

use selftrace_test_support::record as support;

use std::{process::Command, rc::Rc, time::Duration};

use selftrace::{
    Destination, DropReason, FlushReason, LocalTelemetry, Node, NodeLogger, NodeLogs, OtlpBytesChannel,
    OtlpBytesReceiver, OtlpTracingLayer, SharedTelemetry, node::InNode, otel_debug, otel_error, otel_info, otel_trace,
    otel_warn,
};
use support::{Record, Value, decode};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;

/// Every record in the requests waiting on `receiver`.
fn records(receiver: &OtlpBytesReceiver) -> Vec<Record> {
    receiver.drain().flat_map(|bytes| decode(bytes.as_bytes()).records).collect()
}

fn node_logs() -> (NodeLogs, OtlpBytesReceiver) {
    let channel = OtlpBytesChannel::new(100);
    // Flood control off: some tests repeat a callsite many times.
    let logs = NodeLogs::builder(Destination::Channel(channel.sender()))
        .with_service_name("engine")
        .with_flood_limit(None)
        .build();
    (logs, channel.receiver())
}

fn third_party_layer() -> (OtlpTracingLayer, OtlpBytesReceiver) {
    let channel = OtlpBytesChannel::new(100);
    (OtlpTracingLayer::new(Destination::Channel(channel.sender())), channel.receiver())
}

#[test]
fn a_third_party_event_inside_a_node_scope_is_attributed_to_the_node() {
    let (logs, node_records) = node_logs();
    let (layer, third_party) = third_party_layer();
    let metrics = layer.handle();
    let a = logs.shared(Node::new("receiver.otlp.0"));
    let b = logs.shared(Node::new("processor.batch.0"));

    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info!(target: "hyper", "outside");
        let _in_a = a.enter();
        tracing::info!(target: "hyper", "in a");
        {
            let _in_b = b.enter();
            tracing::warn!(target: "h2", "in b");
        }
        tracing::info!(target: "hyper", "in a again");
    });
    tracing::subscriber::with_default(tracing_subscriber::registry(), || {});

    let outside = records(&third_party);
    assert_eq!(outside.len(), 1);
    assert_eq!(outside[0].scope, "hyper");

    logs.flush(FlushReason::Timer);
    let inside = records(&node_records);
    let seen: Vec<_> = inside.iter().map(|r| (r.scope.as_str(), r.body.clone())).collect();
    assert_eq!(
        seen,
        [
            ("receiver.otlp.0", Some(Value::Str("in a".into()))),
            ("processor.batch.0", Some(Value::Str("in b".into()))),
            ("receiver.otlp.0", Some(Value::Str("in a again".into()))),
        ]
    );
    assert_eq!(inside[1].severity_text.as_deref(), Some("WARN"));
    assert_eq!(metrics.metrics().received(), 4);
    assert_eq!(metrics.metrics().delivered, 4);
    let node_metrics = logs.metrics();
    assert_eq!((node_metrics.events_received, node_metrics.events_delivered), (3, 3));
    assert_eq!(node_metrics.timer_flush_count, 1);
}

#[test]
fn outside_any_scope_nothing_changes_and_leaving_a_scope_restores_the_outer_one() {
    let (logs, _records) = node_logs();
    let a = logs.shared(Node::new("a"));
    let b = logs.shared(Node::new("b"));
    assert!(SharedTelemetry::current().is_none());
    a.in_scope(|| {
        assert_eq!(SharedTelemetry::current().map(|n| n.node().id().to_owned()).as_deref(), Some("a"));
        b.in_scope(|| assert_eq!(SharedTelemetry::current().expect("in a scope").node().id(), "b"));
        assert_eq!(SharedTelemetry::current().expect("in a scope").node().id(), "a");
        assert!(LocalTelemetry::current().is_none(), "a shared scope is not a local one");
    });
    assert!(SharedTelemetry::current().is_none());
}

#[test]
fn otel_macros_build_the_record_from_their_callsite() {
    let (logs, receiver) = node_logs();
    let node = logs.shared(Node::new("exporter.otlp.0"));
    let peer = std::net::Ipv4Addr::LOCALHOST;
    let sizes = vec![1, 2];
    let retries = 3_u64;
    let big = u64::MAX;

    otel_trace!(node, "t.event");
    otel_debug!(node, "d.event", retries);
    otel_info!(node, "i.event", peer = %peer, sizes = ?sizes, http.method = "POST", ok = true, ratio = 0.5);
    otel_warn!(node, "w.event", %peer, ?sizes, big, "retry {} of {}", 1, 3);
    otel_error!(&node, "e.event", code = -1_i64,);
    logs.flush(FlushReason::Explicit);

    let got = records(&receiver);
    assert_eq!(got.len(), 5);
    assert!(got.iter().all(|r| r.scope == "exporter.otlp.0" && r.time.is_some() && r.time == r.observed));
    let names: Vec<_> = got.iter().map(|r| r.event_name.as_deref().unwrap_or("")).collect();
    assert_eq!(names, ["t.event", "d.event", "i.event", "w.event", "e.event"]);
    let severities: Vec<_> = got.iter().map(|r| r.severity.unwrap_or(0)).collect();
    assert_eq!(severities, [1, 5, 9, 13, 17]);

    assert_eq!(got[0].attributes, []);
    assert_eq!(got[0].body, None);
    assert_eq!(got[1].attributes, [("retries".to_owned(), Value::Int(3))]);
    assert_eq!(
        got[2].attributes,
        [
            ("peer".to_owned(), Value::Str("127.0.0.1".into())),
            ("sizes".to_owned(), Value::Str("[1, 2]".into())),
            ("http.method".to_owned(), Value::Str("POST".into())),
            ("ok".to_owned(), Value::Bool(true)),
            ("ratio".to_owned(), Value::Double(0.5)),
        ]
    );
    assert_eq!(got[3].body, Some(Value::Str("retry 1 of 3".into())));
    assert_eq!(
        got[3].attributes,
        [
            ("peer".to_owned(), Value::Str("127.0.0.1".into())),
            ("sizes".to_owned(), Value::Str("[1, 2]".into())),
            ("big".to_owned(), Value::Str(u64::MAX.to_string())),
        ]
    );
    assert_eq!(got[4].attributes, [("code".to_owned(), Value::Int(-1))]);
    // All five of one node share one ScopeLogs.
    let metrics = logs.metrics();
    assert_eq!((metrics.events_received, metrics.events_delivered, metrics.flush_count), (5, 5, 1));
}

#[test]
fn otel_macros_never_touch_the_global_dispatch() {
    let (logs, receiver) = node_logs();
    let node = logs.shared(Node::new("n"));
    let (layer, third_party) = third_party_layer();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        otel_info!(node, "direct", "no subscriber sees this");
    });
    assert!(third_party.is_empty());
    logs.flush(FlushReason::Explicit);
    assert_eq!(records(&receiver).len(), 1);
}

#[test]
fn levels_of_the_path_and_of_the_node_filter_records() {
    let channel = OtlpBytesChannel::new(100);
    let logs = NodeLogs::builder(Destination::Channel(channel.sender())).with_max_level(LevelFilter::INFO).build();
    let quiet = logs.shared(Node::new("quiet").with_max_level(LevelFilter::WARN));
    let normal = logs.shared(Node::new("normal"));
    let mut evaluated = 0;
    let mut count = || {
        evaluated += 1;
        evaluated
    };

    otel_debug!(normal, "skipped", n = count());
    otel_info!(quiet, "skipped", n = count());
    otel_info!(normal, "kept", n = count());
    otel_warn!(quiet, "kept", n = count());
    assert_eq!(evaluated, 2, "values of a disabled record are not evaluated");
    logs.flush(FlushReason::Explicit);
    let got = records(&channel.receiver());
    assert_eq!(got.iter().map(|r| r.scope.as_str()).collect::<Vec<_>>(), ["normal", "quiet"]);
    assert_eq!(logs.metrics().events_received, 2, "disabled records are not produced");

    // A third-party event above the node's level, inside its scope: seen,
    // then discarded and counted.
    let (layer, _third_party) = third_party_layer();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        quiet.in_scope(|| tracing::info!("too verbose for this node"));
    });
    assert_eq!(logs.metrics().events_dropped(DropReason::Discarded), 1);
}

#[test]
fn a_noop_node_produces_nothing() {
    let (logs, receiver) = node_logs();
    let silent = logs.shared(Node::new("silent").with_logger(NodeLogger::Noop));
    let (layer, third_party) = third_party_layer();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        otel_error!(silent, "not.produced");
        silent.in_scope(|| tracing::error!("discarded"));
    });
    logs.flush(FlushReason::Explicit);
    assert!(receiver.is_empty());
    assert!(third_party.is_empty());
    let metrics = logs.metrics();
    assert_eq!(metrics.events_received, 1, "only the third-party event was produced");
    assert_eq!(metrics.events_dropped(DropReason::Discarded), 1);
}

/// Runs this test binary's `test` in a child process with `SELFTRACE_CHILD`
/// set, returning its stderr.
fn child_stderr(test: &str) -> String {
    let exe = std::env::current_exe().expect("test binary path");
    let out =
        Command::new(exe).args(["--exact", test, "--nocapture", "--test-threads=1"]).output().expect("run the child");
    assert!(out.status.success(), "child failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn console_and_raw_nodes_print_on_stderr() {
    let stderr = child_stderr("print_through_console_and_raw_nodes");
    let console = stderr.lines().find(|l| l.contains("console.node")).expect("a console line");
    assert!(console.contains("INFO console.node node.ready: ready port=4317"), "{console}");
    assert!(!console.starts_with("selftrace["), "{console}");
    let raw = stderr.lines().find(|l| l.contains("raw.node")).expect("a raw line");
    assert!(raw.starts_with("selftrace[raw] "), "{raw}");
    assert!(raw.contains("ERROR raw.node node.failed: boom"), "{raw}");
    let library = stderr.lines().find(|l| l.contains("from a library")).expect("a third-party line");
    assert!(library.contains("console.node"), "attributed to the node: {library}");
}

/// Console and raw nodes deliver synchronously, buffering nothing; run
/// again as a child process by `console_and_raw_nodes_print_on_stderr`,
/// which reads what it printed.
#[test]
fn print_through_console_and_raw_nodes() {
    let (logs, receiver) = node_logs();
    let console = logs.shared(Node::new("console.node").with_logger(NodeLogger::Console));
    let raw = logs.shared(Node::new("raw.node").with_logger(NodeLogger::Raw));
    otel_info!(console, "node.ready", port = 4317_i64, "ready");
    otel_error!(raw, "node.failed", "boom");
    let (layer, _third_party) = third_party_layer();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        console.in_scope(|| tracing::info!("from a library"));
    });
    logs.flush(FlushReason::Explicit);
    assert!(receiver.is_empty(), "console and raw nodes do not buffer");
    assert_eq!(logs.metrics().events_delivered, 3);
}

#[test]
fn a_node_scope_follows_its_future_across_threads() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build().expect("a runtime");
    let (logs, receiver) = node_logs();
    let (layer, third_party) = third_party_layer();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));

    let threads = runtime.block_on(async {
        let mut tasks = Vec::new();
        for n in 0..4 {
            let node = logs.shared(Node::new(format!("node.{n}")));
            let dispatch = dispatch.clone();
            let task = node.clone().scope(async move {
                let mut threads = std::collections::HashSet::new();
                for i in 0..50 {
                    threads.insert(std::thread::current().id());
                    tracing::dispatcher::with_default(&dispatch, || tracing::info!(i, "step"));
                    if i % 10 == 0 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    } else {
                        tokio::task::yield_now().await;
                    }
                }
                // A spawned child carries the scope explicitly.
                let child = InNode::new(SharedTelemetry::current(), async move {
                    tracing::dispatcher::with_default(&dispatch, || tracing::info!("child"));
                });
                tokio::spawn(child).await.expect("the task completes");
                threads
            });
            tasks.push(tokio::spawn(task));
        }
        let mut threads = std::collections::HashSet::new();
        for task in tasks {
            threads.extend(task.await.expect("the task completes"));
        }
        threads
    });
    // Outside the future, the worker threads are in no scope.
    runtime.block_on(async {
        tokio::spawn(async { assert!(SharedTelemetry::current().is_none()) }).await.expect("the task completes");
    });
    logs.flush(FlushReason::Timer);

    assert!(third_party.is_empty(), "every event was raised in a node scope");
    let got = records(&receiver);
    assert_eq!(got.len(), 4 * 51);
    for n in 0..4 {
        let scope = format!("node.{n}");
        let of_node: Vec<_> = got.iter().filter(|r| r.scope == scope).collect();
        assert_eq!(of_node.len(), 51, "{scope}");
        // In order, though the node moved between threads (and buffers).
        let steps: Vec<_> = of_node[..50].iter().map(|r| r.attributes[0].1.clone()).collect();
        assert_eq!(steps, (0..50).map(Value::Int).collect::<Vec<_>>(), "{scope}");
        assert_eq!(of_node.last().expect("records").body, Some(Value::Str("child".into())));
    }
    // Usually 2: each worker thread polled some of the futures.
    assert!(threads.len() <= 2);
}

#[test]
fn a_local_node_logs_from_a_current_thread_runtime() {
    let (logs, receiver) = node_logs();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
    let local_set = tokio::task::LocalSet::new();
    local_set.block_on(&runtime, async {
        // A `!Send` node: its state and its telemetry stay on this thread.
        let telemetry = logs.local(Node::new("receiver.local.0"));
        let state = Rc::new(std::cell::Cell::new(0_i64));
        let node = {
            let state = state.clone();
            let telemetry = telemetry.clone();
            telemetry.clone().scope(async move {
                for i in 0..10_i64 {
                    state.set(state.get() + i);
                    otel_info!(telemetry, "tick", total = state.get());
                    tokio::task::yield_now().await;
                }
                assert_eq!(LocalTelemetry::current().expect("in a scope").node().id(), "receiver.local.0");
            })
        };
        tokio::task::spawn_local(node).await.expect("the task completes");
        assert!(LocalTelemetry::current().is_none());
        // The timer owner runs on the same thread.
        logs.flush(FlushReason::Timer);
    });
    let got = records(&receiver);
    assert_eq!(got.len(), 10);
    assert_eq!(got.last().expect("records").attributes, [("total".to_owned(), Value::Int(45))]);
    assert_eq!(logs.metrics().timer_flush_count, 1);
}

/// The macros write most values without `tracing`'s visitor: every kind,
/// cut or not, reaches the record as the same event through `tracing` does
/// (inside the node's scope, so both take the node path).
#[test]
fn otel_macros_write_every_kind_as_the_same_tracing_event() {
    let limits = selftrace::EncoderLimits::new(4096, 1024, 24).expect("limits");
    let channel = OtlpBytesChannel::new(100);
    let logs = NodeLogs::builder(Destination::Channel(channel.sender())).with_limits(limits).build();
    let node = logs.shared(Node::new("n"));
    let (layer, _third_party) = third_party_layer();
    let (short, long, owned) = ("short", "a string longer than the value limit", String::from("owned"));
    let (maybe, none, nested): (Option<i64>, Option<i64>, &&str) = (Some(4), None, &"nested");
    let ip = std::net::Ipv4Addr::LOCALHOST;
    let (boxed, failure) = (Box::new(42_i64), std::io::Error::other("disk full"));
    let error: &(dyn std::error::Error + 'static) = &failure;
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        macro_rules! both {
            ($($fields:tt)*) => {{
                otel_info!(node, "kind.event", $($fields)*);
                node.in_scope(|| tracing::info!(name: "kind.event", $($fields)*));
            }};
        }
        both!(i8v = -8_i8, i16v = 16_i16, i32v = -32_i32, i64v = i64::MIN, isz = -1_isize);
        both!(u8v = 8_u8, u16v = 16_u16, u32v = u32::MAX, u64v = u64::MAX, u64s = 7_u64, us = usize::MAX);
        both!(i128v = i128::MIN, u128v = 5_u128, f32v = 1.5_f32, f64v = f64::MAX, yes = true);
        both!(short, long, owned, nested, maybe, none, boxed, error, empty = tracing::field::Empty);
        both!(%ip, ?ip, shown = %long, debugged = ?long, "static message");
        both!("static message longer than the limit");
        both!("");
        both!(n = 1_i64, "formatted {} {}", 1, long);
        both!(message = "a message field", other = 1_i64);
        // The most fields a call takes: 31 and the message.
        both!(
            a0 = 0_i64, a1 = 1_i64, a2 = "two", a3 = 3.0_f64, a4 = true, a5 = 5_u8, a6 = %ip, a7 = ?ip,
            a8 = maybe, a9 = 9_i64, a10 = 10_i64, a11 = 11_i64, a12 = 12_i64, a13 = 13_i64, a14 = 14_i64,
            a15 = 15_i64, a16 = 16_i64, a17 = 17_i64, a18 = 18_i64, a19 = 19_i64, a20 = 20_i64, a21 = 21_i64,
            a22 = 22_i64, a23 = 23_i64, a24 = 24_i64, a25 = 25_i64, a26 = 26_i64, a27 = 27_i64, a28 = 28_i64,
            a29 = 29_i64, a30 = long, "the last of {}", 32
        );
    });
    logs.flush(FlushReason::Explicit);
    let got = records(&channel.receiver());
    assert_eq!(got.len(), 20);
    assert_eq!(got[18].attributes.len(), 31);
    for pair in got.chunks(2) {
        let (mut macro_record, mut tracing_record) = (pair[0].clone(), pair[1].clone());
        for record in [&mut macro_record, &mut tracing_record] {
            (record.time, record.observed) = (None, None);
        }
        assert_eq!(macro_record, tracing_record);
    }
    let attribute =
        |record: &Record, key: &str| record.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    assert_eq!(attribute(&got[6], "boxed"), Some(Value::Int(42)));
    assert_eq!(attribute(&got[6], "error"), Some(Value::Str("disk full".into())));
    assert_eq!(got[8].body, Some(Value::Str("static message".into())));
    assert_eq!(got[10].body, Some(Value::Str("static mes…[truncated]".into())), "cut to the value limit");
    assert_eq!(got[12].body, None, "an empty message is no body");
    assert_eq!(attribute(&got[8], "shown"), Some(Value::Str("a string l…[truncated]".into())));
}
