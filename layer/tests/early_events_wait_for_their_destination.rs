//! The startup buffer: events logged before the destination exists are kept,
//! encoded and bounded, and handed to the destination when it is set, in
//! order and before any newer event; what did not fit is counted and told
//! in one record; with no destination ever set they go to the console.

use selftrace_test_support::record as support;

use std::sync::atomic::{AtomicBool, Ordering};

use selftrace::{
    Destination, DropReason, OtlpBytesChannel, OtlpTracingLayer,
    startup::{OVERFLOW_EVENT, OVERFLOW_SCOPE, StartupBuffer},
};
use support::{Record, Value, decode};
use tracing_subscriber::layer::SubscriberExt;

fn records(channel: &OtlpBytesChannel) -> Vec<Record> {
    channel.receiver().drain().flat_map(|b| decode(b.as_bytes()).records).collect()
}

fn int(record: &Record, key: &str) -> Option<i64> {
    record.attributes.iter().find_map(|(k, v)| match v {
        Value::Int(i) if k == key => Some(*i),
        _ => None,
    })
}

#[test]
fn events_racing_the_hand_over_arrive_after_the_kept_ones_in_order() {
    let layer = OtlpTracingLayer::builder(Destination::startup()).with_flood_limit(None).build();
    let handle = layer.handle();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let channel = OtlpBytesChannel::new(100_000);
    let stop = AtomicBool::new(false);
    let logged = std::thread::scope(|scope| {
        let worker = scope.spawn(|| {
            tracing::dispatcher::with_default(&dispatch, || {
                let mut seq = 0_i64;
                while !stop.load(Ordering::SeqCst) || seq < 2000 {
                    tracing::info!(seq, "tick");
                    seq += 1;
                }
                seq
            })
        });
        while handle.metrics().startup_buffered < 500 {
            std::thread::yield_now();
        }
        handle.set(Destination::Channel(channel.sender())).expect("alive");
        stop.store(true, Ordering::SeqCst);
        worker.join().expect("worker")
    });
    let seqs: Vec<i64> = records(&channel).iter().map(|r| int(r, "seq").expect("seq")).collect();
    assert_eq!(seqs, (0..logged).collect::<Vec<_>>(), "every event once, in order across the hand-over");
    let m = handle.metrics();
    assert_eq!((m.delivered, m.dropped_total(), m.startup_buffered), (logged as u64, 0, 0));
}

#[test]
fn what_did_not_fit_is_counted_and_told_in_one_record() {
    let buffer = StartupBuffer::new(2048);
    let layer = OtlpTracingLayer::builder(Destination::Startup(buffer.clone()))
        .with_service_name("early")
        .with_flood_limit(None)
        .build();
    let handle = layer.handle();
    let channel = OtlpBytesChannel::new(1000);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for seq in 0..100_i64 {
            tracing::info!(seq, "early");
        }
        let kept = buffer.len() as u64;
        assert!(kept > 0 && kept < 100 && buffer.bytes() <= 2048, "{buffer:?}");
        let m = handle.metrics();
        assert_eq!((m.startup_buffered, m.dropped(DropReason::StartupBufferFull)), (kept, 100 - kept));
        assert_eq!(m.received(), 100);
        handle.set(Destination::Channel(channel.sender())).expect("alive");
    });
    let records = records(&channel);
    let (overflow, kept) = records.split_last().expect("records");
    assert!(kept.iter().enumerate().all(|(i, r)| int(r, "seq") == Some(i as i64)), "the first ones, in order");
    assert_eq!((overflow.scope.as_str(), overflow.event_name.as_deref()), (OVERFLOW_SCOPE, Some(OVERFLOW_EVENT)));
    let dropped = 100 - kept.len() as i64;
    assert_eq!(int(overflow, "selftrace.dropped.count"), Some(dropped));
    assert_eq!(
        overflow.body,
        Some(Value::Str(format!("dropped {dropped} events that did not fit the startup buffer (2048 bytes)")))
    );
    let m = handle.metrics();
    assert_eq!(m.delivered, kept.len() as u64 + 1);
    assert_eq!(m.received(), 100 + 1, "the events and the overflow record");
    assert_eq!(m.startup_buffered, 0);
    assert!(buffer.is_empty());
}

#[test]
fn a_layer_dropped_before_any_destination_prints_what_it_kept() {
    let layer = OtlpTracingLayer::new(Destination::startup());
    let handle = layer.handle();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::warn!("kept until the layer goes");
        assert_eq!(handle.metrics().startup_buffered, 1);
    });
    // The layer is gone: its buffer went to the console (stderr).
    let m = handle.metrics();
    assert_eq!((m.delivered, m.startup_buffered), (1, 0));
}

#[test]
fn a_buffer_handed_to_another_buffer_is_counted_once() {
    let layer = OtlpTracingLayer::builder(Destination::startup()).with_flood_limit(None).build();
    let handle = layer.handle();
    let channel = OtlpBytesChannel::new(100);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for seq in 0..3_i64 {
            tracing::info!(seq, "first buffer");
        }
        handle.set(Destination::startup()).expect("alive");
        let m = handle.metrics();
        assert_eq!((m.startup_buffered, m.delivered), (3, 0), "still waiting, in the second buffer");
        tracing::info!(seq = 3_i64, "second buffer");
        handle.set(Destination::Channel(channel.sender())).expect("alive");
    });
    let seqs: Vec<i64> = records(&channel).iter().map(|r| int(r, "seq").expect("seq")).collect();
    assert_eq!(seqs, [0, 1, 2, 3]);
    let m = handle.metrics();
    assert_eq!((m.delivered, m.startup_buffered, m.received()), (4, 0, 4));
}
