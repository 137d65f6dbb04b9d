//! Under the global default, a level change also moves tracing's global
//! maximum level (what `tracing`'s macros check first), both ways: a stale
//! hint (tracing #2413) would keep lowered events out, or keep raised ones
//! costing a filter call.

use selftrace::{Destination, OtlpBytesChannel, OtlpTracingLayer, levels::DynamicFilter};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::{Layer, layer::SubscriberExt, util::SubscriberInitExt};

#[test]
fn the_global_max_level_follows_the_filter() {
    let channel = OtlpBytesChannel::new(100);
    let (filter, levels) = DynamicFilter::new(LevelFilter::WARN);
    let layer = OtlpTracingLayer::builder(Destination::Channel(channel.sender())).with_flood_limit(None).build();
    tracing_subscriber::registry().with(layer.with_filter(filter)).try_init().expect("first global default");
    assert_eq!(LevelFilter::current(), LevelFilter::WARN);
    tracing::debug!("out");
    levels.set_level(LevelFilter::TRACE).expect("alive");
    assert_eq!(LevelFilter::current(), LevelFilter::TRACE);
    tracing::debug!("in");
    levels.set_directives("error,db=debug").expect("valid");
    assert_eq!(LevelFilter::current(), LevelFilter::DEBUG);
    levels.set_level(LevelFilter::ERROR).expect("alive");
    assert_eq!(LevelFilter::current(), LevelFilter::ERROR);
    assert!(!tracing::enabled!(tracing::Level::WARN), "a raised level turns callsites off");
    tracing::warn!("out");
    assert_eq!(channel.receiver().len(), 1);
}
