//! The demo engine: a main pipeline (generator → batch → console) whose
//! nodes log through `otel_*!` and call libraries that log through plain
//! `tracing`, and an `internal_telemetry` pipeline (ITR → batch → console,
//! plus OTLP/HTTP with `--otlp-endpoint`) through which the engine's own
//! logs flow, attributed to the node that emitted them. At the end it
//! prints the telemetry counters and checks that every event is accounted
//! for. Halfway through, the level changes to DEBUG at runtime; a stuck
//! sensor's retries show flood control's summary record. Every second the
//! OpenTelemetry SDK's periodic reader exports selftrace's counters (as
//! instruments: `metrics: { enabled: true }`); the last export must match
//! the final counters.
//!
//! Run: `cargo run -p selftrace-examples --example demo [-- OPTIONS]`
//!
//! * `--seconds N`: run N seconds (default 3);
//! * `--mode itr-only|hybrid|sdk-only`: one of the embedded configurations
//!   (`examples/configs/`; default itr-only);
//! * `--config FILE`: a YAML configuration of your own instead;
//! * `--otlp-endpoint URL`: also export the internal pipeline over
//!   OTLP/HTTP (e.g. `http://127.0.0.1:4318/v1/logs`), and selftrace's
//!   metrics to the same endpoint's `/v1/metrics`.

#![expect(clippy::print_stdout, clippy::print_stderr, reason = "the demo prints what it shows")]

use std::{process::ExitCode, time::Duration};

