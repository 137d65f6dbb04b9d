//! OTLP bytes from [`selftrace`] into the OpenTelemetry SDK.
//!
//! This crate will hold the zero-copy decoder over [`OtlpBytes`], the emitter
//! into `opentelemetry_sdk` and the consumer task. None of it exists yet:
//! today the crate only re-exports the bytes type it will read.

pub use selftrace::OtlpBytes;
