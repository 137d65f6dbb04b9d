//! The exporter's spool and its memory cap under faults: torn and damaged
//! frames, a full spool, a full disk (a real `tmpfs`), a directory that is
//! locked, open to others or impossible to create, and a memory cap reached.
//! Each is counted or a precise error, and
//! `produced == acknowledged + dropped (by reason) + what the spool keeps`.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use selftrace::{Destination, OtlpBytes, OtlpBytesChannel, OtlpTracingLayer, TrySendError};
use selftrace_bridge::{
    ExporterMetrics, OtlpExporter, OtlpExporterBuilder,
    export::{ExportError, RetryPolicy},
};
use selftrace_tests::{
    int_attribute,
    peer::{Peer, free_port},
    wait_for,
};
use tracing_subscriber::layer::SubscriberExt;

/// `n` one-record requests with `seq = 0..n` and `pad` bytes of text each.
fn produce(n: u64, pad: usize) -> Vec<OtlpBytes> {
    let channel = OtlpBytesChannel::new(n as usize);
    let layer = OtlpTracingLayer::builder(Destination::Channel(channel.sender())).with_flood_limit(None).build();
    let text = "x".repeat(pad);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for seq in 0..n {
            tracing::info!(target: "spool", seq, text = text.as_str(), "numbered");
        }
    });
    channel.receiver().drain().collect()
}

/// Hands `requests` to the exporter; returns how many were refused.
fn feed(exporter: &OtlpExporter, requests: &[OtlpBytes]) -> u64 {
    let sender = exporter.sender();
    requests.iter().filter(|r| matches!(sender.try_send((*r).clone()), Err(TrySendError::Full(_)))).count() as u64
}

fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("selftrace-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn down() -> String {
    format!("http://127.0.0.1:{}/v1/logs", free_port())
}

fn builder(endpoint: &str) -> OtlpExporterBuilder {
    OtlpExporter::builder()
        .with_env(false)
        .with_endpoint(endpoint)
        .with_max_delay(Duration::from_millis(20))
        .with_max_batch_records(1)
        .with_shutdown_timeout(Duration::from_millis(300))
        .with_retry(RetryPolicy {
            initial: Duration::from_millis(20),
            max_interval: Duration::from_millis(100),
            max_elapsed: Duration::from_secs(20),
        })
}

/// The `seq` numbers the peer received.
fn received(peer: &Peer, records: u64) -> Vec<u64> {
    peer.requests(records as usize, Duration::from_secs(30))
        .iter()
        .flat_map(|r| r.records.iter())
        .filter_map(|line| int_attribute(line, "seq").and_then(|s| u64::try_from(s).ok()))
        .collect()
}

/// Spools `requests` with the endpoint down and stops: the spool keeps them.
fn spool_and_stop(dir: &Path, requests: &[OtlpBytes], max_bytes: u64) -> ExporterMetrics {
    let exporter = builder(&down()).with_spool(dir).with_spool_max_bytes(max_bytes).build().expect("builds");
    assert_eq!(feed(&exporter, requests), 0);
    let n = requests.len() as u64;
    wait_for(&exporter, |m| m.records_spooled + m.dropped_spool_full == n);
    exporter.shutdown().expect("shuts down")
}

/// Delivers what `dir` holds to a peer; returns the metrics and the seqs.
fn deliver(dir: &Path) -> (ExporterMetrics, Vec<u64>) {
    let peer = Peer::start("http", 0, "[]");
    let exporter = builder(&peer.url("/v1/logs")).with_spool(dir).build().expect("builds");
    let recovered = exporter.metrics().records_recovered;
    wait_for(&exporter, |m| m.records_acknowledged == recovered && m.spool_records == 0);
    let metrics = exporter.shutdown().expect("shuts down");
    (metrics, received(&peer, recovered))
}

