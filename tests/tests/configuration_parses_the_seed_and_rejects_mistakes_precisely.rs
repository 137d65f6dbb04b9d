//! Configuration: every example of the original configuration design parses (copied verbatim into
//! `tests/configs/seed/`), and mistakes give an error naming the key path,
//! the line and the column.

use std::path::PathBuf;

use selftrace_examples::engine::{self, EngineConfig};
use selftrace_itr::{Mode, ServiceConfig};

fn seed(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/seed").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_seed_service_example_parses_to_its_mode() {
    for (file, mode) in [
        ("mode1-service.yaml", Mode::SdkOnly),
        ("mode2-service.yaml", Mode::Hybrid),
        ("mode3-service.yaml", Mode::ItrOnly),
        ("open-question-mode1-service.yaml", Mode::SdkOnly),
        ("open-question-mode2-service.yaml", Mode::Hybrid),
        ("open-question-mode3-service.yaml", Mode::ItrOnly),
    ] {
        let config = ServiceConfig::from_yaml(file, &seed(file)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.telemetry.logs.mode(), mode, "{file}");
        let collection = config.telemetry.logs.internal_collection();
        if mode != Mode::SdkOnly {
            assert_eq!(
                (collection.buffer_size_bytes, collection.max_record_bytes, collection.max_record_count),
                (65536, 16384, 1000)
            );
        }
    }
}

#[test]
fn every_seed_pipelines_example_parses_and_the_graph_resolves() {
    for (pipelines, service) in [
        ("mode1-pipelines.yaml", "mode1-service.yaml"),
        ("mode2-pipelines.yaml", "mode2-service.yaml"),
        ("mode3-pipelines.yaml", "mode3-service.yaml"),
        ("open-question-pipelines.yaml", "open-question-mode3-service.yaml"),
    ] {
        let text = format!("{}\n{}", seed(service), seed(pipelines));
        let config = EngineConfig::from_yaml(pipelines, &text).unwrap_or_else(|e| panic!("{e}"));
        // The graph and the mode agree (the SDK exporters are built, not
        // connected: nothing is sent).
        let telemetry = engine::self_telemetry(&config, "seed", None).unwrap_or_else(|e| panic!("{pipelines}: {e}"));
        telemetry.shutdown();
    }
}

fn service_error(text: &str) -> String {
    ServiceConfig::from_yaml("service.yaml", text).expect_err("an error").to_string()
}

fn engine_error(text: &str) -> String {
    match EngineConfig::from_yaml("engine.yaml", text) {
        Err(e) => e.to_string(),
        Ok(config) => engine::self_telemetry(&config, "t", None).expect_err("an error").to_string(),
    }
}

#[test]
fn broken_yaml_names_the_place() {
    let e = service_error("service:\n  telemetry:\n    logs: [\n");
    assert!(e.starts_with("service.yaml:3:11: `service.telemetry.logs`: "), "{e}");
    let e = service_error("service:\n  telemetry:\n  logs:\n    - a\n   b: c\n");
    assert!(e.starts_with("service.yaml:"), "{e}");
}

#[test]
fn unknown_keys_are_rejected_with_their_path() {
    let e = service_error("service:\n  telemetry:\n    logs:\n      levl: info\n");
    assert!(e.starts_with("service.yaml:4:7: `service.telemetry.logs.levl`: unknown field `levl`"), "{e}");
    let e = service_error(
        "service:\n  telemetry:\n    logs:\n      internal_collection:\n        enabled: true\n        flush_intervall: 1s\n",
    );
    assert!(
        e.starts_with("service.yaml:6:9: `service.telemetry.logs.internal_collection.flush_intervall`: unknown field"),
        "{e}"
    );
    let e = engine_error("pipelines:\n  - name: main\n    receivers: [kafka]\n    exporters: [console]\n");
    assert!(e.starts_with("engine.yaml:3:17: `pipelines[0].receivers[0]`: unknown variant `kafka`"), "{e}");
}

