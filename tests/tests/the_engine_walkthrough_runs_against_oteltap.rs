//! The engine walkthrough (`examples/examples/engine_walkthrough.rs`, linked
//! from the README) runs against `oteltap` and exits by itself: its node
//! records arrive through the internal pipeline and the configured
//! exporter, the third-party record straight from the exporter.

use std::{
    io::{BufRead as _, BufReader},
    process::{Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use selftrace_tests::{example_binary, peer::free_port, python};

#[test]
fn the_walkthrough_ships_its_node_and_library_logs_to_oteltap() {
    let binary = example_binary("engine_walkthrough");
    let port = free_port();
    let mut tap = Command::new(python())
        .args(["-m", "oteltap", "--port", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python runs");
    let (tx, lines) = mpsc::channel::<String>();
    let stdout = tap.stdout.take().expect("piped");
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = lines.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
    assert!(first.starts_with("Listening"), "oteltap did not start (scripts/test installs it): {first:?}");

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

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while got.len() < 4 && Instant::now() < deadline {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(200))
            && line.starts_with('{')
        {
            got.push(line);
        }
    }
    let _ = tap.kill();
    let _ = tap.wait();
    for expected in ["listening", "library inside the node", "receiver", "third party outside any node"] {
        assert!(got.iter().any(|l| l.contains(expected)), "{expected:?} in {got:#?}");
    }
    assert_eq!(got.len(), 4, "{got:#?}");
}
