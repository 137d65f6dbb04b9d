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

pub mod records;
