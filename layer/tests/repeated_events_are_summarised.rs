//! Flood control: a repeated event past its budget per window is suppressed
//! before it is encoded and summarised in one record; every event and every
//! summary is counted (`received == delivered + dropped`). The windows here
//! are long (an hour) so that nothing depends on how fast the machine runs;
//! the window arithmetic is tested with explicit times in `flood.rs`.

use selftrace_test_support::record as support;

use std::time::Duration;

use selftrace::{
    Destination, DropReason, FlushReason, Node, NodeLogs, OtlpBytes, OtlpBytesChannel, OtlpBytesReceiver,
    OtlpTracingLayer, flood::FloodLimit, otel_warn,
};
use support::{Record, Value, decode};
use tracing_subscriber::layer::SubscriberExt;

const HOUR: Duration = Duration::from_secs(3600);

fn limit(events: u32) -> Option<FloodLimit> {
    Some(FloodLimit::new(events, HOUR).expect("a valid limit"))
}

fn records(receiver: &OtlpBytesReceiver) -> Vec<Record> {
    receiver.drain().flat_map(|bytes: OtlpBytes| decode(bytes.as_bytes()).records).collect()
}

fn attribute<'r>(record: &'r Record, key: &str) -> Option<&'r Value> {
    record.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn int(record: &Record, key: &str) -> i64 {
    match attribute(record, key) {
        Some(Value::Int(v)) => *v,
        other => panic!("{key}: {other:?} in {record:?}"),
    }
}

fn is_summary(record: &Record) -> bool {
    attribute(record, selftrace::flood::SUPPRESSED_COUNT).is_some()
}

#[test]
fn a_storm_from_one_callsite_passes_its_budget_and_one_summary_counts_the_rest() {
    let channel = OtlpBytesChannel::new(100);
    let layer = OtlpTracingLayer::builder(Destination::Channel(channel.sender())).with_flood_limit(limit(10)).build();
    let handle = layer.handle();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_nanos();
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..1000 {
            tracing::warn!(name: "db.retry", target: "db", attempt = i, "connection refused");
            if i % 100 == 0 {
                tracing::info!(target: "other", i, "another callsite");
            }
        }
        assert_eq!(handle.flush_summaries(), Ok(1), "one callsite was suppressed");
        assert_eq!(handle.flush_summaries(), Ok(0), "and its summary is written once");
    });
    let records = records(&channel.receiver());
    let (summaries, events): (Vec<_>, Vec<_>) = records.iter().partition(|r| is_summary(r));
    assert_eq!(events.iter().filter(|r| r.scope == "db").count(), 10, "the budget");
    assert_eq!(events.iter().filter(|r| r.scope == "other").count(), 10, "under its own budget");
    let [summary] = summaries[..] else { panic!("one summary: {summaries:?}") };
    assert_eq!(summary.scope, "db");
    assert_eq!(summary.severity, Some(13));
    assert_eq!(summary.event_name.as_deref(), Some("db.retry"));
    assert_eq!(summary.body, Some(Value::Str("suppressed 990 events in the last 3600 s".into())));
    assert_eq!(int(summary, selftrace::flood::SUPPRESSED_COUNT), 990);
    assert_eq!(int(summary, selftrace::flood::SUPPRESSED_WINDOW_MS), 3_600_000);
    let (first, last) =
        (int(summary, selftrace::flood::SUPPRESSED_FIRST_TIME), int(summary, selftrace::flood::SUPPRESSED_LAST_TIME));
    // The record clock is within 1 ms of the system clock.
    assert!(before <= first as u128 + 1_000_000 && first <= last, "{before} {first} {last}");
    assert!(summary.time.is_some_and(|t| t >= last as u64));

    let m = handle.metrics();
    assert_eq!(m.dropped(DropReason::Suppressed), 990);
    assert_eq!(m.delivered, 21, "20 events and the summary");
    assert_eq!(m.received(), 1010 + 1, "every event, and the summary, counted once");
    assert_eq!(m.flood_untracked, 0);
}

