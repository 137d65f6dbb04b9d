//! A `SetupError` made from another error takes its place in a report: its
//! text once, at the key, and that error's cause as its source, so printing
//! the chain (`error`, then each `source()`) says each thing once.

#![cfg(feature = "otlp-http")]

use std::error::Error as _;

use selftrace_itr::{ReceiverSettings, SelfTelemetry, ServiceConfig};

/// Every text of the chain, outermost first.
fn chain(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut texts = vec![error.to_string()];
    let mut next = error.source();
    while let Some(cause) = next {
        texts.push(cause.to_string());
        next = cause.source();
    }
    texts
}

/// No text of the chain holds the next one.
fn each_once(texts: &[String]) {
    for pair in texts.windows(2) {
        assert!(!pair[0].contains(&pair[1]), "{:?} repeats {:?}", pair[0], pair[1]);
    }
}

#[test]
fn a_spool_that_cannot_be_made_is_the_key_then_the_system_error() {
    let dir = std::env::temp_dir().join(format!("selftrace-setup-error-{}", std::process::id()));
    std::fs::write(&dir, b"a file, not a directory").expect("write a file");
    let yaml = format!(
        "service:\n  telemetry:\n    logs:\n      level: info\n      processors:\n        - batch:\n            exporter:\n              otlp:\n                endpoint: \"http://127.0.0.1:9\"\n                spool:\n                  dir: {}\n",
        dir.join("spool").display()
    );
    let config = ServiceConfig::from_yaml("service.yaml", &yaml).expect("parses");
    let error = SelfTelemetry::builder(&config.telemetry).build().expect_err("a spool under a file");
    let _ = std::fs::remove_file(&dir);

    let texts = chain(&error);
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[0].starts_with("`service.telemetry.logs.processors[0].batch.exporter.otlp.spool.dir` (line 11, column 19): cannot use the spool path"), "{texts:?}");
    // The system's own error, said by the source alone.
    let io = error.source().and_then(|s| s.downcast_ref::<std::io::Error>()).expect("the io error is the source");
    assert_eq!(texts[1], io.to_string());
    each_once(&texts);
}

#[test]
fn an_error_without_a_cause_has_no_source() {
    let yaml = "service:\n  telemetry:\n    logs:\n      level: info\n      internal_collection: { enabled: true }\n      processors: []\n";
    let config = ServiceConfig::from_yaml("service.yaml", yaml).expect("parses");
    let error = SelfTelemetry::builder(&config.telemetry)
        .receiver("itr", ReceiverSettings::default())
        .edge("itr", "ghost")
        .build()
        .expect_err("a ghost node");
    assert_eq!(error.to_string(), "`pipelines`: edge `itr` → `ghost`: no node `ghost` (nodes: itr)");
    assert!(error.source().is_none(), "the zone's error is the message, not a cause said again");
}
