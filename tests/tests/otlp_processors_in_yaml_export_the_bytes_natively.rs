//! `processors: - batch: { exporter: { otlp: ... } }` in a service
//! configuration builds selftrace's own OTLP exporter (no SDK round trip):
//! third-party and node logs reach a real endpoint (the scripted Python peer)
//! with their resource and scope as encoded; `simple` and `console`
//! processors still go through the SDK; bad settings, in YAML or in the
//! environment, are precise errors.

use std::{process::Command, time::Duration};

use selftrace::otel_info;
use selftrace_itr::{Mode, SelfTelemetry, ServiceConfig};
use selftrace_tests::{demo_binary, peer::Peer, records::KeepSdk};
use tracing_subscriber::layer::SubscriberExt;

fn config(processors: &str) -> ServiceConfig {
    let yaml = format!(
        "service:\n  telemetry:\n    resource:\n      service.name: yaml-export\n    logs:\n      level: info\n      flood_control: {{ enabled: false }}\n      processors:\n{processors}"
    );
    ServiceConfig::from_yaml("service.yaml", &yaml).expect("parses")
}

/// Logs 30 third-party events and 20 node events; shuts down.
fn run(telemetry: &SelfTelemetry) -> selftrace_itr::SelfTelemetryMetrics {
    let subscriber = tracing_subscriber::registry().with(telemetry.layer());
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..30_i64 {
            tracing::info!(target: "db", i, "query done");
        }
        let node = telemetry.shared("main/receiver").expect("node");
        for i in 0..20_i64 {
            otel_info!(node, "receiver.batch", i);
        }
    });
    telemetry.shutdown()
}

#[test]
fn a_batch_otlp_processor_is_the_native_exporter_with_its_headers_and_compression() {
    let peer = Peer::start("http", 0, "[]");
    let config = config(&format!(
        "        - batch:\n            exporter:\n              otlp:\n                endpoint: {}\n                compression: gzip\n                timeout: 2s\n                headers:\n                  x-tenant: t1\n",
        peer.url("")
    ));
    let telemetry = SelfTelemetry::builder(&config.telemetry).node("main/receiver").build().expect("builds");
    assert_eq!(telemetry.mode(), Mode::SdkOnly);

    let metrics = run(&telemetry);

    assert!(metrics.sdk.is_none(), "no SDK in the way");
    let [exporter] = metrics.exporters[..] else { panic!("one exporter: {:?}", metrics.exporters) };
    assert_eq!(exporter.records_acknowledged, 50, "{exporter:?}");
    assert_eq!(exporter.dropped(), 0);
    // The layer's events and the node's records share the exporter's
    // per-thread buffers (the node logs), which it flushes.
    assert_eq!(metrics.layer.delivered, 30, "{metrics:?}");
    assert_eq!(metrics.node_logs.events_delivered, 50, "{metrics:?}");
    let got = peer.requests(50, Duration::from_secs(10));
    assert!(got.iter().all(|r| r.gzip && r.headers == ["x-tenant=t1"]), "{got:?}");
    let records: Vec<&String> = got.iter().flat_map(|r| &r.records).collect();
    assert_eq!(records.len(), 50);
    // Scope names (hex): `db` for third-party events, the node's id for its own.
    let scopes = |hex: &str| records.iter().filter(|r| r.starts_with(&format!("{hex}|"))).count();
    assert_eq!(scopes(&selftrace_tests::hex(b"db")), 30);
    assert_eq!(scopes(&selftrace_tests::hex(b"main/receiver")), 20);
    let service = selftrace_tests::hex(b"yaml-export");
    assert!(got.iter().flat_map(|r| &r.resources).all(|r| r.contains(&service)), "the resource as encoded");
}

#[test]
fn an_otlp_exporter_and_an_sdk_processor_each_get_every_record() {
    let peer = Peer::start("grpc", 0, "[]");
    let config = config(&format!(
        "        - batch:\n            exporter:\n              otlp: {{ endpoint: \"{}\", protocol: grpc }}\n        - simple:\n            exporter:\n              console:\n",
        peer.url("")
    ));
    let sdk = KeepSdk::default();
    let telemetry = SelfTelemetry::builder(&config.telemetry)
        .node("main/receiver")
        .with_sdk_provider(sdk.provider())
        .build()
        .expect("builds");
    // An engine's own provider takes every processor: the otlp one too.
    let metrics = run(&telemetry);
    assert!(metrics.exporters.is_empty());
    assert_eq!(metrics.sdk.map(|s| s.records_emitted), Some(50));
    assert_eq!(sdk.seen().len(), 50);

    // Without a provider of its own: the exporter and the SDK side by side.
    let telemetry = SelfTelemetry::builder(&config.telemetry).node("main/receiver").build().expect("builds");
    let metrics = run(&telemetry);
    assert_eq!(metrics.exporters.len(), 1);
    assert_eq!(metrics.exporters[0].records_acknowledged, 50, "{metrics:?}");
    assert_eq!(metrics.sdk.map(|s| s.records_emitted), Some(50), "{metrics:?}");
    assert_eq!(peer.requests(50, Duration::from_secs(10)).iter().map(|r| r.records.len()).sum::<usize>(), 50);
}

