//! Every event lands in exactly one destination while another thread swaps.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
};

use selftrace::{Destination, DestinationHandle, OtlpBytesChannel, OtlpTracingLayer};
use tracing_subscriber::layer::SubscriberExt;

/// A thread that sets `b`, `a`, `b`, ... as `handle`'s destination until
/// `done`, then `b` once more (it ends on `b`); returns how many swaps.
fn swap_until(
    done: &Arc<AtomicBool>,
    handle: &DestinationHandle,
    a: Destination,
    b: Destination,
) -> thread::JoinHandle<u64> {
    let (done, handle) = (done.clone(), handle.clone());
    thread::spawn(move || {
        let mut swaps = 0u64;
        while !done.load(Ordering::Relaxed) {
            let next = if swaps.is_multiple_of(2) { &b } else { &a };
            handle.set(next.clone()).expect("layer alive");
            swaps += 1;
            thread::yield_now();
        }
        handle.set(b).expect("layer alive");
        swaps
    })
}

#[test]
fn swapping_between_channels_under_load_delivers_each_event_once() {
    const THREADS: usize = 2;
    const PER_THREAD: usize = 20_000;
    let a = OtlpBytesChannel::new(THREADS * PER_THREAD);
    let b = OtlpBytesChannel::new(THREADS * PER_THREAD);
    // Flood control off: each producer logs from one callsite.
    let layer = OtlpTracingLayer::builder(Destination::Channel(a.sender())).with_flood_limit(None).build();
    let handle = layer.handle();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));

    let done = Arc::new(AtomicBool::new(false));
    let swapper = swap_until(&done, &handle, Destination::Channel(a.sender()), Destination::Channel(b.sender()));
    let producers: Vec<_> = (0..THREADS)
        .map(|t| {
            let dispatch = dispatch.clone();
            thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    for i in 0..PER_THREAD {
                        tracing::info!(thread = t, i, "load");
                    }
                })
            })
        })
        .collect();
    for p in producers {
        p.join().expect("producer");
    }
    done.store(true, Ordering::Relaxed);
    let swaps = swapper.join().expect("swapper");

    let (in_a, in_b) = (a.receiver().len(), b.receiver().len());
    let m = handle.metrics();
    assert!(swaps > 10, "the destination was swapped while logging ({swaps} swaps)");
    assert!(in_a > 0 && in_b > 0, "both destinations received events ({in_a}, {in_b})");
    assert_eq!(in_a + in_b, THREADS * PER_THREAD, "each event in exactly one channel");
    assert_eq!(m.delivered as usize, THREADS * PER_THREAD);
    assert_eq!(m.dropped_total(), 0);
}

#[test]
fn swapping_to_the_console_and_back_keeps_the_count() {
    let channel = OtlpBytesChannel::new(16);
    let layer = OtlpTracingLayer::new(Destination::Channel(channel.sender()));
    let handle = layer.handle();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info!("to the channel");
        let previous = handle.set(Destination::Console).expect("alive");
        assert!(matches!(previous, Destination::Channel(_)));
        tracing::info!("to the console");
        handle.set(previous).expect("alive");
        tracing::info!("to the channel again");
    });
    assert_eq!(channel.receiver().len(), 2);
    assert_eq!(handle.metrics().delivered, 3);
}

/// The records in `logs`' buffers, flushed into `channel`.
fn records_in(logs: &selftrace::NodeLogs, channel: &OtlpBytesChannel) -> usize {
    logs.flush(selftrace::FlushReason::Explicit);
    channel
        .receiver()
        .drain()
        .map(|request| {
            selftrace::decode::LogsRequest::new(request.as_bytes()).for_each_record(|_, _| {}).expect("a request")
        })
        .sum()
}

/// Node logs (a destination each thread keeps between events, with no
/// atomic read-modify-write per event) swapped under load: each event in
/// exactly one of them, and once the swaps stop, every thread's next event
/// goes to the last one.
#[test]
fn swapping_between_node_logs_under_load_delivers_each_event_once_and_the_last_one_wins() {
    const THREADS: usize = 2;
    const PER_THREAD: usize = 20_000;
    let (a, b) = (OtlpBytesChannel::new(1024), OtlpBytesChannel::new(1024));
    let logs_a = selftrace::NodeLogs::builder(Destination::Channel(a.sender())).with_flood_limit(None).build();
    let logs_b = selftrace::NodeLogs::builder(Destination::Channel(b.sender())).with_flood_limit(None).build();
    let layer = OtlpTracingLayer::builder(Destination::Buffered(logs_a.clone())).with_flood_limit(None).build();
    let handle = layer.handle();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));

    let done = Arc::new(AtomicBool::new(false));
    let swapper =
        swap_until(&done, &handle, Destination::Buffered(logs_a.clone()), Destination::Buffered(logs_b.clone()));
    let (go, gone) = (Arc::new(AtomicBool::new(false)), Arc::new(std::sync::Barrier::new(THREADS + 1)));
    let producers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (dispatch, go, gone) = (dispatch.clone(), go.clone(), gone.clone());
            thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    for i in 0..PER_THREAD {
                        tracing::info!(thread = t, i, "load");
                    }
                    // Each thread keeps the destination it last used; after
                    // the last swap, its next event must see `b`.
                    gone.wait();
                    while !go.load(Ordering::Acquire) {
                        thread::yield_now();
                    }
                    tracing::info!(thread = t, "after the swaps");
                })
            })
        })
        .collect();
    gone.wait();
    done.store(true, Ordering::Relaxed);
    let swaps = swapper.join().expect("swapper");
    let in_b_before = records_in(&logs_b, &b);
    let in_a = records_in(&logs_a, &a);
    go.store(true, Ordering::Release);
    for p in producers {
        p.join().expect("producer");
    }
    let in_b_after = records_in(&logs_b, &b);

    assert!(swaps > 10, "the destination was swapped while logging ({swaps} swaps)");
    assert!(in_a > 0 && in_b_before > 0, "both destinations received events ({in_a}, {in_b_before})");
    assert_eq!(in_a + in_b_before, THREADS * PER_THREAD, "each event in exactly one node logs");
    assert_eq!(in_b_after, THREADS, "every thread's next event went to the last destination");
    assert_eq!(records_in(&logs_a, &a), 0);
    let m = handle.metrics();
    assert_eq!(m.delivered as usize, THREADS * PER_THREAD + THREADS);
    assert_eq!(m.dropped_total(), 0);
}

/// A layer built after another one is dropped delivers to its own
/// destination, never to the one a thread kept for the layer before.
#[test]
fn a_new_layer_never_uses_the_destination_a_thread_kept_for_a_dropped_one() {
    let (a, b) = (OtlpBytesChannel::new(1024), OtlpBytesChannel::new(1024));
    let logs_a = selftrace::NodeLogs::builder(Destination::Channel(a.sender())).with_flood_limit(None).build();
    let logs_b = selftrace::NodeLogs::builder(Destination::Channel(b.sender())).with_flood_limit(None).build();
    for round in 0..50 {
        let (logs, other) = if round % 2 == 0 { (&logs_a, &logs_b) } else { (&logs_b, &logs_a) };
        let layer = OtlpTracingLayer::builder(Destination::Buffered(logs.clone())).with_flood_limit(None).build();
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            tracing::info!(round, "one event");
        });
        let (channel, other_channel) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        assert_eq!(records_in(logs, channel), 1, "round {round}: to this layer's destination");
        assert_eq!(records_in(other, other_channel), 0, "round {round}: not to the dropped layer's");
    }
}
