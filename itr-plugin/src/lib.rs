//! The Internal Telemetry Receiver (ITR) plugin for [`selftrace`]: an
//! engine's own logs as data in its own pipeline.
//!
//! # Overview
//!
//! An engine that moves telemetry can process its own logs like any other
//! data: batch them, retry them, export them. This crate gives it a receiver
//! node for that, `internal_telemetry`, that any engine can mount:
//!
//! * [`InternalTelemetry`]: the node logs the engine's nodes log through
//!   (per-thread buffers, see [`selftrace::NodeLogs`]) and a router that fans
//!   its requests out to every receiver, each with its own bounded queue
//!   ([`Overflow`](crate::receiver::Overflow): drop newest or drop oldest, every drop counted).
//! * [`InternalTelemetryReceiver`](crate::receiver::InternalTelemetryReceiver): no inputs, one output. It flushes the
//!   node logs on its timer, merges what it gets into size-bounded batches,
//!   sends them downstream and drains everything on shutdown.
//! * [`ReceiverHost`]: the small node trait a host implements to mount it
//!   (an output, control signals, a timer), for `Send` and `!Send` hosts
//!   alike.
//! * [`ReceiverFactory`](crate::telemetry::ReceiverFactory): registration under [`RECEIVER_NAME`](crate::telemetry::RECEIVER_NAME)
//!   (`internal_telemetry`), configured by a [`ReceiverConfig`].
//! * [`Zone`]: the anti-recursion zone. The receiver and every node
//!   downstream of it never log into the pipeline.
//!
//! ```text
//!  node: otel_info!(telemetry, ..)   ─► per-thread buffer ─┐ flushed by the receiver's timer,
//!  library: tracing::info!(..) in a node scope ──────────┘ by overflow, on shutdown
//!  library: tracing::info!(..) elsewhere (ITR-only mode) ──► OtlpTracingLayer ─┐
//!                                                                              ▼
//!                                       router ─► queue ─► InternalTelemetryReceiver ─► host output
//!                                              └► queue ─► another receiver ─► ...
//!  zone (receiver + downstream): Noop logger, or Console / Raw at ERROR, never the pipeline
//! ```
//!
//! # Mounting the receiver in a host
//!
//! A host adapts its node API to [`ReceiverHost`]: how to send a batch
//! downstream, how to wait for a control message, how to sleep. Here a
//! small tokio host whose nodes talk through channels:
//!
//! ```
//! use std::time::Duration;
//! use selftrace::{Node, OtlpBytes, otel_info};
//! use selftrace_itr::{receiver::{Control, OutputClosed}, InternalTelemetry, ReceiverConfig, ReceiverHost};
//! use tokio::sync::mpsc;
//!
//! /// What the host gives each receiver node.
//! struct TokioNode {
//!     output: mpsc::Sender<OtlpBytes>,
//!     control: mpsc::Receiver<Control>,
//! }
//!
//! impl ReceiverHost for TokioNode {
//!     type Sleep = tokio::time::Sleep;
//!
//!     async fn send(&mut self, batch: OtlpBytes) -> Result<(), OutputClosed> {
//!         self.output.send(batch).await.map_err(|_| OutputClosed)
//!     }
//!     async fn recv_control(&mut self) -> Control {
//!         self.control.recv().await.unwrap_or(Control::shutdown_within(Duration::from_secs(1)))
//!     }
//!     fn sleep(&self, duration: Duration) -> tokio::time::Sleep {
//!         tokio::time::sleep(duration)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let telemetry = InternalTelemetry::builder().with_service_name("my-engine").build();
//! let receiver = telemetry.receiver("itr", ReceiverConfig::default()).unwrap();
//!
//! let (output, mut downstream) = mpsc::channel(16);
//! let (control, control_rx) = mpsc::channel(1);
//! let running = tokio::spawn(receiver.run(TokioNode { output, control: control_rx }));
//!
//! // An ordinary node logs.
//! let node = telemetry.node_logs().shared(Node::new("receiver.otlp.0"));
//! otel_info!(node, "receiver.started", port = 4317_i64);
//!
//! control.send(Control::shutdown_within(Duration::from_secs(1))).await.unwrap();
//! let metrics = running.await.unwrap();
//! assert_eq!(metrics.records_sent, 1);
//! assert!(downstream.recv().await.is_some()); // one OTLP request
//! # }
//! ```
//!
//! A thread-per-core host does the same with `!Send` types (`Rc`,
//! `tokio::task::spawn_local`, its own timers): the receiver's future is
//! `Send` exactly when the host's futures are. It mounts one receiver per
//! core, each with its own [`InternalTelemetry`]: local buffers are flushed
//! on their own thread. A host that owns its timers sends
//! [`Control::TimerTick`](crate::receiver::Control::TimerTick) and returns [`std::future::pending`] from
//! [`sleep`](ReceiverHost::sleep).
//!
//! # Configuration and the three modes
//!
//! [`ServiceConfig`] reads `service.telemetry` from YAML (the shapes of the original configuration design, whose examples are in the
//! repository's `tests/configs/seed/`;
//! unknown keys rejected; [`YamlError`](crate::config::YamlError)s name the key path, line and
//! column). [`LogsConfig::mode`](crate::config::LogsConfig::mode) selects the [`Mode`]: SDK only (default),
//! hybrid (`internal_collection.enabled: true`), ITR only (`enabled: true`
//! and `processors: []`). [`SelfTelemetry`] is the admin side: given the
//! engine's pipeline graph it checks the configuration (a configuration that
//! would loop is a [`SetupError`]), builds the exporters of `processors`
//! (a `batch` processor with an `otlp` exporter is selftrace-bridge's
//! `OtlpExporter`, the bytes sent as they are, configured from its keys and
//! the `OTEL_EXPORTER_OTLP_*` variables; the others go through the SDK
//! bridge, feature `sdk`), the node logs, the receivers and the layer, swaps the layer to the
//! receivers in ITR-only mode and back to the console at shutdown.
//! [`from_yaml`](crate::config::from_yaml) gives an engine the same errors for its own sections.
//!
//! # Routing
//!
//! Component logs (the `otel_*!` macros, and library events inside a node
//! scope) reach the receivers whenever the nodes' telemetry comes from
//! [`InternalTelemetry::node_logs`]. Third-party logs outside node scopes
//! reach them only when the layer's destination is
//! [`InternalTelemetry::destination`] (the ITR-only mode).
//!
//! # Anti-recursion
//!
//! The zone is the receivers and every node downstream of them ([`Zone`]).
//! Its nodes get their receiver's [`PipelineLogger`]: `Noop` by default,
//! `Console` or `Raw` at ERROR only for debugging; asking for the `Default`
//! logger there is a [`ZoneError`](crate::zone::ZoneError) naming the node. Library events in their
//! scopes follow the same logger, and the transport crates
//! ([`TRANSPORT_TARGETS`](selftrace::TRANSPORT_TARGETS)) are discarded there, and on the layer in every
//! mode that exports over the network (`logs.transport`,
//! [`TransportConfig`](crate::config::TransportConfig)). The receiver runs its own
//! loop in its node's scope.
//!
//! Tasks that a zone node's libraries spawn without its scope (a retry
//! timer, a connection pool) are covered by zone threads: run the internal
//! pipeline (the receivers and everything downstream) on a Tokio runtime of
//! its own whose threads are marked with [`selftrace::pipeline::zone_thread_start`]
//! (plain threads: [`selftrace::pipeline::enter_zone_thread`]). Every event on those
//! threads, in a node scope or not, follows the zone's logger and is
//! counted; nothing there can reach the pipeline. Upstream engines run their
//! admin and internal telemetry on threads of their own for the same reason.
//!
//! ```no_run
//! # use selftrace::NodeLogger;
//! let internal = tokio::runtime::Builder::new_multi_thread()
//!     .worker_threads(1)
//!     .thread_name("internal-telemetry")
//!     .on_thread_start(selftrace::pipeline::zone_thread_start(NodeLogger::Noop))
//!     .enable_all()
//!     .build()?;
//! // internal.spawn(receiver.run(host)); internal.spawn(exporter_node); ...
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Metrics
//!
//! [`InternalTelemetry::metrics`] gives a snapshot at any time: the node
//! logs' counters (`events_received`, `events_dropped`, `bytes_flushed`,
//! `flush_count`, `overflow_flush_count`, `timer_flush_count`, ...) and per
//! receiver its queue (offered, accepted, dropped newest/oldest) and itself
//! (records received, sent, dropped by reason, batches, bytes,
//! `timer_flush_count`). See [`ReceiverMetrics`](crate::receiver::ReceiverMetrics) for what adds up.
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.89.

mod admin;
mod bounds;
pub mod config;
#[cfg(feature = "metrics")]
pub mod instruments;
pub mod receiver;
pub mod telemetry;
pub mod zone;

pub use admin::{SelfTelemetry, SelfTelemetryBuilder, SelfTelemetryMetrics, SetupError};
pub use config::{Mode, ServiceConfig, TelemetryConfig};
pub use receiver::{PipelineLogger, ReceiverConfig, ReceiverHost, ReceiverSettings};
pub use telemetry::InternalTelemetry;
pub use zone::Zone;
