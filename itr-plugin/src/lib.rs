//! The Internal Telemetry Receiver (ITR) plugin for [`selftrace`].
//!
//! This crate will hold the small node trait a host engine implements, the
//! `InternalTelemetryReceiver`, the router that fans telemetry out to several
//! receivers, and the configuration of the three routing modes. None of it
//! exists yet: today the crate only re-exports the bytes type it will carry.

pub use selftrace::OtlpBytes;
