//! Each routing mode from YAML: the same two-pipeline graph under the three
//! configurations of `tests/configs/seed/`, and where component and third-party logs go.
//!
//! Run: `cargo run -p selftrace-examples --example modes_from_yaml`

#![expect(clippy::print_stdout, reason = "the example prints what it shows")]

use selftrace::otel_info;
use selftrace_itr::{ReceiverSettings, SelfTelemetry, ServiceConfig};

const MODES: &[&str] = &[
    // SDK only (the default): everything through the OpenTelemetry SDK.
    "service:\n  telemetry:\n    logs:\n      level: info\n      processors:\n        - simple:\n            exporter:\n              console:\n",
    // Hybrid: component logs to the ITR, third-party logs to the SDK.
    "service:\n  telemetry:\n    logs:\n      internal_collection: { enabled: true }\n      processors:\n        - simple:\n            exporter:\n              console:\n",
    // ITR only: everything to the ITR.
    "service:\n  telemetry:\n    logs:\n      internal_collection: { enabled: true, flush_interval: 1s }\n      processors: []\n",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for yaml in MODES {
        let config = ServiceConfig::from_yaml("inline.yaml", yaml)?;
        let mode = config.telemetry.logs.mode();
        // The graph: main/receiver → main/exporter, and, when collecting
        // internally, an internal_telemetry pipeline.
        let mut builder = SelfTelemetry::builder(&config.telemetry)
            .with_service_name("modes")
            .node("main/receiver")
            .node("main/exporter")
            .edge("main/receiver", "main/exporter");
        if mode.collects_internally() {
            builder = builder
                .receiver("internal/receiver", ReceiverSettings::default())
                .node("internal/exporter")
                .edge("internal/receiver", "internal/exporter");
        }
        let telemetry = builder.build()?;
        let node = telemetry.shared("main/receiver")?;
        otel_info!(node, "receiver.started");
        if let Some(receiver) = telemetry.take_receiver("internal/receiver") {
            // Mounted on a small host that prints its batches (see mount_itr).
            telemetry.begin_shutdown();
            selftrace_examples::run_printing(receiver);
        }
        let m = telemetry.shutdown();
        println!(
            "{mode:>9}: component logs to {}, third-party logs to {}; node logs received {} (delivered {}, dropped {})",
            if mode.collects_internally() { "the ITR" } else { "the SDK" },
            if mode == selftrace_itr::Mode::ItrOnly { "the ITR" } else { "the SDK" },
            m.node_logs.events_received,
            m.node_logs.events_delivered,
            m.node_logs.events_dropped_total(),
        );
    }
    Ok(())
}
