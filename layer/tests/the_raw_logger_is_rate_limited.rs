//! A storm of undeliverable events cannot flood stderr: the raw logger writes
//! at most its per-second budget and counts the rest (own process: the raw
//! logger is process-wide).

use selftrace::{
    Destination, DropReason, OtlpBytesChannel, OtlpTracingLayer,
    raw::{raw_logger_metrics, set_raw_lines_per_second},
};
use tracing_subscriber::layer::SubscriberExt;

#[test]
fn a_storm_of_drops_writes_at_most_the_budget_and_counts_the_rest() {
    set_raw_lines_per_second(5);
    let (sender, receiver) = OtlpBytesChannel::new(1).into_parts();
    drop(receiver);
    // Flood control off: the drops must reach the raw logger.
    let layer = OtlpTracingLayer::builder(Destination::Channel(sender)).with_flood_limit(None).build();
    let handle = layer.handle();
    let before = raw_logger_metrics();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..1000 {
            tracing::error!(i, "closed channel");
        }
    });
    let after = raw_logger_metrics();
    let (written, suppressed) = (after.written - before.written, after.suppressed - before.suppressed);
    // At most two one-second windows can be crossed in this short loop.
    assert!(written <= 10, "{written} lines written");
    assert!(written >= 5);
    assert_eq!(written + suppressed, 1000);
    assert_eq!(handle.metrics().dropped(DropReason::ChannelClosed), 1000, "every drop is counted");
}