#[test]
fn bad_exporter_settings_in_yaml_are_errors_with_their_key_path() {
    let cases = [
        (
            "              otlp: { endpoint: \"localhost:4318\" }\n",
            "`service.telemetry.logs.processors[0].batch.exporter.otlp.endpoint` (line 11, column 33): `localhost:4318` has no scheme; write `http://localhost:4318` or `https://localhost:4318`",
        ),
        (
            "              otlp: { endpoint: \"http://h:4318\", headers: { \"bad key\": v } }\n",
            "`service.telemetry.logs.processors[0].batch.exporter.otlp.headers` (line 11, column 59): `bad key` is not a valid header name",
        ),
    ];
    for (exporter, expected) in cases {
        let config = config(&format!("        - batch:\n            exporter:\n{exporter}"));
        let error = SelfTelemetry::builder(&config.telemetry).build().expect_err("rejected");
        assert_eq!(error.to_string(), expected);
    }
    let error = ServiceConfig::from_yaml(
        "service.yaml",
        "service:\n  telemetry:\n    logs:\n      processors:\n        - batch:\n            exporter:\n              otlp: { compression: zstd }\n",
    )
    .expect_err("rejected");
    assert!(error.to_string().contains("processors[0].batch.exporter.otlp.compression"), "{error}");
}

#[test]
fn a_bad_environment_variable_names_itself() {
    let dir = std::env::temp_dir().join(format!("selftrace-yaml-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("sdk-otlp.yaml");
    std::fs::write(
        &path,
        "service:\n  telemetry:\n    logs:\n      processors:\n        - batch:\n            exporter:\n              otlp: { endpoint: \"http://127.0.0.1:9/v1/logs\" }\n\npipelines:\n  - name: main\n    receivers: [generator]\n    exporters: [console]\n",
    )
    .expect("written");
    let output = Command::new(demo_binary())
        .arg("--config")
        .arg(&path)
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")
        .output()
        .expect("the demo runs");
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "`OTEL_EXPORTER_OTLP_TIMEOUT`: `10s` is not a positive number of milliseconds (read for service.telemetry.logs.processors[0].batch.exporter.otlp)"
        ),
        "{stderr}"
    );
}

#[test]
fn a_spool_in_yaml_keeps_what_the_endpoint_did_not_take_for_the_next_start() {
    let dir = std::env::temp_dir().join(format!("selftrace-yaml-spool-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let spooled = |endpoint: &str| {
        config(&format!(
            "        - batch:\n            exporter:\n              otlp:\n                endpoint: {endpoint}\n                max_queue_bytes: 1048576\n                spool: {{ dir: {}, max_bytes: 1048576, sync: 20ms }}\n",
            dir.display()
        ))
    };
    // The endpoint is down: every record stays in the spool.
    let down = format!("http://127.0.0.1:{}", selftrace_tests::peer::free_port());
    let config = spooled(&down);
    let telemetry = SelfTelemetry::builder(&config.telemetry).node("main/receiver").build().expect("builds");
    let metrics = run(&telemetry);
    let [first] = metrics.exporters[..] else { panic!("one exporter: {:?}", metrics.exporters) };
    assert_eq!((first.records_spooled, first.spool_records, first.dropped()), (50, 50, 0), "{first:?}");
    assert!(dir.is_dir());

    // The next start, with the endpoint up, sends them first.
    let peer = Peer::start("http", 0, "[]");
    let config = spooled(&peer.url(""));
    let telemetry = SelfTelemetry::builder(&config.telemetry).node("main/receiver").build().expect("builds");
    let metrics = run(&telemetry);
    let [second] = metrics.exporters[..] else { panic!("one exporter: {:?}", metrics.exporters) };
    assert_eq!(second.records_recovered, 50, "{second:?}");
    assert_eq!(second.records_acknowledged, 100, "{second:?}");
    assert_eq!(peer.requests(100, Duration::from_secs(10)).iter().map(|r| r.records.len()).sum::<usize>(), 100);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_spool_on_a_simple_processor_or_out_of_range_is_a_precise_error() {
    let yaml = "service:\n  telemetry:\n    logs:\n      processors:\n        - simple:\n            exporter:\n              otlp: { endpoint: \"http://127.0.0.1:1\", spool: { dir: /tmp/x } }\n";
    let config = ServiceConfig::from_yaml("service.yaml", yaml).expect("parses");
    let error = SelfTelemetry::builder(&config.telemetry).build().expect_err("refused");
    let message = error.to_string();
    assert!(message.contains("processors[0].simple.exporter.otlp.spool") && message.contains("`batch`"), "{message}");

    let yaml = "service:\n  telemetry:\n    logs:\n      processors:\n        - batch:\n            exporter:\n              otlp: { spool: { dir: /tmp/x, max_bytes: 10 } }\n";
    let error = ServiceConfig::from_yaml("service.yaml", yaml).expect_err("out of range");
    let message = error.to_string();
    assert!(message.contains("10 is out of range: 65536 to 1099511627776"), "{message}");
}
