//! Counts heap allocations on the path of an event with a counting global
//! allocator (this test binary only).
//!
//! Once warm, the encode path allocates nothing. The request handed to the
//! channel shares the encoder's buffer block; when the consumer keeps up the
//! block is reclaimed and the hand-off costs nothing either. A consumer that
//! lags costs one new block per ~block-size of requests.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
};

use selftrace::{Destination, FlushReason, Node, NodeLogs, OtlpBytesChannel, OtlpTracingLayer, otel_info};
use tracing_subscriber::layer::SubscriberExt;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; it only
// bumps a thread-local counter, which never allocates.
#[expect(unsafe_code, reason = "a counting global allocator for this test")]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|n| n.set(n.get() + 1));
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|n| n.set(n.get() + 1));
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn count_allocations(f: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(Cell::get)
}

fn event(i: u64) {
    tracing::info!(
        name: "component.event",
        target: "bench",
        key1 = 42_i64,
        key2 = "value",
        key3 = 3.5_f64,
        key4 = true,
        i,
        debug = ?("tuple", i),
        "message text"
    );
}

#[test]
fn an_event_to_a_channel_allocates_nothing_once_warm() {
    assert_eq!(count_allocations(|| drop(std::hint::black_box(Box::new(1_u64)))), 1, "the counter counts");
    let channel = OtlpBytesChannel::new(1000);
    let receiver = channel.receiver();
    // Flood control off: every event below comes from one callsite.
    let layer = OtlpTracingLayer::builder(Destination::Channel(channel.sender())).with_flood_limit(None).build();
    let handle = layer.handle();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        // Warm up: thread-locals, the encoder, callsite interest, flume's queue.
        for i in 0..2_000 {
            event(i);
            drop(receiver.try_recv());
        }

        // A consumer that keeps up: zero allocations per event.
        const EVENTS: u64 = 10_000;
        let allocations = count_allocations(|| {
            for i in 0..EVENTS {
                event(i);
                drop(receiver.try_recv());
            }
        });
        assert_eq!(allocations, 0, "{allocations} allocations for {EVENTS} events");

        // A consumer that lags by 500 requests: a new block now and then, far
        // below one allocation per event.
        let allocations = count_allocations(|| {
            for i in 0..EVENTS {
                event(i);
                if i % 500 == 499 {
                    receiver.drain().for_each(drop);
                }
            }
        });
        assert!(allocations <= EVENTS / 50, "{allocations} allocations for {EVENTS} events with a lagging consumer");
    });
    assert_eq!(handle.metrics().dropped_total(), 0);
}

#[test]
fn node_records_allocate_nothing_once_warm() {
    let channel = OtlpBytesChannel::new(1000);
    let receiver = channel.receiver();
    let node_logs = NodeLogs::builder(Destination::Channel(channel.sender())).with_flood_limit(None).build();
    let shared = node_logs.shared(Node::new("receiver.otlp.0"));
    let local = node_logs.local(Node::new("processor.batch.0"));
    let layer = OtlpTracingLayer::new(Destination::Noop);
    let subscriber = tracing_subscriber::registry().with(layer);

    let run = |events: u64| {
        for i in 0..events {
            otel_info!(
                shared,
                "component.event",
                key1 = 42_i64,
                key2 = "value",
                key3 = 3.5_f64,
                key4 = true,
                i,
                "message text"
            );
            otel_info!(local, "component.event", key1 = 42_i64, key2 = "value", debug = ?("tuple", i), "message text");
            // A library logging inside the node's scope.
            shared.in_scope(|| tracing::info!(target: "hyper", i, "third party"));
            if i % 100 == 99 {
                // What the ITR's timer does, and its consumer.
                node_logs.flush(FlushReason::Timer);
                receiver.drain().for_each(drop);
            }
        }
    };
    tracing::subscriber::with_default(subscriber, || {
        run(2_000); // warm up
        const EVENTS: u64 = 10_000;
        let allocations = count_allocations(|| run(EVENTS));
        assert_eq!(allocations, 0, "{allocations} allocations for {} records", 3 * EVENTS);
    });
    node_logs.shutdown();
    let metrics = node_logs.metrics();
    assert_eq!(metrics.events_received, 3 * 12_000);
    assert_eq!(metrics.events_delivered, metrics.events_received);
}

/// A dropped event written by the raw logger, with characters to escape in
/// its message and fields, allocates nothing: the line is escaped into the
/// raw logger's stack buffer.
#[test]
fn a_raw_line_with_control_characters_allocates_nothing() {
    selftrace::raw::set_raw_lines_per_second(u32::MAX);
    let (sender, _receiver) = OtlpBytesChannel::new(1).into_parts();
    let layer = OtlpTracingLayer::builder(Destination::Channel(sender)).with_flood_limit(None).build();
    let handle = layer.handle();
    let evil = "user\x1b[2J\x1b[31mFAKE\nERROR forged line\r\x07\u{202e}\\";
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        // The first fills the channel, the second warms the raw path.
        for _ in 0..2 {
            tracing::info!(user = evil, debug = ?evil, "login from {}", evil);
        }
        let allocations = count_allocations(|| {
            for _ in 0..10 {
                tracing::info!(user = evil, debug = ?evil, "login from {}", evil);
            }
        });
        assert_eq!(allocations, 0);
    });
    let written = selftrace::raw::raw_logger_metrics().written;
    assert!(written >= 11, "the lines were written, not held back ({written})");
    assert_eq!(handle.metrics().dropped(selftrace::DropReason::ChannelFull), 11);
}
