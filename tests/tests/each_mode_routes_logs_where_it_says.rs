//! The demo engine in-process, once per mode (its embedded
//! configurations): the logs of every node, and the third-party logs,
//! arrive where the mode says and nowhere else, attributed to their node.
//!
//! Nodes: `main/receiver/generator`, `main/processor/batch` (debug only),
//! `main/exporter/console`; each logs through `otel_*!` and calls a library
//! logging through `tracing` in its scope. `pool` logs outside any node.
//! The `internal_telemetry/...` nodes are the anti-recursion zone: nothing
//! of theirs may appear anywhere.

use std::time::Duration;

use selftrace_examples::engine::{self, CONFIGS, EngineConfig, Report, RunOptions};
use selftrace_tests::records::{KeepSdk, Seen, decode};

fn run(mode: &str) -> (Report, Vec<Seen>, Vec<Seen>) {
    let text = CONFIGS.iter().find(|(m, _)| *m == mode).expect("embedded config").1;
    let config = EngineConfig::from_yaml(mode, text).expect("embedded config parses");
    let sdk = KeepSdk::default();
    let telemetry = engine::self_telemetry(&config, "selftrace-demo", Some(sdk.provider())).expect("builds");
    let subscriber = tracing_subscriber::layer::SubscriberExt::with(tracing_subscriber::registry(), telemetry.layer());
    let _default = tracing::subscriber::set_default(subscriber);
    // One thread: the scoped subscriber covers every task.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    // One runtime (the scoped subscriber is this thread's): the zone's
    // nodes keep their pipeline logger.
    let options =
        RunOptions { duration: Duration::from_millis(1500), capture: true, otlp_endpoint: None, internal: None };
    let report = runtime.block_on(engine::run(&config, &telemetry, &options)).expect("runs");
    let itr: Vec<Seen> = decode(&report.captured_logs.iter().map(|(_, r)| r.as_bytes().to_vec()).collect::<Vec<_>>());
    (report, itr, sdk.seen())
}

fn has(seen: &[Seen], scope: &str, name: &str, body: &str) -> bool {
    seen.iter().any(|s| s.scope == scope && s.name == name && s.body == body)
}

/// Component logs and in-node library logs of every data node.
fn assert_component_logs(seen: &[Seen], where_: &str) {
    for (scope, name, body) in [
        ("main/receiver/generator", "generator.started", ""),
        ("main/receiver/generator", "generator.batch.generated", ""),
        ("main/receiver/generator", "", "sampled sensors"),
        ("main/processor/batch", "", "compressed batch"),
        ("main/exporter/console", "exporter.batch.exported", ""),
        ("main/exporter/console", "", "payload sent"),
        ("main/receiver/generator", "generator.stopped", ""),
    ] {
        assert!(has(seen, scope, name, body), "{where_} lacks {scope} {name:?} {body:?}: {seen:#?}");
    }
}

/// The summary of the stuck sensor's retries, in the generator's scope.
fn assert_flood_summarised(seen: &[Seen], where_: &str) {
    let summaries: Vec<&Seen> = seen.iter().filter(|s| s.body.starts_with("suppressed ")).collect();
    assert!(
        summaries.len() == 1
            && summaries[0].scope == "main/receiver/generator"
            && summaries[0].body.ends_with(" events in the last 10 s"),
        "{where_}: {summaries:?}"
    );
}

fn assert_no_component_logs(seen: &[Seen], where_: &str) {
    assert!(!seen.iter().any(|s| s.scope.starts_with("main/")), "{where_} has component logs: {seen:#?}");
}

fn assert_nothing_from_the_zone(seen: &[Seen]) {
    assert!(!seen.iter().any(|s| s.scope.starts_with("internal_telemetry/")), "zone logs: {seen:#?}");
}

fn pool(seen: &[Seen]) -> usize {
    seen.iter().filter(|s| s.scope == "pool" && s.body == "connection pool stats").count()
}

fn assert_counters_add_up(report: &Report) {
    let m = &report.metrics;
    assert_eq!(m.layer.received(), m.layer.delivered + m.layer.dropped_total(), "{m:?}");
    assert_eq!(m.layer.dropped_total(), 0, "{m:?}");
    // The stuck sensor's retries past 10 per 10 s are suppressed (and
    // summarised); nothing else is dropped.
    let suppressed = m.node_logs.events_dropped(selftrace::DropReason::Suppressed);
    assert!(suppressed > 0, "the demo's flood: {m:?}");
    assert_eq!(m.node_logs.events_received, m.node_logs.events_delivered + suppressed, "{m:?}");
    assert_eq!(m.node_logs.events_buffered(), 0);
    for r in &m.receivers {
        assert_eq!(r.records_received, r.records_sent, "{r:?}");
    }
}

#[test]
fn itr_only_sends_component_and_third_party_logs_through_the_pipeline() {
    let (report, itr, sdk) = run("itr-only");
    assert_component_logs(&itr, "the ITR pipeline");
    assert_flood_summarised(&itr, "the ITR pipeline");
    assert!(pool(&itr) >= 2, "third-party logs outside nodes reach the ITR: {itr:#?}");
    assert!(sdk.is_empty(), "no SDK in ITR-only mode: {sdk:#?}");
    assert_nothing_from_the_zone(&itr);
    assert_counters_add_up(&report);
    let records: u64 = report.metrics.receivers.iter().map(|r| r.records_sent).sum();
    assert_eq!(records as usize, itr.len());
}

#[test]
fn hybrid_sends_component_logs_to_the_pipeline_and_third_party_logs_to_the_sdk() {
    let (report, itr, sdk) = run("hybrid");
    assert_component_logs(&itr, "the ITR pipeline");
    assert_flood_summarised(&itr, "the ITR pipeline");
    assert_eq!(pool(&itr), 0, "third-party logs outside nodes stay out of the ITR: {itr:#?}");
    assert!(pool(&sdk) >= 2, "they go to the SDK: {sdk:#?}");
    assert_no_component_logs(&sdk, "the SDK");
    assert_nothing_from_the_zone(&itr);
    assert_nothing_from_the_zone(&sdk);
    assert_counters_add_up(&report);
}

#[test]
fn sdk_only_sends_everything_to_the_sdk() {
    let (report, itr, sdk) = run("sdk-only");
    assert!(itr.is_empty() && report.metrics.receivers.is_empty(), "no pipeline: {itr:#?}");
    assert_component_logs(&sdk, "the SDK");
    assert_flood_summarised(&sdk, "the SDK");
    assert!(pool(&sdk) >= 2, "{sdk:#?}");
    assert_counters_add_up(&report);
}
