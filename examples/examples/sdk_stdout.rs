//! Third-party and node logs through selftrace into the OpenTelemetry SDK,
//! printed by the SDK's stdout exporter (`opentelemetry-stdout`).
//!
//! Run: `cargo run -p selftrace-examples --example sdk_stdout`

#![allow(clippy::print_stderr, reason = "an example reports to its user")]

use opentelemetry_sdk::Resource;
use selftrace::{Node, otel_info};
use selftrace_bridge::{SdkBridge, stdout_provider};
use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. The SDK side: a provider with the stdout exporter, fed by the bridge.
    let provider = stdout_provider(Resource::builder().with_service_name("sdk-stdout-example").build());
    let bridge = SdkBridge::builder(provider).spawn()?;

    // 2. Third-party logs: the layer, as the global subscriber.
    tracing_subscriber::registry().with(bridge.layer()).init();
    tracing::info!(target: "db", pool = 16_u64, "connected");

    // 3. Node logs: a `NodeLogs` into the same bridge.
    let nodes = bridge.node_logs();
    let receiver = nodes.shared(Node::new("receiver.otlp.0"));
    otel_info!(receiver, "receiver.started", port = 4318_i64, "listening");
    receiver.in_scope(|| tracing::warn!(target: "hyper", "a library's log, attributed to the node"));

    // 4. Shutdown: node buffers, then the bridge (emits what is queued,
    //    flushes and shuts the provider down).
    nodes.shutdown();
    let metrics = bridge.shutdown()?;
    eprintln!("records emitted into the SDK: {}", metrics.records_emitted);
    Ok(())
}
