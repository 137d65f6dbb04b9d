//! Per-node scopes: each node logs through its own telemetry (`otel_*!`),
//! and the `tracing` events of the libraries it calls inside its scope are
//! attributed to it too (scope name = node id), in sync code and in
//! futures. Here the node logs print to the console.
//!
//! Run: `cargo run -p selftrace-examples --example node_scopes`

use selftrace::{Destination, FlushReason, Node, NodeLogger, NodeLogs, OtlpTracingLayer, otel_info, otel_warn};
use tracing_subscriber::{layer::SubscriberExt as _, util::SubscriberInitExt as _};

/// A library that knows nothing of nodes.
fn parse(input: &str) -> usize {
    tracing::info!(target: "parser", len = input.len(), "parsed input");
    input.len()
}

fn main() {
    tracing_subscriber::registry().with(OtlpTracingLayer::new(Destination::Console)).init();
    let node_logs = NodeLogs::builder(Destination::Console).with_service_name("node-scopes").build();

    let receiver = node_logs.shared(Node::new("main/receiver/otlp"));
    let exporter = node_logs.shared(Node::new("main/exporter/otlp").with_logger(NodeLogger::Console));

    // Sync: the guard sets the current node on this thread.
    receiver.in_scope(|| {
        otel_info!(receiver, "receiver.request", bytes = parse("hello") as i64);
    });
    // Async: the scope follows the future on every poll.
    let future = exporter.scope(async {
        parse("world!");
        otel_warn!(exporter, "exporter.retry", attempt = 2_i64);
    });
    futures_lite_block_on(future);

    // Outside any node: the global layer, scope = target.
    parse("no node here");

    // Node records are batched per thread; flush them now.
    node_logs.flush(FlushReason::Explicit);
    let m = node_logs.metrics();
    assert_eq!(m.events_received, 4, "two events in each node");
}

/// Polls a future that never waits to completion (no runtime needed here).
fn futures_lite_block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}
