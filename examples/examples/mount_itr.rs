//! Mounting the ITR plugin in your own engine: implement `ReceiverHost`
//! (where batches go, how control arrives, how to sleep), create the
//! receiver with the factory registered as `internal_telemetry`, run it.
//! Here the receiver's output is printed; in an engine it is the next node.
//!
//! Run: `cargo run -p selftrace-examples --example mount_itr`

use std::time::Duration;

use selftrace::OtlpBytes;
use selftrace::{Node, otel_info, otel_warn};
use selftrace_itr::{
    InternalTelemetry, ReceiverConfig, ReceiverHost,
    receiver::{Control, OutputClosed},
};
use tokio::sync::mpsc;

/// What this engine gives a receiver node.
struct MyNode {
    output: mpsc::Sender<OtlpBytes>,
    control: mpsc::Receiver<Control>,
}

impl ReceiverHost for MyNode {
    type Sleep = tokio::time::Sleep;

    async fn send(&mut self, batch: OtlpBytes) -> Result<(), OutputClosed> {
        self.output.send(batch).await.map_err(|_| OutputClosed)
    }
    async fn recv_control(&mut self) -> Control {
        // The engine is gone: shut down.
        self.control.recv().await.unwrap_or(Control::shutdown_within(Duration::from_secs(1)))
    }
    fn sleep(&self, duration: Duration) -> tokio::time::Sleep {
        tokio::time::sleep(duration)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let telemetry = InternalTelemetry::builder().with_service_name("my-engine").build();
    let factory = telemetry.factory();
    let config = ReceiverConfig { flush_interval: Duration::from_millis(200), ..ReceiverConfig::default() };
    let receiver = factory.create("internal_telemetry/receiver", config).expect("a valid config");

    let (output, mut downstream) = mpsc::channel(16);
    let (control, control_rx) = mpsc::channel(1);
    let running = tokio::spawn(receiver.run(MyNode { output, control: control_rx }));
    // The next node: prints what arrives.
    let printer = tokio::spawn(async move {
        while let Some(batch) = downstream.recv().await {
            let _ = selftrace::console::print_request(batch.as_bytes());
        }
    });

    // The engine's nodes log; the receiver's timer flushes their buffers.
    let node = telemetry.node_logs().shared(Node::new("main/receiver/otlp"));
    for i in 0..3_i64 {
        otel_info!(node, "receiver.batch", records = 10 * i);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    otel_warn!(node, "receiver.slow_consumer", lag_ms = 250_i64);

    control.send(Control::shutdown_within(Duration::from_secs(1))).await.expect("the receiver is running");
    let metrics = running.await.expect("the receiver ends");
    printer.await.expect("the printer ends");
    assert_eq!(metrics.records_sent, 4, "{metrics:?}");
}
