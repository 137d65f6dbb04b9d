//! End-to-end tests across the selftrace crates; see `tests/tests/`.
