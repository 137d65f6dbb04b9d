//! Runnable examples for selftrace; see `examples/`.
//!
//! `cargo run -p selftrace-examples --example demo` runs the demo engine,
//! whose code is [`engine`].

pub mod engine;
pub mod metrics;

use std::time::Duration;

use selftrace::OtlpBytes;
use selftrace_itr::{
    ReceiverHost,
    receiver::{Control, InternalTelemetryReceiver, OutputClosed},
};

/// Runs `receiver` to the end on a current-thread runtime, printing every
/// batch it sends; it is told to shut down at once, so it drains what it
/// holds and returns (the small host of the examples).
pub fn run_printing(receiver: InternalTelemetryReceiver) {
    struct Printing;
    impl ReceiverHost for Printing {
        type Sleep = tokio::time::Sleep;
        async fn send(&mut self, batch: OtlpBytes) -> Result<(), OutputClosed> {
            selftrace::console::print_request(batch.as_bytes()).map(|_| ()).map_err(|_| OutputClosed)
        }
        async fn recv_control(&mut self) -> Control {
            Control::shutdown_within(Duration::from_secs(1))
        }
        fn sleep(&self, duration: Duration) -> tokio::time::Sleep {
            tokio::time::sleep(duration)
        }
    }
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => drop(runtime.block_on(receiver.run(Printing))),
        Err(e) => selftrace::raw::write_raw_note("examples", format_args!("no runtime: {e}")),
    }
}
