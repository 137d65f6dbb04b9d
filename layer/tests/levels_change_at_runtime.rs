//! Levels change while events are logged: the layer's filter (a level or
//! `EnvFilter` directives) and each node's level; a change racing logging
//! threads loses and duplicates nothing, and an invalid change keeps the old
//! level.

use selftrace_test_support::record as support;

use std::{
    collections::HashSet,
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
};

use selftrace::{
    Destination, DropReason, FlushReason, Node, NodeLogs, OtlpBytesChannel, OtlpTracingLayer,
    levels::{DynamicFilter, LevelError},
    otel_debug, otel_info,
};
use support::{Value, decode};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::{Layer, layer::SubscriberExt};

#[test]
fn a_level_change_racing_two_logging_threads_loses_and_duplicates_nothing() {
    const ROUNDS: u64 = 100;
    let channel = OtlpBytesChannel::new(1_000_000);
    let (filter, levels) = DynamicFilter::new(LevelFilter::INFO);
    let layer = OtlpTracingLayer::builder(Destination::Channel(channel.sender())).with_flood_limit(None).build();
    let metrics = layer.handle();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer.with_filter(filter)));
    let progress = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    // Until `events` more were logged (after the change returned).
    let wait_for = |events: u64| {
        let until = progress.load(Ordering::SeqCst) + events;
        while progress.load(Ordering::SeqCst) < until {
            std::thread::yield_now();
        }
    };
    let logged: u64 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2_u64)
            .map(|t| {
                let (dispatch, progress, stop) = (&dispatch, &progress, &stop);
                scope.spawn(move || {
                    tracing::dispatcher::with_default(dispatch, || {
                        let mut i = 0_u64;
                        while !stop.load(Ordering::SeqCst) {
                            tracing::info!(t, i, "tick");
                            i += 1;
                            progress.fetch_add(1, Ordering::SeqCst);
                        }
                        i
                    })
                })
            })
            .collect();
        // Toggle between WARN and INFO while they log, letting at least 50
        // events through each state; changes are made where the subscriber
        // is the default (see `selftrace::levels`).
        tracing::dispatcher::with_default(&dispatch, || {
            for _ in 0..ROUNDS {
                levels.set_level(LevelFilter::WARN).expect("alive");
                wait_for(50);
                levels.set_level(LevelFilter::INFO).expect("alive");
                wait_for(50);
            }
        });
        stop.store(true, Ordering::SeqCst);
        workers.into_iter().map(|w| w.join().expect("worker")).sum()
    });
    let mut seen = HashSet::new();
    for bytes in channel.receiver().drain() {
        for record in decode(bytes.as_bytes()).records {
            let field = |k: &str| record.attributes.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
            let (Some(Value::Int(t)), Some(Value::Int(i))) = (field("t"), field("i")) else { panic!("{record:?}") };
            assert!(seen.insert((t, i)), "({t}, {i}) twice");
        }
    }
    let m = metrics.metrics();
    assert_eq!(m.delivered, seen.len() as u64, "each event the filter let through was delivered once");
    assert_eq!(m.dropped_total(), 0);
    // At most one event per thread was in flight when a change returned.
    let (delivered, filtered) = (seen.len() as u64, logged - seen.len() as u64);
    assert!(delivered >= ROUNDS * 48 && filtered >= ROUNDS * 48, "{delivered} delivered, {filtered} filtered");
}

#[test]
fn directives_change_at_runtime_and_an_invalid_one_keeps_the_old() {
    let channel = OtlpBytesChannel::new(100);
    let (filter, levels) = DynamicFilter::with_directives("warn").expect("valid");
    let layer = OtlpTracingLayer::builder(Destination::Channel(channel.sender())).with_flood_limit(None).build();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer.with_filter(filter)));
    let log_all = || {
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::info!(target: "app", "app info");
            tracing::debug!(target: "db::pool", "pool debug");
            tracing::warn!(target: "net", "net warn");
        })
    };
    // Changes are made where the subscriber is the default (see
    // `selftrace::levels`): here, its scope.
    let in_scope = |change: &dyn Fn()| tracing::dispatcher::with_default(&dispatch, change);
    log_all();
    in_scope(&|| levels.set_directives("error,db=debug").expect("valid"));
    log_all();
    in_scope(&|| {
        let error = levels.set_directives("info,db=[unclosed").expect_err("invalid");
        assert!(matches!(error, LevelError::Directives { .. }), "{error}");
        assert!(error.to_string().contains("the previous level is kept"), "{error}");
    });
    log_all(); // still error,db=debug
    in_scope(&|| levels.set_level(LevelFilter::INFO).expect("alive"));
    log_all();
    let bodies: Vec<String> = channel
        .receiver()
        .drain()
        .flat_map(|b| decode(b.as_bytes()).records)
        .map(|r| match r.body {
            Some(Value::Str(s)) => s,
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        bodies,
        ["net warn", "pool debug", "pool debug", "app info", "net warn"],
        "warn; error,db=debug twice; info"
    );
}

#[test]
fn node_levels_change_at_runtime_for_every_handle() {
    let channel = OtlpBytesChannel::new(100);
    let node_logs = NodeLogs::builder(Destination::Channel(channel.sender())).with_max_level(LevelFilter::INFO).build();
    let node = Node::new("processor.batch.0");
    let shared = node_logs.shared(node.clone());
    let local = node_logs.local(node.clone());
    otel_debug!(shared, "batch.flushed", items = 1_u64); // not produced
    node_logs.set_max_level(LevelFilter::DEBUG);
    otel_debug!(local, "batch.flushed", items = 2_u64);
    node.set_max_level(LevelFilter::INFO); // the node restricts itself
    otel_debug!(shared, "batch.flushed", items = 3_u64); // not produced
    otel_info!(shared, "batch.sent", items = 4_u64);
    assert_eq!((node_logs.max_level(), node.max_level()), (LevelFilter::DEBUG, LevelFilter::INFO));
    node_logs.flush(FlushReason::Explicit);
    let items: Vec<Value> = channel
        .receiver()
        .drain()
        .flat_map(|b| decode(b.as_bytes()).records)
        .filter_map(|r| r.attributes.into_iter().find(|(k, _)| k == "items").map(|(_, v)| v))
        .collect();
    assert_eq!(items, [Value::Int(2), Value::Int(4)]);
    let m = node_logs.metrics();
    assert_eq!((m.events_received, m.events_dropped(DropReason::Discarded)), (2, 0), "{m:?}");
}
