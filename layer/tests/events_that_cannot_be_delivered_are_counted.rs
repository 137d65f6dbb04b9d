//! `produced == delivered + dropped(by reason)` when the channel is full or
//! closed, when a record cannot fit, and when the destination is Noop.
//! (Re-entrant events need the global default: see
//! `reentrant_events_go_to_the_raw_logger.rs`.)

use selftrace::{Destination, DropReason, OtlpBytesChannel, OtlpTracingLayer};
use tracing_subscriber::layer::SubscriberExt;

fn with_layer(layer: OtlpTracingLayer, f: impl FnOnce()) {
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
}

#[test]
fn drops_are_counted_when_the_channel_is_full() {
    let channel = OtlpBytesChannel::new(10);
    // Flood control off: one callsite logs the storm.
    let layer = OtlpTracingLayer::builder(Destination::Channel(channel.sender())).with_flood_limit(None).build();
    let handle = layer.handle();
    let produced = 100;
    with_layer(layer, || {
        for i in 0..produced {
            tracing::info!(i, "storm");
        }
    });
    let m = handle.metrics();
    assert_eq!(channel.receiver().len(), 10);
    assert_eq!(m.delivered, 10);
    assert_eq!(m.dropped(DropReason::ChannelFull), 90);
    assert_eq!(produced, m.delivered + m.dropped_total());
}

#[test]
fn a_full_channel_takes_events_again_once_it_has_room() {
    // Once a send found the channel full, events are refused before they are
    // encoded (the cheap drop path): each is still counted, and the first
    // event after the consumer made room is delivered, in order.
    let channel = OtlpBytesChannel::new(2);
    let receiver = channel.receiver();
    let sender = channel.sender();
    let layer = OtlpTracingLayer::new(Destination::Channel(channel.sender()));
    let handle = layer.handle();
    with_layer(layer, || {
        for i in 0..5 {
            tracing::info!(i, "before");
        }
        assert!(sender.is_refusing(), "full, and a send found it so");
        assert_eq!(receiver.drain().count(), 2);
        assert!(!sender.is_refusing(), "room again");
        tracing::info!("after 1");
        assert!(!sender.is_refusing(), "a send that succeeded clears the flag");
        tracing::info!("after 2");
        tracing::info!("after 3");
    });
    let m = handle.metrics();
    assert_eq!((m.delivered, m.dropped(DropReason::ChannelFull)), (4, 4));
    assert_eq!(receiver.len(), 2);
    assert_eq!(m.received(), 8);
}

#[test]
fn drops_are_counted_when_the_channel_is_closed() {
    let (sender, receiver) = OtlpBytesChannel::new(10).into_parts();
    let layer = OtlpTracingLayer::new(Destination::Channel(sender));
    let handle = layer.handle();
    with_layer(layer, || {
        tracing::info!("delivered");
        drop(receiver);
        tracing::info!("closed 1");
        tracing::info!("closed 2");
    });
    let m = handle.metrics();
    assert_eq!((m.delivered, m.dropped(DropReason::ChannelClosed)), (1, 2));
    assert_eq!(3, m.received());
}

#[test]
fn the_noop_destination_discards_and_counts() {
    let layer = OtlpTracingLayer::new(Destination::Noop);
    let handle = layer.handle();
    with_layer(layer, || {
        for _ in 0..5 {
            tracing::info!("gone");
        }
    });
    let m = handle.metrics();
    assert_eq!((m.delivered, m.dropped(DropReason::Discarded)), (0, 5));
}

#[test]
fn a_record_too_large_for_the_buffer_is_a_counted_drop() {
    let channel = OtlpBytesChannel::new(4);
    let huge_resource = "r".repeat(70 * 1024); // the envelope alone outgrows the 64 KiB buffer
    let layer = OtlpTracingLayer::builder(Destination::Channel(channel.sender()))
        .with_resource_attribute("blob", huge_resource)
        .build();
    let handle = layer.handle();
    with_layer(layer, || tracing::info!("cannot fit"));
    let m = handle.metrics();
    assert_eq!((m.delivered, m.dropped(DropReason::RecordTooLarge)), (0, 1));
    assert!(channel.receiver().is_empty());
}

#[test]
fn a_handle_outliving_its_layer_reports_an_error() {
    let handle = OtlpTracingLayer::new(Destination::Noop).handle();
    assert!(handle.set(Destination::Console).is_err());
    assert!(handle.get().is_err());
    assert_eq!(handle.metrics().received(), 0, "counters stay readable");
}

/// Each thread counts its deliveries in counts of its own; a thread that
/// ended leaves them behind, and a snapshot taken while threads still log
/// and one taken after they are gone both add up.
#[test]
fn the_counts_of_threads_that_ended_are_kept() {
    let channel = OtlpBytesChannel::new(10_000);
    let limits = selftrace::EncoderLimits::new(4096, 1024, 16).expect("limits");
    let layer = OtlpTracingLayer::builder(Destination::Channel(channel.sender()))
        .with_limits(limits)
        .with_flood_limit(None)
        .build();
    let handle = layer.handle();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let (threads, per_thread) = (4, 500_u64);
    let running = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let dispatch = dispatch.clone();
                scope.spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        for i in 0..per_thread {
                            tracing::info!(i, long = "a value longer than sixteen bytes", "event");
                        }
                    })
                })
            })
            .collect();
        let running = handle.metrics();
        for worker in workers {
            worker.join().expect("worker");
        }
        running
    });
    assert!(running.delivered <= threads * per_thread);
    // One more event on this thread, whose counts are still live.
    tracing::dispatcher::with_default(&dispatch, || tracing::info!("last"));
    let m = handle.metrics();
    let produced = threads * per_thread + 1;
    assert_eq!((m.delivered, m.dropped_total()), (produced, 0));
    assert_eq!(m.truncated_values, threads * per_thread, "one cut value per event of the workers");
    assert_eq!(channel.receiver().len() as u64, produced);
}
