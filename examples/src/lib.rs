//! Runnable examples for selftrace; see `examples/`.
//!
//! `cargo run -p selftrace-examples --example demo` runs the demo engine,
//! whose code is [`engine`].

pub mod engine;