/// The offsets of the frames of a segment file (format in the spool's
/// module docs: an 8-byte header, then length, records, CRC-32, bytes).
fn frames(segment: &[u8]) -> Vec<(usize, usize)> {
    let mut at = 8;
    let mut frames = Vec::new();
    while at + 12 <= segment.len() {
        let len = u32::from_le_bytes(segment[at..at + 4].try_into().expect("4 bytes")) as usize;
        frames.push((at, len));
        at += 12 + len;
    }
    frames
}

fn segment_with_frames(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .expect("the spool directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .expect("a segment")
}

#[test]
fn what_a_stopped_exporter_leaves_is_sent_by_the_next_one() {
    let dir = dir("spool-restart");
    let requests = produce(50, 10);
    let first = spool_and_stop(&dir, &requests, 1 << 30);
    assert_eq!(first.records_spooled, 50);
    assert_eq!((first.records_in_flight, first.spool_records, first.dropped()), (50, 50, 0), "{first:?}");
    let (metrics, seqs) = deliver(&dir);
    assert_eq!(metrics.records_recovered, 50);
    assert_eq!(metrics.records_acknowledged, 50);
    // The frame in flight when the first stopped had been sent.
    assert!(metrics.records_redelivered <= 1, "{metrics:?}");
    assert_eq!(seqs.iter().copied().collect::<BTreeSet<_>>(), (0..50).collect());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_torn_last_frame_and_a_damaged_middle_frame_are_counted_and_the_rest_delivered() {
    let dir = dir("spool-damage");
    let requests = produce(10, 10);
    let first = spool_and_stop(&dir, &requests, 1 << 30);
    assert_eq!(first.records_spooled, 10);
    let path = segment_with_frames(&dir);
    let mut data = std::fs::read(&path).expect("the segment");
    let frames = frames(&data);
    assert_eq!(frames.len(), 10, "one frame per batch of one record");
    // A byte flipped in frame 4's bytes, and frame 9 cut in the middle.
    let (at4, _) = frames[4];
    data[at4 + 12 + 3] ^= 0xff;
    let (at9, len9) = frames[9];
    data.truncate(at9 + 12 + len9 / 2);
    std::fs::write(&path, &data).expect("damaged");

    let (metrics, seqs) = deliver(&dir);
    assert_eq!(metrics.spool_corrupt_frames, 2, "{metrics:?}");
    assert_eq!(metrics.records_recovered, 8);
    assert_eq!(metrics.records_acknowledged, 8);
    let expected: BTreeSet<u64> = (0..10).filter(|s| *s != 4 && *s != 9).collect();
    assert_eq!(seqs.iter().copied().collect::<BTreeSet<_>>(), expected);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_full_spool_refuses_the_newest_and_counts_them() {
    let dir = dir("spool-full");
    let requests = produce(200, 100);
    let first = spool_and_stop(&dir, &requests, 8 << 10);
    assert!(first.dropped_spool_full > 0, "{first:?}");
    assert!(first.records_spooled > 0, "{first:?}");
    assert_eq!(first.records_spooled + first.dropped_spool_full, 200);
    assert!(first.spool_bytes <= 8 << 10, "{first:?}");
    // produced == acknowledged + dropped + what the spool keeps
    assert_eq!(first.records_acknowledged + first.dropped() + first.spool_records, 200);
    let (metrics, seqs) = deliver(&dir);
    assert_eq!(metrics.records_acknowledged, first.records_spooled);
    // The oldest were kept.
    assert_eq!(seqs.iter().copied().collect::<BTreeSet<_>>(), (0..first.records_spooled).collect());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_second_exporter_on_the_same_directory_is_refused() {
    let dir = dir("spool-lock");
    let first = builder(&down()).with_spool(&dir).build().expect("builds");
    let second = builder(&down()).with_spool(&dir).build();
    match second {
        Err(ExportError::Spool(e)) => {
            assert!(e.is_locked());
            assert!(e.to_string().contains(dir.to_str().expect("UTF-8")), "{e}");
        }
        other => panic!("expected a locked spool: {other:?}"),
    }
    first.shutdown().expect("shuts down");
    // Free again once the first is gone.
    drop(first);
    builder(&down()).with_spool(&dir).build().expect("builds").shutdown().expect("shuts down");
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[test]
fn a_directory_others_can_write_or_that_cannot_be_made_is_a_precise_error() {
    use std::os::unix::fs::PermissionsExt;

    let open = dir("spool-open");
    std::fs::create_dir_all(&open).expect("made");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let error = builder(&down()).with_spool(&open).build().expect_err("refused");
    let message =
        format!("{error}: {}", std::error::Error::source(&error).map(ToString::to_string).unwrap_or_default());
    assert!(message.contains("can be written by other users") && message.contains("777"), "{message}");

    let file = dir("spool-file");
    std::fs::write(&file, b"a file").expect("written");
    let error = builder(&down()).with_spool(file.join("spool")).build().expect_err("refused");
    let source = std::error::Error::source(&error).map(ToString::to_string).unwrap_or_default();
    assert!(source.contains(file.to_str().expect("UTF-8")), "{source}");

    // A new directory is made 0700, its files 0600.
    let fresh = dir("spool-fresh");
    builder(&down()).with_spool(&fresh).build().expect("builds").shutdown().expect("shuts down");
    let mode = |p: &Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
    assert_eq!(mode(&fresh), 0o700);
    for entry in std::fs::read_dir(&fresh).expect("listed") {
        let path = entry.expect("an entry").path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    for d in [open, file, fresh] {
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::remove_file(&d);
    }
}

/// A `tmpfs` of `size`, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let path = dir("spool-tmpfs");
        std::fs::create_dir_all(&path).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(&path)
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs needs root (CI runs as root)");
        Self(path)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_full_disk_falls_back_to_memory_and_loses_nothing() {
    let disk = Tmpfs::mount("64k");
    // The endpoint answers the first batch after 2 s: meanwhile the spool
    // fills the disk.
    let peer = Peer::start("http", 0, r#"[{"sleep": 2.0}]"#);
    let exporter = builder(&peer.url("/v1/logs")).with_spool(disk.0.join("spool")).build().expect("builds");
    let requests = produce(300, 500);
    assert_eq!(feed(&exporter, &requests), 0);
    let during = wait_for(&exporter, |m| m.spool_write_errors > 0);
    assert!(during.spool_write_errors > 0, "the disk filled: {during:?}");
    wait_for(&exporter, |m| m.records_acknowledged == 300);
    let metrics = exporter.shutdown().expect("shuts down");
    assert_eq!(metrics.records_acknowledged, 300, "{metrics:?}");
    assert_eq!(metrics.dropped(), 0);
    let seqs = received(&peer, 300);
    assert_eq!(seqs.iter().copied().collect::<BTreeSet<_>>(), (0..300).collect());
}

#[test]
fn the_memory_cap_refuses_and_counts_what_does_not_fit() {
    // No spool; the endpoint holds the first batch 2 s.
    let peer = Peer::start("http", 0, r#"[{"sleep": 2.0}]"#);
    let cap = 64 << 10;
    let exporter = builder(&peer.url("/v1/logs")).with_max_queue_bytes(cap).build().expect("builds");
    let requests = produce(1000, 500);
    let refused = feed(&exporter, &requests);
    assert!(refused > 0, "more than the cap was offered");
    let during = exporter.metrics();
    assert!(during.queue_bytes <= cap, "{during:?}");
    assert_eq!(during.dropped_queue_full, refused);
    wait_for(&exporter, |m| m.records_acknowledged + m.dropped() == 1000);
    let metrics = exporter.shutdown().expect("shuts down");
    assert_eq!(metrics.records_acknowledged + metrics.dropped_queue_full, 1000, "{metrics:?}");
    assert_eq!(received(&peer, metrics.records_acknowledged).len() as u64, metrics.records_acknowledged);
}
