//! What the selftrace crates' tests and benches share (not published):
//!
//! * [`record`]: an owned record implementing `LogRecordView`, a proptest
//!   strategy for values, and [`record::decode`], the one decoder of our
//!   bytes through `opentelemetry-proto` (prost), an implementation
//!   independent of ours;
//! * [`host`]: receiver hosts (multi-threaded and thread-per-core) and
//!   text views of decoded records;
//! * [`sdk`]: an SDK log processor that keeps what it is given;
//! * [`bench`](mod@bench): the benches' event, no-op processor and timing in runs.
#![allow(missing_docs, missing_debug_implementations, unreachable_pub, clippy::unwrap_used)]

pub mod bench;
pub mod host;
pub mod metrics;
pub mod record;
pub mod sdk;
pub mod spans;