#[test]
fn two_threads_storming_one_callsite_get_one_summary() {
    let channel = OtlpBytesChannel::new(100);
    let layer = OtlpTracingLayer::builder(Destination::Channel(channel.sender())).with_flood_limit(limit(10)).build();
    let handle = layer.handle();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    const PER_THREAD: u64 = 20_000;
    std::thread::scope(|scope| {
        for t in 0..2 {
            let dispatch = &dispatch;
            scope.spawn(move || {
                tracing::dispatcher::with_default(dispatch, || {
                    for i in 0..PER_THREAD {
                        tracing::error!(t, i, "storm");
                    }
                })
            });
        }
    });
    drop(dispatch); // the layer goes, and writes its pending summary
    let records = records(&channel.receiver());
    let summaries: Vec<_> = records.iter().filter(|r| is_summary(r)).collect();
    assert_eq!(records.len() - summaries.len(), 10, "exactly the budget passed, across both threads");
    assert_eq!(summaries.len(), 1);
    assert_eq!(int(summaries[0], selftrace::flood::SUPPRESSED_COUNT), 2 * PER_THREAD as i64 - 10);
    let m = handle.metrics();
    assert_eq!(m.dropped(DropReason::Suppressed), 2 * PER_THREAD - 10);
    assert_eq!(m.received(), 2 * PER_THREAD + 1);
    assert_eq!(m.delivered, 11);
    // The thread that found the key's entry being made waited for it.
    assert_eq!(m.flood_untracked, 0);
}

#[test]
fn a_window_that_ended_is_summarised_before_the_next_event_of_its_callsite() {
    let channel = OtlpBytesChannel::new(100);
    let window = Duration::from_millis(500);
    let flood = FloodLimit::new(2, window).expect("a valid limit");
    let layer = OtlpTracingLayer::builder(Destination::Channel(channel.sender())).with_flood_limit(Some(flood)).build();
    let handle = layer.handle();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let log = |i: u64| tracing::dispatcher::with_default(&dispatch, || tracing::warn!(i, "again"));
    for i in 0..50 {
        log(i);
    }
    std::thread::sleep(window + Duration::from_millis(100));
    log(50);
    let records = records(&channel.receiver());
    // However the 50 events fell into windows, the last record is the 51st
    // event, and a summary that counts the suppressed events of the last
    // window comes right before it.
    let last = records.last().expect("records");
    assert_eq!(attribute(last, "i"), Some(&Value::Int(50)));
    assert!(is_summary(&records[records.len() - 2]), "{records:?}");
    let suppressed: i64 =
        records.iter().filter(|r| is_summary(r)).map(|r| int(r, selftrace::flood::SUPPRESSED_COUNT)).sum();
    let m = handle.metrics();
    assert!(suppressed > 0);
    assert_eq!(suppressed as u64, m.dropped(DropReason::Suppressed), "every suppressed event is in a summary");
    let summaries = records.iter().filter(|r| is_summary(r)).count() as u64;
    assert_eq!(m.received(), 51 + summaries);
    assert_eq!(m.delivered, records.len() as u64);
    assert_eq!(records.len() as u64 - summaries + suppressed as u64, 51);
}

#[test]
fn a_callsite_that_opts_out_is_never_suppressed() {
    let channel = OtlpBytesChannel::new(1000);
    let layer = OtlpTracingLayer::builder(Destination::Channel(channel.sender())).with_flood_limit(limit(1)).build();
    let handle = layer.handle();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..100 {
            tracing::info!(internal_log_rate_limit = false, i, "progress");
        }
        // `true` (or any other value) keeps the limit.
        for i in 0..100 {
            tracing::info!(internal_log_rate_limit = true, i, "limited");
        }
    });
    assert_eq!(handle.metrics().dropped(DropReason::Suppressed), 99);
    assert_eq!(channel.receiver().len(), 100 + 1 + 1, "all, one, and the summary at the layer's drop");
}

