//! A node id the graph does not have (a typo) is an error naming the known
//! ones, unless the engine adds nodes at run time and says so; an edge to
//! a node that does not exist is an error at build.

use selftrace_itr::{ReceiverSettings, SelfTelemetry, ServiceConfig};

fn config() -> ServiceConfig {
    let yaml = "service:\n  telemetry:\n    logs:\n      level: info\n      processors: []\n";
    ServiceConfig::from_yaml("service.yaml", yaml).expect("parses")
}

#[test]
fn a_typo_in_a_node_id_is_an_error_naming_the_nodes() {
    let config = config();
    let telemetry =
        SelfTelemetry::builder(&config.telemetry).node("main/receiver").node("main/worker").build().expect("builds");
    assert!(telemetry.shared("main/worker").is_ok());
    let error = telemetry.shared("main/wroker").expect_err("a typo");
    assert_eq!(
        error.to_string(),
        "`node`: no node `main/wroker` in the pipelines (nodes: main/receiver, main/worker); a node added at run time needs `SelfTelemetryBuilder::with_runtime_nodes`"
    );
    assert!(telemetry.local("main/wroker").is_err());
    telemetry.shutdown();
}

#[test]
fn an_engine_that_adds_nodes_at_run_time_says_so() {
    let config = config();
    let telemetry = SelfTelemetry::builder(&config.telemetry)
        .node("main/receiver")
        .with_runtime_nodes(true)
        .build()
        .expect("builds");
    assert!(telemetry.shared("main/added-later").is_ok());
    telemetry.shutdown();
    // Nothing declared: any id.
    let telemetry = SelfTelemetry::builder(&config.telemetry).build().expect("builds");
    assert!(telemetry.shared("anything").is_ok());
    telemetry.shutdown();
}

#[test]
fn an_edge_to_a_node_that_does_not_exist_is_an_error_at_build() {
    let yaml = "service:\n  telemetry:\n    logs:\n      level: info\n      internal_collection: { enabled: true }\n      processors: []\n";
    let config = ServiceConfig::from_yaml("service.yaml", yaml).expect("parses");
    let error = SelfTelemetry::builder(&config.telemetry)
        .receiver("itr", ReceiverSettings::default())
        .node("itr/exporter")
        .edge("itr", "ghost")
        .build()
        .expect_err("a ghost node");
    assert_eq!(error.to_string(), "`pipelines`: edge `itr` → `ghost`: no node `ghost` (nodes: itr, itr/exporter)");
}