#[test]
fn wrong_types_and_values_name_the_key() {
    let e = service_error(
        "service:\n  telemetry:\n    logs:\n      internal_collection:\n        buffer_size_bytes: lots\n",
    );
    assert!(
        e.starts_with("service.yaml:5:28: `service.telemetry.logs.internal_collection.buffer_size_bytes`: "),
        "{e}"
    );
    let e = service_error("service:\n  telemetry:\n    logs:\n      level: loud\n");
    assert!(e.contains("`service.telemetry.logs.level`: unknown variant `loud`"), "{e}");
    let e =
        service_error("service:\n  telemetry:\n    logs:\n      internal_collection:\n        flush_interval: 10\n");
    assert!(e.contains("`service.telemetry.logs.internal_collection.flush_interval`") && e.contains("no unit"), "{e}");
    let e = service_error(
        "service:\n  telemetry:\n    logs:\n      processors:\n        - batch:\n            exporter:\n              otlp: { timeout: 10 }\n",
    );
    assert!(
        e.contains("`service.telemetry.logs.processors[0].batch.exporter.otlp.timeout`") && e.contains("no unit"),
        "{e}"
    );
    // Each in range, the two together not: checked after parsing, at the
    // place of the section.
    let e = engine_error(
        "service:\n  telemetry:\n    logs:\n      internal_collection: { buffer_size_bytes: 4096, max_record_bytes: 4000 }\n      processors: []\n",
    );
    assert!(
        e.contains("`service.telemetry.logs.internal_collection` (line 4, column 28): record limit 4000 must be at least 128 and at most the buffer capacity 4096 less 512"),
        "{e}"
    );
}

const ITR_PIPELINE: &str = "\
pipelines:
  - name: internal_telemetry
    receivers: [internal_telemetry]
    exporters: [console]
  - name: main
    receivers: [generator]
    exporters: [console]
";

#[test]
fn a_configuration_that_would_loop_is_rejected() {
    // A node downstream of the receiver told to log into the pipeline.
    let e = engine_error(&format!(
        "service:\n  telemetry:\n    logs:\n      internal_collection: {{ enabled: true }}\n      processors: []\n      nodes:\n        internal_telemetry/exporter/console: {{ logger: default }}\n{ITR_PIPELINE}"
    ));
    assert!(
        e.contains("`service.telemetry.logs.nodes.internal_telemetry/exporter/console.logger` (line 7, column 46):")
            && e.contains("internal_telemetry/exporter/console")
            && e.contains("internal_telemetry/receiver/internal_telemetry"),
        "{e}"
    );
    // The receiver's own pipeline logger cannot be the pipeline.
    let e = engine_error(
        "pipelines:\n  - name: itr\n    receivers:\n      - internal_telemetry: { logger: default }\n    exporters: [console]\n",
    );
    assert!(
        e.starts_with(
            "engine.yaml:4:39: `pipelines[0].receivers[0].internal_telemetry.logger`: unknown variant `default`"
        ),
        "{e}"
    );
    // Outside the zone, the same override is fine.
    let ok = format!(
        "service:\n  telemetry:\n    logs:\n      internal_collection: {{ enabled: true }}\n      processors: []\n      nodes:\n        main/exporter/console: {{ logger: default, level: debug }}\n{ITR_PIPELINE}"
    );
    let config = EngineConfig::from_yaml("ok.yaml", &ok).expect("parses");
    engine::self_telemetry(&config, "t", None).expect("builds").shutdown();
}

#[test]
fn modes_and_graphs_that_disagree_are_rejected() {
    let e = engine_error(
        "service:\n  telemetry:\n    logs:\n      internal_collection: { enabled: true }\npipelines:\n  - name: main\n    receivers: [generator]\n    exporters: [console]\n",
    );
    assert!(
        e.contains("`service.telemetry.logs.internal_collection.enabled` (line 4, column 28): internal collection is enabled but no pipeline has an `internal_telemetry` receiver"),
        "{e}"
    );
    let e = engine_error(&format!("service:\n  telemetry:\n    logs:\n      level: info\n{ITR_PIPELINE}"));
    assert!(e.contains("internal collection is not enabled"), "{e}");
    let e = engine_error(&format!(
        "service:\n  telemetry:\n    logs:\n      internal_collection: {{ enabled: true }}\n      nodes:\n        main/exporter/consol: {{ logger: raw }}\n{ITR_PIPELINE}"
    ));
    assert!(e.contains("`service.telemetry.logs.nodes.main/exporter/consol` (line 6, column 31): no node"), "{e}");
}

