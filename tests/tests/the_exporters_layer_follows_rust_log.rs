//! `exporter.layer()` takes its level where every selftrace product does:
//! `RUST_LOG`, else `info` with the transport crates off. Each case runs
//! this test binary again with its own environment.

use std::process::Command;

use selftrace::DropReason;
use selftrace_bridge::OtlpExporter;
use selftrace_tests::peer::free_port;
use tracing_subscriber::layer::SubscriberExt;

/// Logs a debug, an info and a transport crate's info event through
/// `exporter.layer()`; checks what reached the layer against `RUST_LOG`
/// as it finds it. Run by `the_level_comes_from_rust_log_else_info`.
#[test]
fn log_three_events_through_the_exporters_layer() {
    let rust_log = std::env::var("RUST_LOG").unwrap_or_default();
    let exporter = OtlpExporter::builder()
        .with_env(false)
        .with_endpoint(format!("http://127.0.0.1:{}", free_port()))
        .with_shutdown_timeout(std::time::Duration::from_millis(100))
        .build()
        .expect("builds");
    tracing::subscriber::with_default(tracing_subscriber::registry().with(exporter.layer()), || {
        tracing::debug!(target: "app", "details");
        tracing::info!(target: "app", "done");
        tracing::info!(target: "reqwest::connect", "connecting");
    });
    let layer = exporter.layer_metrics();
    let (delivered, discarded) = (layer.delivered, layer.dropped(DropReason::Discarded));
    match rust_log.as_str() {
        // Default: the debug event and the transport crate are filtered out.
        "" => assert_eq!((delivered, discarded), (1, 0), "{layer:?}"),
        // `debug`: both app events; the transport crate's reaches the layer,
        // which keeps it out.
        "debug" => assert_eq!((delivered, discarded), (2, 1), "{layer:?}"),
        // `warn`: nothing.
        "warn" => assert_eq!((delivered, discarded), (0, 0), "{layer:?}"),
        other => panic!("no expectation for RUST_LOG={other}"),
    }
    let _ = exporter.shutdown();
}

#[test]
fn the_level_comes_from_rust_log_else_info() {
    for rust_log in [None, Some("debug"), Some("warn")] {
        let mut child = Command::new(std::env::current_exe().expect("test binary path"));
        child.args(["--exact", "log_three_events_through_the_exporters_layer", "--test-threads=1"]);
        match rust_log {
            Some(value) => child.env("RUST_LOG", value),
            None => child.env_remove("RUST_LOG"),
        };
        let out = child.output().expect("the child runs");
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
            "RUST_LOG={rust_log:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