use selftrace_examples::{
    engine::{self, CONFIGS, EngineConfig, RunOptions},
    metrics::ConsoleMetrics,
};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::{layer::SubscriberExt as _, util::SubscriberInitExt as _};

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let seconds: f64 = flag(&args, "--seconds").and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let (source, text) = match (flag(&args, "--config"), flag(&args, "--mode")) {
        (Some(_), Some(_)) => {
            eprintln!("demo: --config and --mode exclude each other (a file selects its mode)");
            return ExitCode::from(2);
        }
        (Some(path), None) => match std::fs::read_to_string(&path) {
            Ok(text) => (path, text),
            Err(e) => {
                eprintln!("demo: cannot read {path}: {e}");
                return ExitCode::from(2);
            }
        },
        (None, mode) => {
            let mode = mode.unwrap_or_else(|| "itr-only".into());
            let Some((name, text)) = CONFIGS.iter().find(|(name, _)| *name == mode) else {
                let names: Vec<&str> = CONFIGS.iter().map(|(n, _)| *n).collect();
                eprintln!("demo: unknown mode `{mode}` (modes: {})", names.join(", "));
                return ExitCode::from(2);
            };
            (format!("examples/configs/{name}.yaml"), (*text).to_owned())
        }
    };

    let config = match EngineConfig::from_yaml(&source, &text) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::from(2);
        }
    };
    // selftrace's counters as OpenTelemetry instruments (`metrics: {
    // enabled: true }` in the configuration): the SDK's periodic reader
    // exports them every second to a console exporter of the demo's.
    // With `--otlp-endpoint .../v1/logs`, the metrics go to `.../v1/metrics`
    // of the same endpoint too.
    let metrics_endpoint = flag(&args, "--otlp-endpoint").map(|logs| match logs.strip_suffix("/v1/logs") {
        Some(base) => format!("{base}/v1/metrics"),
        None => format!("{}/v1/metrics", logs.trim_end_matches('/')),
    });
    let (meter_provider, exported) = match ConsoleMetrics::provider(Duration::from_secs(1), metrics_endpoint.as_deref())
    {
        Ok(provider) => provider,
        Err(e) => {
            eprintln!("demo: the OTLP metric exporter: {e}");
            return ExitCode::from(2);
        }
    };
    opentelemetry::global::set_meter_provider(meter_provider.clone());
    let telemetry = match engine::self_telemetry(&config, "selftrace-demo", None) {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("demo: {source}: {e}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::registry().with(telemetry.layer()).init();
    println!("== selftrace demo: mode {} from {source}, {seconds} s", telemetry.mode());

    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("demo: tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The internal pipelines run on a runtime of their own whose threads are
    // zone threads: nothing there, a library's unscoped task included, can
    // feed them.
    let internal = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("internal-telemetry")
        .on_thread_start(selftrace::pipeline::zone_thread_start(telemetry.zone_logger()))
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("demo: tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = RunOptions {
        duration: Duration::from_secs_f64(seconds.max(0.0)),
        capture: false,
        otlp_endpoint: flag(&args, "--otlp-endpoint"),
        internal: Some(internal.handle().clone()),
    };
    // Halfway through, the level goes from the configuration's to DEBUG at
    // runtime: the batch processor's debug records start to appear.
    let halfway = options.duration / 2;
    let run = std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(halfway);
            let before = telemetry.level_handle().current().unwrap_or_default();
            telemetry.set_level(LevelFilter::DEBUG);
            println!("== level changed at runtime: {before} -> debug (SelfTelemetry::set_level)");
        });
        runtime.block_on(engine::run(&config, &telemetry, &options))
    });
    let report = match run {
        Ok(report) => report,
        Err(e) => {
            eprintln!("demo: {source}: {e}");
            return ExitCode::from(2);
        }
    };

    let m = &report.metrics;
    println!("== telemetry counters (mode {})", m.mode);
    let layer = &m.layer;
    println!(
        "third-party (layer): received {} = delivered {} + dropped {} (discarded {}: transport crates, ...; suppressed {}: flood control, summarised)",
        layer.received(),
        layer.delivered,
        layer.dropped_total(),
        layer.dropped(selftrace::DropReason::Discarded),
        layer.dropped(selftrace::DropReason::Suppressed)
    );
    let node_logs = &m.node_logs;
    println!(
        "components (node logs): received {} = delivered {} + dropped {} (suppressed {}: flood control, summarised) + buffered {}; {} flushes ({} timer, {} overflow), {} bytes",
        node_logs.events_received,
        node_logs.events_delivered,
        node_logs.events_dropped_total(),
        node_logs.events_dropped(selftrace::DropReason::Suppressed),
        node_logs.events_buffered(),
        node_logs.flush_count,
        node_logs.timer_flush_count,
        node_logs.overflow_flush_count,
        node_logs.bytes_flushed
    );
    for r in &m.receivers {
        println!(
            "receiver {}: {} requests ({} records) in, {} records in {} batches out, dropped: queue {}, deadline {}, closed {}",
            r.id,
            r.requests_received,
            r.records_received,
            r.records_sent,
            r.batches_sent,
            r.dropped_newest + r.dropped_oldest,
            r.dropped_deadline,
            r.dropped_output_closed
        );
    }
    if let Some(sdk) = &m.sdk {
        println!("sdk bridge: {sdk:?}");
    }
    for e in &m.exporters {
        println!(
            "otlp exporter: {} records in, {} acknowledged, {} rejected, dropped: queue {}, spool full {}, refused {}, retries exhausted {}, shutdown {}; {} in flight; spool: {} recovered ({} redelivered), {} written, {} kept, {} corrupt frames",
            e.records_received,
            e.records_acknowledged,
            e.records_rejected,
            e.dropped_queue_full,
            e.dropped_spool_full,
            e.dropped_rejected,
            e.dropped_retries_exhausted,
            e.dropped_shutdown,
            e.records_in_flight,
            e.records_recovered,
            e.records_redelivered,
            e.records_spooled,
            e.spool_records,
            e.spool_corrupt_frames
        );
    }
    // The last export (at the provider's shutdown, the counters final)
    // against the snapshot.
    let _ = meter_provider.shutdown();
    let last = exported.lock().map(|e| e.clone()).unwrap_or_default();
    let get = |key: &str| last.get(key).copied();
    let sum = |prefix: &str| last.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| *v).sum::<u64>();
    // Only when the configuration asks for them (`metrics: { enabled: true }`).
    let metrics_enabled = config.service.telemetry.metrics.enabled;
    let metrics_match = !metrics_enabled
        || get("selftrace.layer.records.received{}") == Some(layer.received())
            && get("selftrace.layer.records.delivered{}") == Some(layer.delivered)
            && sum("selftrace.layer.records.dropped{") == layer.dropped_total()
            && get("selftrace.telemetry.events_received{}") == Some(node_logs.events_received)
            && get("selftrace.telemetry.events_delivered{}") == Some(node_logs.events_delivered)
            && sum("selftrace.telemetry.records.dropped{") == node_logs.events_dropped_total();
    if !metrics_enabled {
        println!("== metrics not enabled (service.telemetry.metrics)");
    } else if metrics_match {
        println!("== the exported metrics match the counters");
    } else {
        println!("== the exported metrics do not match the counters");
    }
    let exported = m.exporters.iter().all(|e| {
        // What a spool keeps for the next start is in flight, not lost.
        e.records_in_flight == e.spool_records
            && e.records_recovered + e.records_received
                == e.records_acknowledged + e.records_rejected + e.dropped() - e.dropped_queue_full
                    + e.records_in_flight
    });
    let balanced = exported
        && metrics_match
        && layer.received() == layer.delivered + layer.dropped_total()
        && node_logs.events_received
            == node_logs.events_delivered + node_logs.events_dropped_total() + node_logs.events_buffered();
    if balanced {
        println!("== every event accounted for");
        ExitCode::SUCCESS
    } else {
        println!("== counters do not add up");
        ExitCode::FAILURE
    }
}
