//! Every event lands in exactly one destination while another thread swaps.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
};

use selftrace::{Destination, OtlpBytesChannel, OtlpTracingLayer};
use tracing_subscriber::layer::SubscriberExt;

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
    let swapper = {
        let (done, handle) = (done.clone(), handle.clone());
        let (to_a, to_b) = (a.sender(), b.sender());
        thread::spawn(move || {
            let mut swaps = 0u64;
            while !done.load(Ordering::Relaxed) {
                let next = if swaps.is_multiple_of(2) { to_b.clone() } else { to_a.clone() };
                handle.set(Destination::Channel(next)).expect("layer alive");
                swaps += 1;
                thread::yield_now();
            }
            swaps
        })
    };
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
