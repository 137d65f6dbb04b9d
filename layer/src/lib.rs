//! Engine self telemetry: every `tracing` event, encoded once straight into
//! OTLP protobuf bytes, with bounded memory and without ever blocking the
//! caller.
//!
//! # Overview
//!
//! Engines that move telemetry need their own logs too. `selftrace` gives you
//! [`OtlpTracingLayer`], a `tracing_subscriber` layer that turns each event,
//! yours or a third-party library's (and `log` records, through
//! `tracing-log`), into one OTLP `ExportLogsServiceRequest` ([`OtlpBytes`])
//! and hands it to a [`Destination`]: a bounded [`OtlpBytesChannel`] whose
//! consumer sends the bytes on (to an OTLP/HTTP endpoint unchanged, to the
//! OpenTelemetry SDK through `selftrace-bridge`, or into an engine's own
//! pipeline through `selftrace-itr`), the console, or nowhere.
//!
//! ```text
//!  tracing::info!(..) / log::info!(..)
//!          │
//!          ▼
//!  OtlpTracingLayer::on_event ── already inside the layer? ──► raw logger (stderr) + count
//!          │ ── inside a node scope? ──► that node's logger (see Nodes)
//!          │ ── repeated past its budget? ──► counted as suppressed, one summary per window (flood)
//!          │ load the destination once (hot-swappable)
//!          ├─ Channel ─► TracingLogRecord ─► this thread's StatefulOtlpEncoder
//!          │                 ─► flush: OtlpBytes ─► try_send ──full/closed──► raw logger + count
//!          ├─ Buffered(node logs) ─► this thread's buffer of the node logs (flushed by its owner)
//!          ├─ Console ─► one human-readable line on stderr
//!          ├─ OtlpJson ─► one OTLP/JSON request per line on stdout or stderr (json)
//!          ├─ Startup ─► kept encoded until the destination is set (startup)
//!          └─ Noop ────► counted as discarded
//! ```
//!
//! Guarantees on the node logs of an event:
//!
//! * **Bounded**: a request never exceeds the encoder's buffer capacity
//!   ([`DEFAULT_BUFFER_CAPACITY`](crate::encoder::DEFAULT_BUFFER_CAPACITY)), a record never exceeds
//!   [`DEFAULT_MAX_RECORD_BYTES`](crate::encoder::DEFAULT_MAX_RECORD_BYTES); oversize values are cut at a UTF-8
//!   boundary with [`TRUNCATION_MARKER`](crate::encoder::TRUNCATION_MARKER) and counted in the record's
//!   `dropped_attributes_count`. The channel holds at most its capacity.
//! * **Never blocks**: the only hand-off is `try_send`.
//! * **Never recurses**: an event raised while its thread is inside the layer
//!   (a `Debug` implementation that logs), inside a [`PipelineScope`](crate::pipeline::PipelineScope) (the
//!   threads that carry the bytes onward) or inside an OpenTelemetry
//!   telemetry-suppressed context (the SDK's exports) goes to the raw logger.
//! * **Never loses silently**: every event is delivered, counted under one
//!   [`DropReason`], or waiting in a startup buffer;
//!   [`LayerMetrics::received`] `== delivered + dropped + startup_buffered`.
//! * **No allocation per event** once warm: each thread encodes into its own
//!   fixed buffer, and each request is copied once into a hand-off block and
//!   split off it as `Bytes`, or, when it fills half the buffer or more and
//!   a lagging consumer still holds the block, handed over in the buffer
//!   itself (see [`StatefulOtlpEncoder::flush`](crate::encoder::StatefulOtlpEncoder::flush) for when a new block or
//!   buffer is taken).
//!
//! # Getting started
//!
//! ```
//! use selftrace::{Destination, OtlpBytesChannel, OtlpTracingLayer};
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let channel = OtlpBytesChannel::new(selftrace::DEFAULT_CHANNEL_CAPACITY);
//! let layer = OtlpTracingLayer::builder(Destination::Channel(channel.sender()))
//!     .with_service_name("my-engine")
//!     .build();
//! let subscriber = tracing_subscriber::registry().with(layer);
//!
//! // In an application: `subscriber.init()` (tracing_subscriber::util::SubscriberInitExt),
//! // which also captures the `log` crate.
//! tracing::subscriber::with_default(subscriber, || {
//!     tracing::warn!(name: "pool.exhausted", target: "db", size = 16_u64, "no connection left");
//! });
//!
//! let receiver = channel.receiver();
//! let request = receiver.try_recv().expect("one request per event");
//! // `request` is an ExportLogsServiceRequest: POST it to /v1/logs as is.
//! assert!(request.len() > 0);
//! ```
//!
//! Swapping the destination at runtime goes through a [`DestinationHandle`]
//! (see its example). What users of self telemetry ask peers for:
//!
//! * [`flood`]: a repeated event past 10 per 10 s is suppressed before it
//!   is encoded and summarised in one counted record per window;
//! * [`startup`]: events logged before the destination exists wait, encoded
//!   and bounded, and reach it first, in order;
//! * [`levels`]: the level or `EnvFilter` directives change at runtime,
//!   for the layer and for each node;
//! * [`spans`]: records carry the fields of the spans their event is inside
//!   (opt-in, recorded once per span), and
//!   [`with_code_location`](OtlpTracingLayerBuilder::with_code_location)
//!   where they were emitted;
//! * [`json`]: OTLP/JSON lines, one `ExportLogsServiceRequest` per line, for
//!   log agents and the Collector's `otlpjsonfile` receiver
//!   ([`Destination::OtlpJson`]).
//!
//! # Nodes
//!
//! An engine's nodes (receivers, processors, exporters) log through a
//! [`NodeLogs`]: records are batched in per-thread buffers and flushed by a
//! timer owner (the Internal Telemetry Receiver of `selftrace-itr`, or any
//! task), by the producer when its buffer is full, and at shutdown.
//!
//! ```text
//!  otel_info!(effect, "node.event", k = v)      tracing::info!(..) inside a node scope
//!          │ (never the global dispatch)                 │ OtlpTracingLayer sees the current node
//!          ▼                                             ▼
//!  the node's logger: Default ─► this thread's buffer (one ScopeLogs per run of a node)
//!                     Noop    ─► not produced / counted as discarded
//!                     Console ─► one line on stderr
//!                     Raw     ─► the raw logger
//!          buffer ─► flush (timer | overflow | handover | shutdown | thread exit)
//!                 ─► OtlpBytes ─► try_send ──full/closed──► counted per record + raw note
//! ```
//!
//! * [`Node`]: an id (the scope name of its records), a [`NodeLogger`] and
//!   a level.
//! * [`SharedTelemetry`] (`Send + Sync`) and [`LocalTelemetry`] (`!Send`):
//!   a node's handle; both implement [`NodeTelemetry`](crate::node::NodeTelemetry), the trait the
//!   macros ([`otel_trace!`], [`otel_debug!`], [`otel_info!`], [`otel_warn!`],
//!   [`otel_error!`]) log through, which an engine's effect handler can
//!   implement by forwarding.
//! * Node scopes: [`SharedTelemetry::enter`] (a guard),
//!   [`SharedTelemetry::scope`] (a future, in scope on every poll, on any
//!   thread), [`InNode`](crate::node::InNode) with `SharedTelemetry::current()` for spawned
//!   tasks. Inside a scope, third-party events go to the node's logger,
//!   attributed to the node.
//! * [`NodeMetrics`]: `events_received`, `events_dropped` by reason,
//!   `bytes_flushed`, `flush_count`, `overflow_flush_count`,
//!   `timer_flush_count`.
//!
//! # Mapping
//!
//! How a `tracing` event becomes an OTLP `LogRecord` ([`TracingLogRecord`](crate::record::TracingLogRecord)):
//!
//! | OTLP `LogRecord`            | from the `tracing` event |
//! |-----------------------------|--------------------------|
//! | `time_unix_nano`            | the wall clock when the layer sees the event, in nanoseconds: the CPU's time-stamp counter (through `quanta`) added to a per-thread `SystemTime` anchor re-taken every 100 ms, so a read costs about a third of `SystemTime::now`; within about 1 µs of the system clock, never going back within a thread by less than 1 ms, a wall-clock step followed within 100 ms |
//! | `observed_time_unix_nano`   | the same instant (both are set: backends show 1970 when they are not) |
//! | `severity_number`           | TRACE 1, DEBUG 5, INFO 9, WARN 13, ERROR 17 |
//! | `severity_text`             | `"TRACE"`, `"DEBUG"`, `"INFO"`, `"WARN"`, `"ERROR"` |
//! | `event_name`                | an explicit `name:` (the `otel_*!` macros' second argument); tracing's generated `"event file:line"` is not a name and is left out |
//! | `body`                      | the `message` field as a string; left out when empty |
//! | `attributes`                | with [`with_code_location`](OtlpTracingLayerBuilder::with_code_location), first `code.file.path`, `code.line.number`, `code.module.name` (encoded once per callsite); then every other field, in order: `i64`, `f64`, `bool`, `&str`, `&[u8]` as themselves; `u64`, `i128`, `u128` as int when they fit in `i64`, else as their decimal string; `?value` / `%value` formatted straight into the buffer as strings; errors (`&dyn Error`) as their `Display` string; then, with [`with_span_fields`](OtlpTracingLayerBuilder::with_span_fields), the fields of the spans the event is inside, innermost first, a key once (the event's own field wins) |
//! | `dropped_attributes_count`  | values cut or left out to respect the limits, and span fields past their budget |
//! | `trace_id`, `span_id`, `flags` | the active OpenTelemetry span, with the `trace` feature and `with_trace_context(true)` |
//! | scope name (`ScopeLogs`)    | the node's id inside a node scope and for `otel_*!` records; else the event's target (for `log` records, the `log` target; `log.*` fields are left out) |
//! | resource                    | the builder's resource attributes; `service.name` defaults to `unknown_service` |
//!
//! # Feature flags
//!
//! * `trace`: read trace and span ids from the active OpenTelemetry
//!   `Context` (turns on `opentelemetry/trace`).
//! * `metrics`: selftrace's counters as OpenTelemetry observable
//!   instruments ([`instruments`]; turns on `opentelemetry/metrics`).
//! * `traces`: spans encoded as OTLP traces ([`traces`]).
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.89 (edition 2024).

