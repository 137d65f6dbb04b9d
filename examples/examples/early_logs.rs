//! Logs from before the destination exists: the layer is installed first,
//! on a startup buffer (`Destination::startup()`, 1 MiB of encoded
//! events); once the exporter exists, the buffer hands it what it kept, in
//! order, then the exporter takes new events. With `--never`, no
//! destination is ever set: the kept events are printed on stderr at exit.
//!
//! Run: `cargo run -p selftrace-examples --example early_logs [-- --never]`

#![expect(clippy::print_stdout, reason = "the example prints what it shows")]

use selftrace::{Destination, OtlpBytesChannel, OtlpTracingLayer, console::print_request};
use tracing_subscriber::{layer::SubscriberExt as _, util::SubscriberInitExt as _};

fn main() {
    let never = std::env::args().any(|a| a == "--never");
    let layer = OtlpTracingLayer::builder(Destination::startup()).with_service_name("early-logs").build();
    let handle = layer.handle();
    tracing_subscriber::registry().with(layer).init();

    tracing::info!(step = 1, "configuration read");
    tracing::warn!(step = 2, "no endpoint configured yet");
    if never {
        tracing::info!(step = 3, "exiting without a destination");
        println!("== no destination was set: the startup buffer prints its events on stderr at exit");
        return;
    }

    // The exporter exists now (a channel here; an OtlpExporter's
    // destination in an application): what was kept goes first.
    let channel = OtlpBytesChannel::new(16);
    if handle.set(Destination::Channel(channel.sender())).is_err() {
        return;
    }
    tracing::info!(step = 3, "serving");
    println!("== the channel received, in order:");
    for request in channel.receiver().drain() {
        let _ = print_request(request.as_bytes());
    }
    let m = handle.metrics();
    println!("== delivered {}, dropped {}, still buffered {}", m.delivered, m.dropped_total(), m.startup_buffered);
}