#[test]
fn distinct_log_callsites_past_the_table_are_let_through_and_counted() {
    // `log` records share one tracing callsite per level: flood control
    // tells them apart by target, file and line. 100 000 distinct lines
    // overflow the table (512 keys): the rest pass, counted as untracked.
    let channel = OtlpBytesChannel::new(200_000);
    let layer = OtlpTracingLayer::builder(Destination::Channel(channel.sender())).with_flood_limit(limit(1)).build();
    let handle = layer.handle();
    const LINES: u32 = 100_000;
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for line in 0..LINES {
            let args = format_args!("line {line}");
            let record = log::Record::builder()
                .args(args)
                .level(log::Level::Warn)
                .target("legacy")
                .file(Some("legacy.rs"))
                .line(Some(line))
                .build();
            tracing_log::format_trace(&record).expect("dispatched");
        }
        // The same line again: suppressed when its key is in the table.
        let record = log::Record::builder()
            .args(format_args!("line 0 again"))
            .level(log::Level::Warn)
            .target("legacy")
            .file(Some("legacy.rs"))
            .line(Some(0))
            .build();
        tracing_log::format_trace(&record).expect("dispatched");
    });
    let m = handle.metrics();
    assert_eq!(m.dropped(DropReason::Suppressed), 1, "line 0 had its entry");
    assert!(m.flood_untracked >= u64::from(LINES) - 512, "{m:?}");
    assert_eq!(m.received(), u64::from(LINES) + 1 + 1, "and one summary at the layer's drop");
    assert_eq!(m.delivered, u64::from(LINES) + 1);
}

#[test]
fn node_records_are_limited_per_callsite_and_node_and_summarised_by_node() {
    let channel = OtlpBytesChannel::new(100);
    let node_logs = NodeLogs::builder(Destination::Channel(channel.sender())).with_flood_limit(limit(3)).build();
    let a = node_logs.shared(Node::new("receiver.a"));
    let b = node_logs.local(Node::new("receiver.b"));
    let exempt = node_logs.shared(Node::new("receiver.exempt").with_flood_limit(None));
    let generous = node_logs.shared(Node::new("receiver.generous").with_flood_limit(limit(50)));
    for i in 0..100_i64 {
        // One callsite, four nodes: four budgets.
        otel_warn!(a, "queue.full", i);
        otel_warn!(b, "queue.full", i);
        otel_warn!(exempt, "queue.full", i);
        otel_warn!(generous, "queue.full", i);
    }
    // Third-party events in a node's scope: keyed by that node.
    a.in_scope(|| {
        let dispatch =
            tracing::Dispatch::new(tracing_subscriber::registry().with(OtlpTracingLayer::new(Destination::Noop)));
        tracing::dispatcher::with_default(&dispatch, || {
            for i in 0..10 {
                tracing::info!(target: "hyperlocal", i, "in scope");
            }
        });
    });
    node_logs.flush(FlushReason::Explicit);
    let during = node_logs.metrics();
    assert_eq!(during.events_dropped(DropReason::Suppressed), 97 + 97 + 50 + 7);
    node_logs.shutdown(); // writes every pending summary, then drains
    let records = records(&channel.receiver());
    let count =
        |scope: &str, summary: bool| records.iter().filter(|r| r.scope == scope && is_summary(r) == summary).count();
    assert_eq!((count("receiver.a", false), count("receiver.b", false)), (3 + 3, 3));
    assert_eq!((count("receiver.exempt", false), count("receiver.generous", false)), (100, 50));
    // a: its own records and the third-party ones, two keys; b, generous: one.
    assert_eq!((count("receiver.a", true), count("receiver.b", true), count("receiver.generous", true)), (2, 1, 1));
    assert_eq!(count("receiver.exempt", true), 0);
    let summary = records.iter().find(|r| r.scope == "receiver.b" && is_summary(r)).expect("b's summary");
    assert_eq!(summary.event_name.as_deref(), Some("queue.full"));
    assert_eq!(int(summary, selftrace::flood::SUPPRESSED_COUNT), 97);
    let m = node_logs.metrics();
    assert_eq!(m.events_received, 400 + 10 + 4);
    assert_eq!(m.events_received, m.events_delivered + m.events_dropped_total());
    assert_eq!(m.events_delivered as usize, records.len());
}
