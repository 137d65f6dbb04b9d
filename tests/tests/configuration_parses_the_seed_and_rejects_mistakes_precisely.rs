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
    // In range, checked after parsing: the place of the section.
    let e = engine_error(
        "service:\n  telemetry:\n    logs:\n      internal_collection: { buffer_size_bytes: 100 }\n      processors: []\n",
    );
    assert!(e.contains("`service.telemetry.logs.internal_collection` (line 4, column 28): buffer capacity 100"), "{e}");
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
