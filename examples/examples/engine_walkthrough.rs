//! An engine from scratch: everything an engine author writes to give an
//! engine self telemetry with `selftrace-itr`, in one file.
//!
//! ```text
//! cargo run -p selftrace-examples --example engine_walkthrough -- http://127.0.0.1:4318
//! ```
//!
//! The argument is an OTLP/HTTP endpoint (`python -m oteltap --port 4318`
//! prints what it receives); without one, the logs go to the console.
//!
//! 1. **Configuration**: the engine's own YAML type holds its keys and, under
//!    `service`, selftrace's [`ServiceConfig`], read with
//!    [`from_yaml`](selftrace_itr::config::from_yaml) (errors with line and
//!    column). The `internal_telemetry` receiver's [`ReceiverSettings`] sit in
//!    the engine's pipeline section, where its other nodes' settings are.
//! 2. **The graph**: [`SelfTelemetry`] is told every node, the receivers and
//!    the edges; it resolves the mode (here hybrid: component logs through
//!    the engine's own internal pipeline, third-party logs straight to the
//!    exporter), the anti-recursion zone, and builds the exporter.
//!    [`InternalTelemetry`](selftrace_itr::InternalTelemetry) is the lower
//!    level piece `SelfTelemetry` builds on: use it directly only to route
//!    without a configuration.
//! 3. **The host**: a [`ReceiverHost`] (output, control, timer) mounts the
//!    receiver; the internal pipeline's exporter ships its batches through
//!    the exporter the configuration built
//!    ([`SelfTelemetry::otlp_exporter`]).
//! 4. **Nodes log** with `otel_info!` through their telemetry, and libraries
//!    called inside a node's scope are attributed to the node.
//! 5. **Shutdown in order**: the data pipeline, then the internal one
//!    (`Control::shutdown_within`), then `SelfTelemetry::shutdown` (the
//!    exporter sends what is left); every event accounted for.

#![expect(clippy::print_stdout, reason = "an example: it prints what it shows")]

use std::time::Duration;

use selftrace::{OtlpBytes, otel_info};
use selftrace_itr::{
    ReceiverHost, ReceiverSettings, SelfTelemetry, ServiceConfig,
    receiver::{Control, OutputClosed},
};
use serde::Deserialize;
use tokio::sync::mpsc;
use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt};

/// The engine's configuration file: its own keys, and selftrace's under
/// `service`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EngineFile {
    engine: Engine,
    service: ServiceConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Engine {
    /// A setting of the engine's own.
    batch_size: usize,
    /// The internal pipeline: its `internal_telemetry` receiver's settings.
    internal: Internal,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Internal {
    internal_telemetry: ReceiverSettings,
}

const YAML: &str = r#"
engine:
  batch_size: 128
  internal:
    internal_telemetry: { flush_interval: 100ms }
service:
  telemetry:
    resource: { service.name: walkthrough }
    logs:
      level: info
      internal_collection: { enabled: true }
      processors:
        - batch:
            exporter:
              otlp: { endpoint: "ENDPOINT" }
"#;

/// What the host gives the receiver: an output, a control channel, a timer.
struct TokioNode {
    output: mpsc::Sender<OtlpBytes>,
    control: mpsc::Receiver<Control>,
}

impl ReceiverHost for TokioNode {
    type Sleep = tokio::time::Sleep;

    async fn send(&mut self, batch: OtlpBytes) -> Result<(), OutputClosed> {
        self.output.send(batch).await.map_err(|_| OutputClosed)
    }

    async fn recv_control(&mut self) -> Control {
        self.control.recv().await.unwrap_or(Control::shutdown_within(Duration::from_secs(1)))
    }

    fn sleep(&self, duration: Duration) -> tokio::time::Sleep {
        tokio::time::sleep(duration)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. Configuration.
    let endpoint = std::env::args().nth(1);
    let yaml = match &endpoint {
        Some(endpoint) => YAML.replace("ENDPOINT", endpoint),
        // No endpoint: the SDK's console exporter instead.
        None => YAML.replace("otlp: { endpoint: \"ENDPOINT\" }", "console:"),
    };
    let file: EngineFile = selftrace_itr::config::from_yaml("engine.yaml", &yaml)?;
    println!("== engine: batch size {}, mode {:?}", file.engine.batch_size, file.service.telemetry.logs.mode());

    // 2. The graph: a data pipeline and the internal one.
    let telemetry = SelfTelemetry::builder(&file.service.telemetry)
        .with_service_name("walkthrough")
        .node("main/receiver")
        .node("main/exporter")
        .edge("main/receiver", "main/exporter")
        .receiver("internal/itr", file.engine.internal.internal_telemetry)
        .node("internal/exporter")
        .edge("internal/itr", "internal/exporter")
        .build()?;
    tracing_subscriber::registry().with(telemetry.layer()).init();

    // 3. The internal pipeline: the receiver, and an exporter node that
    // ships its batches through the configured exporter (or prints them).
    let receiver = telemetry.take_receiver("internal/itr").ok_or("the receiver was declared")?;
    let (output, mut batches) = mpsc::channel::<OtlpBytes>(16);
    let (control, control_rx) = mpsc::channel(1);
    let itr = tokio::spawn(receiver.run(TokioNode { output, control: control_rx }));
    let forward = telemetry.otlp_exporter().map(|exporter| exporter.sender());
    let internal_exporter = telemetry.shared("internal/exporter")?;
    let shipping = tokio::spawn(internal_exporter.scope(async move {
        let mut shipped = 0;
        while let Some(batch) = batches.recv().await {
            match &forward {
                // Refusals are counted by the exporter (`dropped_queue_full`).
                Some(sender) => shipped += usize::from(sender.try_send(batch).is_ok()),
                None => shipped += selftrace::console::print_request(batch.as_bytes()).map_or(0, |_| 1),
            }
        }
        shipped
    }));

    // 4. The data pipeline's nodes log; a library called inside a node is
    // attributed to it; a library outside any node goes straight out.
    let receiver_node = telemetry.shared("main/receiver")?;
    otel_info!(receiver_node, "receiver.started", port = 4317_i64, "listening");
    receiver_node.in_scope(|| tracing::info!(target: "some_library", "library inside the node"));
    let exporter_node = telemetry.shared("main/exporter")?;
    otel_info!(exporter_node, "exporter.batch.sent", records = 128_i64);
    tracing::info!(target: "third_party", "third party outside any node");

    // 5. Shutdown in order: the data pipeline (nothing to stop here), the
    // internal pipeline, then selftrace.
    control.send(Control::shutdown_within(Duration::from_secs(2))).await?;
    let itr_metrics = itr.await?;
    let shipped = shipping.await?;
    let metrics = telemetry.shutdown();
    println!("== internal pipeline: {} records in {shipped} batches", itr_metrics.records_sent);
    for exporter in &metrics.exporters {
        println!(
            "== exporter: {} acknowledged, {} dropped, {} in flight",
            exporter.records_acknowledged,
            exporter.dropped(),
            exporter.records_in_flight
        );
    }
    // The three node records went through the internal pipeline; nothing
    // waits in a buffer or in an exporter, nothing was dropped.
    let nodes = metrics.node_logs;
    let accounted = itr_metrics.records_sent == 3
        && nodes.events_delivered == 3
        && nodes.events_buffered() == 0
        && nodes.events_dropped_total() == 0
        && metrics.exporters.iter().all(|e| e.records_in_flight == 0 && e.dropped() == 0);
    println!("== {}", if accounted { "every event accounted for" } else { "events unaccounted for" });
    if accounted { Ok(()) } else { Err("events unaccounted for".into()) }
}
