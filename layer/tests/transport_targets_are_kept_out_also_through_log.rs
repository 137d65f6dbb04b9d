//! `with_denied_targets` keeps the transport crates' events out of the
//! destination, counted as discarded, whether they come through `tracing` or
//! through the `log` crate (reqwest and rustls log through `log`; the
//! `tracing-log` bridge gives them the target `log` until normalized). Own
//! test binary: the `log` bridge is process-wide.

use selftrace::{Destination, DropReason, OtlpBytesChannel, OtlpTracingLayer, TRANSPORT_TARGETS};
use tracing_subscriber::layer::SubscriberExt;

#[test]
fn transport_events_are_discarded_through_tracing_and_through_log() {
    tracing_log::LogTracer::init().expect("the log bridge");
    let channel = OtlpBytesChannel::new(16);
    let layer = OtlpTracingLayer::builder(Destination::Channel(channel.sender()))
        .with_denied_targets(TRANSPORT_TARGETS.iter().copied())
        .build();
    let handle = layer.handle();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        log::debug!(target: "reqwest::connect", "starting new connection");
        log::warn!(target: "rustls::client", "bad certificate");
        tracing::trace!(target: "h2::codec", "frame");
        tracing::error!(target: "tower", "overloaded");
        log::info!(target: "my_app", "served");
        tracing::info!(target: "hyperlocal", "not hyper");
    });
    let metrics = handle.metrics();
    assert_eq!(metrics.dropped(DropReason::Discarded), 4, "{metrics:?}");
    assert_eq!(metrics.delivered, 2);
    assert_eq!(channel.receiver().len(), 2);
}
