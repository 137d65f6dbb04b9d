//! The exporter's spool with real processes: a process logs numbered events
//! while the endpoint is down and is killed with SIGKILL; a second process
//! on the same directory, with the endpoint up (the scripted Python peer),
//! delivers them. Every event the spool had before the kill arrives, the
//! numbers that arrive have no gap, and duplicates stay within what the
//! second process counted as redelivered.

use std::{
    collections::BTreeMap,
    io::{BufRead as _, BufReader},
    process::{Command, Stdio},
    sync::mpsc,
    thread,
    time::Duration,
};

use selftrace_tests::{
    int_attribute,
    peer::{Peer, free_port},
};

const CHILD: &str = env!("CARGO_BIN_EXE_spool_child");

/// The `seq` attribute of a canonical record line.
fn seq(line: &str) -> Option<u64> {
    int_attribute(line, "seq").and_then(|s| u64::try_from(s).ok())
}

fn metrics(line: &str) -> BTreeMap<String, u64> {
    line.split_whitespace()
        .skip(1)
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
        .collect()
}

/// Starts `spool_child log` and waits for its `SPOOLED` line.
fn start_logging(dir: &std::path::Path, endpoint: &str, count: u64) -> std::process::Child {
    let mut logger = Command::new(CHILD)
        .args(["log", dir.to_str().expect("a UTF-8 path"), endpoint, &count.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the child starts");
    let stdout = logger.stdout.take().expect("piped");
    let (tx, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = lines.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
    assert_eq!(first, format!("SPOOLED {count}"), "the child reports what it spooled");
    logger
}

/// Runs `spool_child deliver` to `endpoint`; its final metrics.
fn deliver(dir: &std::path::Path, endpoint: &str) -> (String, BTreeMap<String, u64>) {
    let out = Command::new(CHILD)
        .args(["deliver", dir.to_str().expect("a UTF-8 path"), endpoint])
        .output()
        .expect("the second child runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let line = stdout.lines().find(|l| l.starts_with("METRICS ")).expect("a METRICS line").to_owned();
    let m = metrics(&line);
    (line, m)
}

/// A batch the endpoint took while the process was killed waiting for the
/// answer is sent again: a duplicate, within what was counted redelivered.
#[test]
fn a_batch_acknowledged_as_the_process_died_is_sent_again_and_counted() {
    let dir = std::env::temp_dir().join(format!("selftrace-spool-dup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // The endpoint holds the first request 3 s, then takes it.
    let peer = Peer::start("http", 0, r#"[{"sleep": 3.0}]"#);
    let mut logger = start_logging(&dir, &peer.url("/v1/logs"), 2000);
    logger.kill().expect("SIGKILL");
    let _ = logger.wait();

    let (line, m) = deliver(&dir, &peer.url("/v1/logs"));
    assert!(m["recovered"] >= 2000, "{line}");
    assert!(m["redelivered"] > 0, "the frame in flight was sent before: {line}");
    assert_eq!(m["acknowledged"], m["recovered"], "{line}");
    let requests = peer.requests(m["acknowledged"] as usize + 1, Duration::from_secs(20));
    let seqs: Vec<u64> = requests.iter().flat_map(|r| r.records.iter().filter_map(|l| seq(l))).collect();
    let mut unique = seqs.clone();
    unique.sort_unstable();
    unique.dedup();
    let duplicates = (seqs.len() - unique.len()) as u64;
    assert!(duplicates > 0, "the endpoint got the first batch twice: {line}");
    assert!(duplicates <= m["redelivered"], "{duplicates} duplicates, {line}");
    assert_eq!(seqs.len() as u64, m["acknowledged"] + duplicates);
    let max = *unique.last().expect("records");
    assert_eq!(unique, (0..=max).collect::<Vec<_>>(), "every number up to {max} arrived");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_killed_process_loses_nothing_it_had_spooled() {
    let dir = std::env::temp_dir().join(format!("selftrace-spool-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let down = format!("http://127.0.0.1:{}/v1/logs", free_port());
    const COUNT: u64 = 5000;

    // Arrange: a process that logs while the endpoint is down.
    let mut logger = start_logging(&dir, &down, COUNT);

    // Act: kill it while it is still logging, then deliver from a second
    // process with the endpoint up.
    thread::sleep(Duration::from_millis(200));
    logger.kill().expect("SIGKILL");
    let status = logger.wait().expect("the child ends");
    assert!(!status.success(), "killed, not ended: {status:?}");
    let peer = Peer::start("http", 0, "[]");
    let (line, m) = deliver(&dir, &peer.url("/v1/logs"));

    // Assert: what the spool held is what arrived.
    let recovered = m["recovered"];
    assert!(recovered >= COUNT, "every event spooled before the kill was found: {line}");
    assert_eq!(m["acknowledged"], recovered, "all of it was delivered: {line}");
    assert_eq!((m["in_flight"], m["spool_records"], m["dropped"]), (0, 0, 0), "{line}");
    let requests = peer.requests(recovered as usize, Duration::from_secs(30));
    let seqs: Vec<u64> = requests.iter().flat_map(|r| r.records.iter().filter_map(|l| seq(l))).collect();
    assert_eq!(seqs.len() as u64, recovered, "the endpoint got what was acknowledged");
    let mut unique = seqs.clone();
    unique.sort_unstable();
    unique.dedup();
    let duplicates = seqs.len() - unique.len();
    assert!(duplicates as u64 <= m["redelivered"], "{duplicates} duplicates, {line}");
    // No gap: one thread logged them in order, so what was lost in the kill
    // is a tail.
    let max = *unique.last().expect("records");
    assert_eq!(unique, (0..=max).collect::<Vec<_>>(), "every number up to {max} arrived");
    assert!(max + 1 >= COUNT);
    // The directory is left with nothing to send.
    let _ = std::fs::remove_dir_all(&dir);
}
