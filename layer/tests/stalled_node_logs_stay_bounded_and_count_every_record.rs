//! Bad input on the node logs: a storm against a stalled channel, a record
//! larger than the buffer, logging from inside a `Debug` implementation,
//! from a panic hook and after shutdown. Nothing blocks, nothing panics out
//! of selftrace, memory stays bounded and every record is counted.

use selftrace_test_support::record as support;

use std::{fmt, panic, thread};

use selftrace::{
    Destination, DropReason, EncoderLimits, FlushReason, Node, NodeLogs, OtlpBytesChannel, SharedTelemetry, otel_error,
    otel_info, otel_warn, raw::set_raw_lines_per_second,
};
use support::decode;

const CAPACITY: usize = 4096;

fn small_node_logs(channel: &OtlpBytesChannel) -> NodeLogs {
    let limits = EncoderLimits::new(CAPACITY, 1024, 256).expect("valid limits");
    // Flood control off: the storms below repeat one callsite.
    NodeLogs::builder(Destination::Channel(channel.sender())).with_limits(limits).with_flood_limit(None).build()
}

#[test]
fn a_storm_against_a_stalled_channel_is_bounded_and_fully_counted() {
    set_raw_lines_per_second(0);
    let channel = OtlpBytesChannel::new(4);
    let receiver = channel.receiver();
    let node_logs = small_node_logs(&channel);
    const PER_THREAD: u64 = 20_000;
    let text = "x".repeat(100);

    // Two threads share one node; a third has a node of its own, local.
    let shared = node_logs.shared(Node::new("storm.shared"));
    let mut workers = Vec::new();
    for t in 0..2 {
        let node = shared.clone();
        let text = text.clone();
        workers.push(thread::spawn(move || {
            for i in 0..PER_THREAD {
                otel_warn!(node, "storm", t, i, text = text.as_str());
            }
        }));
    }
    {
        let node_logs = node_logs.clone();
        workers.push(thread::spawn(move || {
            let node = node_logs.local(Node::new("storm.local"));
            for i in 0..PER_THREAD {
                otel_warn!(node, "storm", i, text = text.as_str());
            }
        }));
    }
    // Joining waits for each thread's exit, which drains its buffers.
    for worker in workers {
        worker.join().expect("a producer never panics");
    }

    // The consumer never ran: the channel holds at most its capacity, each
    // request at most the buffer's capacity.
    assert_eq!(receiver.len(), 4);
    let mut delivered_records = 0;
    for request in receiver.drain() {
        assert!(request.len() <= CAPACITY, "a request of {} bytes", request.len());
        delivered_records += decode(request.as_bytes()).records.len() as u64;
    }
    node_logs.shutdown();

    let metrics = node_logs.metrics();
    assert_eq!(metrics.events_received, 3 * PER_THREAD);
    assert_eq!(metrics.events_buffered(), 0, "{metrics:?}");
    assert_eq!(metrics.events_delivered + metrics.events_dropped_total(), metrics.events_received, "{metrics:?}");
    assert_eq!(metrics.events_delivered, delivered_records, "delivered means in a request the channel took");
    assert_eq!(metrics.events_dropped_total(), metrics.events_dropped(DropReason::ChannelFull), "{metrics:?}");
    assert!(metrics.overflow_flush_count > 0);
    assert!(metrics.flush_count >= metrics.overflow_flush_count);
    assert!(metrics.bytes_flushed as usize <= 4 * CAPACITY);
}

#[test]
fn a_record_larger_than_the_buffer_is_a_counted_drop() {
    set_raw_lines_per_second(0);
    // Values are cut and attributes left out to fit a record in its limit;
    // what cannot shrink is the envelope: here the resource alone outgrows
    // the buffer.
    let channel = OtlpBytesChannel::new(10);
    let limits = EncoderLimits::new(CAPACITY, 1024, 256).expect("valid limits");
    let node_logs = NodeLogs::builder(Destination::Channel(channel.sender()))
        .with_limits(limits)
        .with_resource_attribute("blob", "r".repeat(2 * CAPACITY))
        .build();
    let node = node_logs.shared(Node::new("n"));
    otel_info!(node, "too.large", "cannot fit");
    node_logs.flush(FlushReason::Explicit);

    assert!(channel.receiver().is_empty());
    let metrics = node_logs.metrics();
    assert_eq!(metrics.events_dropped(DropReason::RecordTooLarge), 1);
    assert_eq!((metrics.events_received, metrics.events_dropped_total()), (1, 1));
}

/// Logs through its node while being formatted.
struct Loud(SharedTelemetry);

impl fmt::Debug for Loud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        otel_error!(self.0, "from.debug", "logging while being logged");
        f.write_str("loud")
    }
}

/// Panics while being formatted.
struct Panicky;

impl fmt::Debug for Panicky {
    fn fmt(&self, _f: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("a Debug that panics")
    }
}

#[test]
fn logging_from_debug_from_a_panic_hook_and_after_shutdown_goes_to_the_raw_logger() {
    set_raw_lines_per_second(0);
    let channel = OtlpBytesChannel::new(10);
    let node_logs = small_node_logs(&channel);
    let node = node_logs.shared(Node::new("n"));

    // From inside a Debug implementation: re-entrant, counted, no deadlock
    // on the buffer's lock.
    otel_info!(node, "outer", value = ?Loud(node.clone()));
    assert_eq!(node_logs.metrics().events_dropped(DropReason::Reentrant), 1);

    // A value that panics mid-record, with a panic hook that logs: the hook
    // runs inside selftrace, so its record is re-entrant; the half-written
    // record is rolled back and the buffer stays usable.
    let hook_node = node.clone();
    let previous_hook = panic::take_hook();
    panic::set_hook(Box::new(move |_| otel_error!(hook_node, "panic.hook", "panicking")));
    let unwound = panic::catch_unwind(panic::AssertUnwindSafe(|| otel_info!(node, "boom", value = ?Panicky)));
    panic::set_hook(previous_hook);
    assert!(unwound.is_err());
    assert_eq!(node_logs.metrics().events_dropped(DropReason::Reentrant), 2);

    // A panic hook outside selftrace logs normally.
    let hook_node = node.clone();
    panic::set_hook(Box::new(move |_| otel_error!(hook_node, "panic.hook", "panicking")));
    let _ = panic::catch_unwind(|| panic!("an ordinary panic"));
    let _ = panic::take_hook();

    otel_info!(node, "after");
    node_logs.shutdown();
    otel_info!(node, "after.shutdown");
    node_logs.shutdown(); // idempotent

    let records: Vec<_> = channel.receiver().drain().flat_map(|b| decode(b.as_bytes()).records).collect();
    let names: Vec<_> = records.iter().map(|r| r.event_name.clone().unwrap_or_default()).collect();
    assert_eq!(names, ["outer", "panic.hook", "after"]);
    let metrics = node_logs.metrics();
    assert_eq!(metrics.events_dropped(DropReason::ShutDown), 1);
    assert_eq!(metrics.events_received, metrics.events_delivered + metrics.events_dropped_total(), "{metrics:?}");
}
