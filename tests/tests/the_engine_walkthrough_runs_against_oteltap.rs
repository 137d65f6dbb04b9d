//! The engine walkthrough (`examples/examples/engine_walkthrough.rs`, linked
//! from the README) runs against `oteltap` and exits by itself: its node
//! records arrive through the internal pipeline and the configured
//! exporter, the third-party record straight from the exporter.

use std::process::Command;

use selftrace_tests::{example_binary, oteltap::Oteltap};

#[test]
fn the_walkthrough_ships_its_node_and_library_logs_to_oteltap() {
    let binary = example_binary("engine_walkthrough");
    let tap = Oteltap::start();
    let port = tap.port;

    let out = Command::new(binary)
        .arg(format!("http://127.0.0.1:{port}"))
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .expect("the example runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("mode Hybrid"), "{stdout}");
    assert!(stdout.contains("== exporter: 4 acknowledged, 0 dropped, 0 in flight"), "{stdout}");
    assert!(stdout.contains("== every event accounted for"), "{stdout}");

    let got = tap.records(4);
    drop(tap);
    for expected in ["listening", "library inside the node", "receiver", "third party outside any node"] {
        assert!(got.iter().any(|l| l.contains(expected)), "{expected:?} in {got:#?}");
    }
    assert_eq!(got.len(), 4, "{got:#?}");
}
