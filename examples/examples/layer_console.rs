//! The smallest use: `OtlpTracingLayer` with the console destination. Every
//! event is encoded once into OTLP bytes and printed as one line.
//!
//! Run: `cargo run -p selftrace-examples --example layer_console`

use selftrace::{Destination, OtlpTracingLayer};
use tracing_subscriber::{layer::SubscriberExt as _, util::SubscriberInitExt as _};

fn main() {
    let layer = OtlpTracingLayer::builder(Destination::Console).with_service_name("layer-console").build();
    let metrics = layer.handle();
    tracing_subscriber::registry().with(layer).init();

    tracing::info!(user = "ada", attempts = 3_i64, "logged in");
    tracing::warn!(name: "cache.miss", key = "user:42", "cache miss");
    tracing::error!(error = %std::io::Error::other("disk full"), "write failed");

    let m = metrics.metrics();
    assert_eq!((m.received(), m.delivered), (3, 3));
}
