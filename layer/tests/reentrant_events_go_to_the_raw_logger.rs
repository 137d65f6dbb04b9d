//! Events raised while their thread is inside the layer go to the raw logger
//! and are counted, instead of recursing.
//!
//! This needs the *global* default subscriber, in its own process: under a
//! scoped dispatcher (`with_default`) tracing-core itself sends such nested
//! events to no subscriber before any layer sees them.

use std::fmt;

use selftrace::{Destination, DropReason, OtlpBytesChannel, OtlpTracingLayer, raw::raw_logger_metrics};
use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt};

/// A value whose `Debug` logs, as some libraries' do.
struct Chatty;

impl fmt::Debug for Chatty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        tracing::warn!("formatting Chatty");
        f.write_str("Chatty")
    }
}

/// A value whose `Debug` logs itself: without a guard this never ends.
struct SelfLogging;

impl fmt::Debug for SelfLogging {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        tracing::warn!(again = ?SelfLogging, "nested");
        f.write_str("SelfLogging")
    }
}

#[test]
fn reentrant_events_go_to_the_raw_logger_instead_of_recursing() {
    let channel = OtlpBytesChannel::new(100);
    let layer = OtlpTracingLayer::new(Destination::Channel(channel.sender()));
    let handle = layer.handle();
    tracing_subscriber::registry().with(layer).try_init().expect("first global default in this process");
    let raw_before = raw_logger_metrics();

    // Channel destination: the outer event is delivered; the event its field
    // raises is re-entrant and goes to the raw logger.
    tracing::info!(value = ?Chatty, "outer");
    let m = handle.metrics();
    assert_eq!((m.delivered, m.dropped(DropReason::Reentrant)), (1, 1));

    // A Debug that logs itself: the nested event is re-entrant (raw), and the
    // one *its* formatting raises is suppressed by the raw logger's own guard.
    tracing::info!(value = ?SelfLogging, "outer");
    let m = handle.metrics();
    assert_eq!((m.delivered, m.dropped(DropReason::Reentrant)), (2, 3));
    assert_eq!(channel.receiver().len(), 2);
    let raw = raw_logger_metrics();
    assert!(raw.written + raw.suppressed >= raw_before.written + raw_before.suppressed + 3);
    assert!(raw.suppressed > raw_before.suppressed, "the doubly nested event was held back");

    // Console destination: formatting the line raises the same re-entrant event.
    handle.set(Destination::Console).expect("alive");
    tracing::info!(value = ?Chatty, "to the console");
    let m = handle.metrics();
    assert_eq!((m.delivered, m.dropped(DropReason::Reentrant)), (3, 4));

    // Produced: 2 outer + 1 + 2 nested on the channel, 1 outer + 1 nested on the console.
    assert_eq!(m.received(), 7);
}