// Plumbing for selftrace-bridge and selftrace-itr (the request merger, the
// protobuf wire format): public for them, outside the semver surface.
#[doc(hidden)]
pub mod batch;
pub mod channel;
mod clock;
pub mod console;
pub mod decode;
mod destination;
pub mod encoder;
mod escape;
pub mod flood;
#[cfg(feature = "metrics")]
pub mod instruments;
pub mod json;
mod layer;
pub mod levels;
mod logger;
mod macros;
mod metrics;
pub mod node;
mod out;
pub mod pipeline;
pub mod raw;
pub mod record;
#[cfg(feature = "traces")]
mod span_view;
pub mod spans;
pub mod startup;
#[cfg(feature = "traces")]
pub mod traces;
pub mod view;
#[doc(hidden)]
pub mod wire;

pub use channel::{DEFAULT_CHANNEL_CAPACITY, OtlpBytesChannel, OtlpBytesReceiver, OtlpBytesSender, TrySendError};
pub use destination::Destination;
pub use encoder::{EncoderLimits, OtlpBytes};
pub use layer::{DestinationHandle, HandleError, OtlpTracingLayer, OtlpTracingLayerBuilder, TRANSPORT_TARGETS};
pub use logger::NodeLogger;
#[doc(hidden)]
pub use macros::__private;
pub use metrics::{DropReason, LayerMetrics, NodeMetrics};
pub use node::{FlushReason, LocalTelemetry, Node, NodeLogs, SharedTelemetry};
