//! Runnable examples for selftrace; see the `examples/` folder of this crate.
