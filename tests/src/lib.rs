//! End-to-end tests across the selftrace crates; see `tests/tests/`.

use std::{fmt::Write as _, path::PathBuf};

/// The Python interpreter the end-to-end tests run: `$SELFTRACE_PYTHON`, or
/// `python3`. It needs the `opentelemetry-proto` package; a missing one
/// fails the tests (`scripts/test` installs it).
pub fn python() -> String {
    std::env::var("SELFTRACE_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// The path of one of the Python helpers in `tests/python/`.
pub fn python_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python").join(name)
}

/// Lowercase hex of `bytes`, as the Python helpers print strings and bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

pub mod export;
pub mod oteltap;
pub mod peer;
pub mod pki;
pub mod records;

/// Waits until `done` holds for `exporter`'s metrics, or 30 s pass; the
/// metrics read last.
pub fn wait_for(
    exporter: &selftrace_bridge::OtlpExporter,
    done: impl Fn(&selftrace_bridge::ExporterMetrics) -> bool,
) -> selftrace_bridge::ExporterMetrics {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let metrics = exporter.metrics();
        if done(&metrics) || std::time::Instant::now() > deadline {
            return metrics;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The integer attribute `key` of a canonical record line (as
/// `tests/python/decode_logs.py` prints it: keys in hex, `i:` values).
pub fn int_attribute(line: &str, key: &str) -> Option<i64> {
    let attributes = line.split('|').nth(7)?;
    let prefix = format!("{}=i:", hex(key.as_bytes()));
    attributes.split(';').find_map(|kv| kv.strip_prefix(prefix.as_str())).and_then(|v| v.parse().ok())
}

/// The demo engine's binary (`cargo run -p selftrace-examples --example
/// demo`), built first if need be with the cargo running the tests.
pub fn demo_binary() -> PathBuf {
    example_binary("demo")
}

/// The binary of example `name` of `selftrace-examples`, built first if
/// need be with the cargo running the tests.
pub fn example_binary(name: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--quiet", "-p", "selftrace-examples", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the example {name} failed");
    // target/debug/deps/<test> → target/debug/examples/<name>
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>");
    profile_dir.join("examples").join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// The canonical lines (`decode_logs.py`: one per resource and per record)
/// of `requests`, decoded by Python's `opentelemetry-proto`.
pub fn python_decode(requests: &[selftrace::OtlpBytes]) -> Vec<String> {
    python_decode_with("decode_logs.py", requests)
}

/// The canonical lines of `requests` (`ExportTraceServiceRequest`s),
/// decoded by Python's opentelemetry-proto (`tests/python/decode_traces.py`).
pub fn python_decode_traces(requests: &[selftrace::OtlpBytes]) -> Vec<String> {
    python_decode_with("decode_traces.py", requests)
}

fn python_decode_with(script: &str, requests: &[selftrace::OtlpBytes]) -> Vec<String> {
    let dir = std::env::temp_dir().join(format!("selftrace-python-{}-{}", std::process::id(), peer::free_port()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let paths: Vec<PathBuf> = requests
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let path = dir.join(format!("request-{i}.bin"));
            std::fs::write(&path, b.as_bytes()).expect("write request");
            path
        })
        .collect();
    let python = python();
    let script = python_script(script);
    let output = std::process::Command::new(&python).arg(&script).args(&paths).output().unwrap_or_else(|e| {
        panic!("cannot run {python}: {e}; install Python 3 with `pip install opentelemetry-proto`")
    });
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "{python} {} failed (is `opentelemetry-proto` installed? `pip install opentelemetry-proto`):\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8").lines().map(str::to_owned).collect()
}

/// The README's code blocks, compiled and run as doctests (`cargo test -p
/// selftrace-tests --doc`), so the README stays true.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The code blocks of the pages the README links to, as doctests.
#[doc = include_str!("../../docs/features.md")]
#[cfg(doctest)]
pub struct FeaturesDoctests;

/// The configuration reference's code blocks, as doctests.
#[doc = include_str!("../../docs/configuration.md")]
#[cfg(doctest)]
pub struct ConfigurationDoctests;