#[test]
fn every_capacity_and_count_out_of_its_range_is_rejected_at_its_key() {
    let logs = |body: &str| service_error(&format!("service:\n  telemetry:\n    logs:\n{body}"));
    let collection = |key: &str, value: &str| {
        logs(&format!("      internal_collection:\n        enabled: true\n        {key}: {value}\n"))
    };
    for (got, want) in [
        (
            collection("max_record_count", "1000000000000"),
            "service.yaml:6:27: `service.telemetry.logs.internal_collection.max_record_count`: 1000000000000 is out of range: 1 to 1000000",
        ),
        (
            collection("max_record_count", "0"),
            "service.yaml:6:27: `service.telemetry.logs.internal_collection.max_record_count`: 0 is out of range: 1 to 1000000",
        ),
        (
            collection("buffer_size_bytes", "100"),
            "service.yaml:6:28: `service.telemetry.logs.internal_collection.buffer_size_bytes`: 100 is out of range: 1024 to 268435456",
        ),
        (
            collection("max_record_bytes", "64"),
            "service.yaml:6:27: `service.telemetry.logs.internal_collection.max_record_bytes`: 64 is out of range: 128 to 268435456",
        ),
        (
            collection("max_value_bytes", "0"),
            "service.yaml:6:26: `service.telemetry.logs.internal_collection.max_value_bytes`: 0 is out of range: 1 to 268435456",
        ),
        (
            collection("flush_interval", "2h"),
            "service.yaml:6:25: `service.telemetry.logs.internal_collection.flush_interval`: 2h is out of range: 1ms to 1h",
        ),
        (
            logs("      startup_buffer_bytes: 300000000\n"),
            "service.yaml:4:29: `service.telemetry.logs.startup_buffer_bytes`: 300000000 is out of range: 0 to 268435456",
        ),
        (
            logs("      span_fields: { enabled: true, max_fields: 1000 }\n"),
            "service.yaml:4:49: `service.telemetry.logs.span_fields.max_fields`: 1000 is out of range: 1 to 64",
        ),
        (
            logs("      span_fields: { enabled: true, max_bytes: 0 }\n"),
            "service.yaml:4:48: `service.telemetry.logs.span_fields.max_bytes`: 0 is out of range: 1 to 1048576",
        ),
        (
            logs("      console: { format: text, stream: stdout }\n"),
            "service.yaml:4:16: `service.telemetry.logs.console`: the text console writes to stderr; `stream` is for `format: otlp_json`",
        ),
    ] {
        assert_eq!(got, want);
    }
}

#[test]
fn receiver_capacities_out_of_range_are_rejected_at_their_key() {
    use selftrace_itr::{ReceiverSettings, config::from_yaml};
    for (yaml, want) in [
        ("channel_capacity: 0\n", "itr.yaml:1:19: `channel_capacity`: 0 is out of range: 1 to 1000000"),
        ("channel_capacity: 5000000\n", "itr.yaml:1:19: `channel_capacity`: 5000000 is out of range: 1 to 1000000"),
        ("max_batch_records: 10000000\n", "itr.yaml:1:20: `max_batch_records`: 10000000 is out of range: 1 to 1000000"),
        ("max_batch_bytes: 10\n", "itr.yaml:1:18: `max_batch_bytes`: 10 is out of range: 1024 to 67108864"),
        ("flush_interval: 0s\n", "itr.yaml:1:17: `flush_interval`: 0s is out of range: 1ms to 1h"),
    ] {
        let got = from_yaml::<ReceiverSettings>("itr.yaml", yaml).expect_err("out of range").to_string();
        assert_eq!(got, want);
    }
}

#[test]
fn a_resource_that_leaves_no_room_for_a_record_is_rejected_naming_the_attribute() {
    let huge = "x".repeat(10 << 20);
    let config = ServiceConfig::from_yaml(
        "service.yaml",
        &format!("service:\n  telemetry:\n    resource:\n      host.name: box\n      service.name: {huge}\n    logs:\n      processors: []\n"),
    )
    .expect("parses: the size is checked with the limits, at build");
    let error = selftrace_itr::SelfTelemetry::builder(&config.telemetry).build().expect_err("rejected").to_string();
    assert_eq!(
        error,
        "`service.telemetry.resource.service.name`: the resource takes 10485809 bytes encoded (10485760 of them this attribute's value), more than the 48993 bytes a request has room for beside a record at the limit (`internal_collection.buffer_size_bytes` 65536 less `max_record_bytes` 16383 less 160 for the envelope): every record would be dropped as too large"
    );
    // 40 KiB fits the default limits.
    let fits = ServiceConfig::from_yaml(
        "service.yaml",
        &format!(
            "service:\n  telemetry:\n    resource:\n      note: {}\n    logs:\n      processors: []\n",
            "y".repeat(40 << 10)
        ),
    )
    .expect("parses");
    selftrace_itr::SelfTelemetry::builder(&fits.telemetry).build().expect("fits").shutdown();
}
