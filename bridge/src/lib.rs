//! Where selftrace's bytes leave the process: an OTLP endpoint, as they are,
//! or the OpenTelemetry SDK.
//!
//! selftrace encodes every event once, into OTLP protobuf bytes. This crate
//! takes those bytes to the places an application sends its logs:
//!
//! * [`OtlpExporter`] ([`export`]): the bytes to an OTLP/HTTP or OTLP/gRPC
//!   endpoint unchanged: requests merged into batches without decoding a
//!   record, OTLP's retry and partial-success semantics, the standard
//!   `OTEL_EXPORTER_OTLP_*` variables, and every record accounted for up to
//!   the endpoint ([`ExporterMetrics`]), its memory capped in bytes, and
//!   optionally a disk spool that carries batches through endpoint outages
//!   and process crashes ([durable delivery](export#durable-delivery)). What
//!   a `batch` processor with an `otlp` exporter builds in
//!   `selftrace-itr`'s configuration.
//! * [`SdkBridge`]: the bytes into the OpenTelemetry SDK's processors and
//!   exporters (stdout, anything else), or the console.
//!
//! ```text
//!  OtlpTracingLayer ─┐                  OtlpExporter (its own thread)
//!  NodeLogs ─────────┼─► OtlpBytesChannel ─► Batcher ─► [spool] ─► POST /v1/logs | LogsService/Export
//!                    │                  SdkBridge (thread or async task)
//!                    └─► OtlpBytesChannel ─► LogsRequest (zero-copy decoder)
//!                                              ─► SdkEmitter: Logger::create_log_record + setters
//!                                              ─► SdkLoggerProvider ─► processors ─► exporters
//! ```
//!
//! * [`LogsRequest`](selftrace::decode::LogsRequest) (in `selftrace`): the zero-copy,
//!   allocation-free reader of an `ExportLogsServiceRequest` the SDK bridge
//!   reads with; each record is a [`DecodedRecord`](selftrace::decode::DecodedRecord) that
//!   implements [`selftrace::view::LogRecordView`]. Malformed bytes give a
//!   [`DecodeError`](selftrace::decode::DecodeError) with the offset, never a panic.
//! * [`SdkEmitter`](crate::sdk::SdkEmitter): records into an [`SdkLoggerProvider`](opentelemetry_sdk::logs::SdkLoggerProvider) through the SDK's
//!   public API (mapping table there).
//! * [`SdkBridge`]: the channel and the consumer that drains it (a thread of
//!   its own, or a [`BridgeTask`](crate::sdk::BridgeTask) for an async runtime), with an idempotent
//!   graceful shutdown, no feedback loop from exporters that log, and
//!   backpressure on the provider so that the SDK never drops what the
//!   bridge counted as emitted.
//! * [`selftrace::console::write_request`], [`selftrace::console::print_request`]
//!   (in `selftrace`): console lines for the records of a request, as the
//!   `Console` destination prints them.
//! * [`stdout_provider`], [`otlp_http_provider`], `otlp_grpc_provider`:
//!   providers wired to the usual exporters.
//!
//! # Which to pick
//!
//! * Logs to an OTLP endpoint (a Collector, a backend): [`OtlpExporter`].
//!   The bytes go as they are, with no SDK in the process for them; this is
//!   what a `batch` processor with an `otlp` exporter builds.
//! * The SDK's processors and exporters (stdout, an exporter of your own),
//!   or an `SdkLoggerProvider` the application already has: [`SdkBridge`].
//!   [`otlp_http_provider`] and `otlp_grpc_provider` wire the SDK to
//!   `opentelemetry-otlp`'s exporters, for a provider that must export
//!   through the SDK; for OTLP export alone, [`OtlpExporter`] costs about a
//!   fifth of that path (see the README's Performance).
//!
//! # Getting started
//!
//! To an OTLP endpoint:
//!
//! ```no_run
//! use selftrace_bridge::OtlpExporter;
//! use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt};
//!
//! let exporter = OtlpExporter::builder().with_endpoint("http://localhost:4318/v1/logs").build()?;
//! tracing_subscriber::registry().with(exporter.layer()).init();
//!
//! tracing::info!(target: "db", pool = 16_u64, "connected");
//!
//! exporter.shutdown()?; // sends what is left
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Into the SDK:
//!
//! ```no_run
//! use opentelemetry_sdk::Resource;
//! use selftrace_bridge::SdkBridge;
//! use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt};
//!
//! let resource = Resource::builder().with_service_name("my-engine").build();
//! let bridge = SdkBridge::builder(selftrace_bridge::otlp_http_provider("http://localhost:4318/v1/logs", resource)?)
//!     .spawn()?;
//! tracing_subscriber::registry().with(bridge.layer()).init();
//!
//! tracing::info!(target: "db", pool = 16_u64, "connected");
//!
//! bridge.shutdown()?; // emits what is queued, flushes and shuts the provider down
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Compared with `opentelemetry-appender-tracing`
//!
//! For the same events the SDK receives the same records as through
//! `OpenTelemetryTracingBridge`, except, on purpose:
//!
//! * the timestamp is set (the event's time), not only the observed one;
//! * tracing's generated `"event file:line"` names are not event names (an
//!   explicit `name:` is);
//! * the instrumentation scope is the record's scope (the target, or the
//!   node's id), where the appender uses one logger with an empty scope name
//!   (both set the target, which OTLP exporters use as the scope name);
//! * errors (`&dyn Error` fields) keep their field name as the key, where the
//!   appender writes them as `exception.message` (two errors in one event
//!   would share that key).
//!
//! A test compares both, field by field, through `InMemoryLogExporter`.
//!
//! # Feature flags
//!
//! Each feature names a product; the native exporter does not compile the
//! SDK it replaces (`http` alone: no `opentelemetry_sdk`,
//! `opentelemetry-otlp` or `opentelemetry-stdout`).
//!
//! * `http` (default): [`OtlpExporter`] over OTLP/HTTP (reqwest, rustls).
//! * `grpc`: [`OtlpExporter`] over OTLP/gRPC (tonic). Without it,
//!   `Protocol::Grpc` (or `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`) is an error at
//!   build naming the feature: a binary that must let its operator choose
//!   gRPC is built with it.
//! * `sdk` (default): [`SdkBridge`] and `stdout_provider`: the bytes into the
//!   OpenTelemetry SDK.
//! * `sdk-otlp-http`, `sdk-otlp-grpc`: `otlp_http_provider` and
//!   `otlp_http_exporter` (`otlp_grpc_*`): opentelemetry-otlp's exporters
//!   for an SDK provider.
//! * `otlp-http`, `otlp-grpc`: `http` + `sdk-otlp-http`, `grpc` +
//!   `sdk-otlp-grpc` (the names of earlier releases).
//! * `metrics`: the counters as OpenTelemetry observable instruments.

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "export")]
#[cfg_attr(docsrs, doc(cfg(any(feature = "http", feature = "grpc"))))]
pub mod export;
// The counters of what the other features build: nothing without them.
#[cfg(all(feature = "metrics", any(feature = "sdk", feature = "export")))]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod instruments;
#[cfg(feature = "sdk")]
mod providers;
#[cfg(feature = "sdk")]
#[cfg_attr(docsrs, doc(cfg(feature = "sdk")))]
pub mod sdk;

#[cfg(feature = "export")]
#[cfg_attr(docsrs, doc(cfg(any(feature = "http", feature = "grpc"))))]
pub use export::{ExporterMetrics, OtlpExporter, OtlpExporterBuilder};
#[cfg(feature = "sdk")]
#[cfg_attr(docsrs, doc(cfg(feature = "sdk")))]
pub use providers::stdout_provider;
#[cfg(feature = "sdk-otlp-grpc")]
#[cfg_attr(docsrs, doc(cfg(feature = "sdk-otlp-grpc")))]
pub use providers::{otlp_grpc_exporter, otlp_grpc_provider};
#[cfg(feature = "sdk-otlp-http")]
#[cfg_attr(docsrs, doc(cfg(feature = "sdk-otlp-http")))]
pub use providers::{otlp_http_exporter, otlp_http_provider};
#[cfg(feature = "sdk")]
#[cfg_attr(docsrs, doc(cfg(feature = "sdk")))]
pub use sdk::{BridgeError, BridgeMetrics, SdkBridge, SdkBridgeBuilder};
