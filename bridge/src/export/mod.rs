//! OTLP export of the encoded bytes as they are: batched without decoding a
//! record, sent over OTLP/HTTP or OTLP/gRPC, with OTLP's retry and partial
//! success semantics and every record accounted for up to the endpoint.
//!
//! ```text
//!  exporter.layer() ─┐ per-thread buffers   OtlpExporter (its own thread)
//!  node_logs() ──────┘ (flushed when full, ─► bounded channel ─► Batcher (merge, never decode)
//!                      on the exporter's       full: counted,   ─► one batch in flight:
//!                      timer, at shutdown)     never waits         POST /v1/logs | LogsService/Export
//!  destination() ─────── one request each ─►                       retry (backoff, Retry-After) | drop, counted
//! ```
//!
//! # Batching
//!
//! The exporter's [`layer`](OtlpExporter::layer) and
//! [`node_logs`](OtlpExporter::node_logs) encode into per-thread buffers
//! ([`selftrace::Destination::Buffered`]): one request per full buffer (64
//! KiB by default) instead of one per event. The exporter flushes every
//! thread's buffer every 1 s and at shutdown, straight
//! into its batcher (its own flush is never refused by its own channel); a
//! thread flushes its own into the channel when it is full and when it
//! ends.
//!
//! A batch is sent as soon as it holds 512 records
//! or 1 MiB bytes; every 1 s the
//! buffers are flushed and everything pending is sent (each settable on the
//! builder), so no request waits longer. Requests are merged by [`selftrace::batch::Batcher`]: one
//! `ResourceLogs` per resource, one `ScopeLogs` per run of a scope, the
//! records copied as bytes. While requests keep coming the exporter looks
//! at its channel every millisecond rather than waiting on it (and 2, 4
//! and 8 ms after the last one), so that a producer's send wakes nobody
//! (no system call, no context switch on the thread that logs); an idle
//! exporter waits on the channel.
//!
//! # Bounded, never blocking
//!
//! Memory is at most the per-thread buffers (threads × buffer capacity)
//! plus 32 MiB (see
//! [`with_max_queue_bytes`](OtlpExporterBuilder::with_max_queue_bytes)):
//! the requests in the channel, the batch being built, the batches waiting
//! for their turn or for a retry, the one in flight. The channel also holds
//! at most 2048 requests. The worker keeps
//! taking requests while a batch is sent or waits to be retried; producers
//! never wait: a request refused for lack of room is counted
//! ([`ExporterMetrics::dropped_queue_full`]) by the exporter and by the
//! producer (as `ChannelFull`).
//!
//! # Durable delivery
//!
//! Off by default. With [`with_spool`](OtlpExporterBuilder::with_spool),
//! batches are sent as without one, and every
//! [`with_spool_sync`](OtlpExporterBuilder::with_spool_sync) interval
//! (default 500 ms) what is not acknowledged yet (the batch
//! in flight, the batches waiting) is written to a spool directory and
//! flushed to the disk (`fdatasync`), then sent from there, in order, one at
//! a time. Batches the endpoint acknowledges within the interval never touch
//! the disk (write-behind: a healthy endpoint costs a spool nearly nothing);
//! batches also go to the disk at once when they fill half the memory cap.
//!
//! * **Outages**: a retryable failure is retried until the endpoint is back
//!   (the retry policy's `max_elapsed` does not apply), while new batches go
//!   to the disk: an outage loses nothing until the spool holds
//!   [`with_spool_max_bytes`](OtlpExporterBuilder::with_spool_max_bytes)
//!   (default 1 GiB); past it the newest batches are
//!   refused and counted ([`ExporterMetrics::dropped_spool_full`]), the
//!   oldest kept. Memory stays within the cap above.
//! * **Restarts and crashes**: a new exporter on the same directory sends
//!   what the last one left unacknowledged first
//!   ([`ExporterMetrics::records_recovered`]). A crash, of the process
//!   (`kill -9`) or of the machine, loses what had not reached the disk:
//!   the batches of at most the last sync interval that the endpoint had
//!   not acknowledged, and what was still in the per-thread buffers and the
//!   channel (at most one [max delay](OtlpExporterBuilder::with_max_delay)).
//!   Delivery is at least once: a batch the endpoint acknowledged just
//!   before a crash, before the spool recorded it, is sent again: the one
//!   batch in flight after a process crash, at most one sync interval of
//!   batches after a machine crash;
//!   [`ExporterMetrics::records_redelivered`] counts the records that may
//!   be duplicates.
//! * **Shutdown** sends until the shutdown timeout; what is left stays in
//!   the spool (counted in [`ExporterMetrics::spool_records`], not dropped).
//! * **Faults**: a disk that refuses a write (full, read-only) keeps the
//!   batches in memory, within the cap, and is tried again at the next sync
//!   ([`ExporterMetrics::spool_write_errors`]); a frame torn by a
//!   crash or damaged on the disk is cut off or skipped and counted
//!   ([`ExporterMetrics::spool_corrupt_frames`]), the rest delivered; a
//!   directory that cannot be created or written, that another exporter
//!   holds (a lock), or that other users can write is an error at build
//!   ([`ExportError::Spool`], [`SpoolError`]). The directory is created
//!   `0700` and its files `0600`: they hold other people's logs.
//!
//! Accounting across restarts: `records_recovered + records_received ==
//! records_acknowledged + records_rejected + dropped (by reason) +
//! records_in_flight`, where at the end `records_in_flight` is what the
//! spool keeps for the next exporter. The spool's format, its crash
//! semantics and why it is not a library are documented in its source
//! (`bridge/src/export/spool.rs`).
//!
//! # OTLP semantics
//!
//! * Success: the records count as acknowledged, less those the endpoint
//!   rejected in `partial_success` ([`ExporterMetrics::records_rejected`],
//!   noted on the raw logger with the endpoint's message). A success whose
//!   body does not parse still counts as acknowledged
//!   ([`ExporterMetrics::malformed_responses`]).
//! * Retryable failures (HTTP 429, 502, 503, 504; gRPC `CANCELLED`,
//!   `DEADLINE_EXCEEDED`, `RESOURCE_EXHAUSTED`, `ABORTED`, `OUT_OF_RANGE`,
//!   `UNAVAILABLE`, `DATA_LOSS`; an endpoint that cannot be reached or does
//!   not answer within the timeout): retried with exponential backoff and
//!   jitter, honouring `Retry-After`, for at most
//!   [`RetryPolicy::max_elapsed`]; then dropped and counted
//!   ([`ExporterMetrics::dropped_retries_exhausted`]). With a spool, until
//!   the endpoint is back.
//! * Other failures (HTTP 400, 413, ...; gRPC `INVALID_ARGUMENT`, ...):
//!   dropped and counted ([`ExporterMetrics::dropped_rejected`]).
//!
//! Every record is accounted for: the layer counts an event delivered when a
//! buffer has it; the buffers ([`OtlpExporter::buffer_metrics`]) count each
//! record delivered to the channel or dropped by reason; and
//! `records_received + dropped_queue_full == records_acknowledged +
//! records_rejected + dropped (by reason) + records in the exporter`. After
//! [`OtlpExporter::shutdown`] nothing is left in the exporter
//! ([`ExporterMetrics::records_in_flight`]) but what a spool keeps, and
//! events logged later are counted as `ShutDown` by the buffers.
//!
//! # Configuration
//!
//! The builder's settings win; what it leaves unset comes from the standard
//! variables of the OTLP exporter specification, logs-specific first:
//!
//! | setting | builder | environment | default |
//! |---|---|---|---|
//! | endpoint | [`with_endpoint`](OtlpExporterBuilder::with_endpoint) | `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`, `OTEL_EXPORTER_OTLP_ENDPOINT` (a base: OTLP/HTTP always appends `/v1/logs`) | `http://localhost:4318/v1/logs`, gRPC `http://localhost:4317` |
//! | protocol | [`with_protocol`](OtlpExporterBuilder::with_protocol) | `OTEL_EXPORTER_OTLP_LOGS_PROTOCOL`, `OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf`, `http/json`, `grpc`) | `http/protobuf` |
//! | headers | [`with_header`](OtlpExporterBuilder::with_header) | `OTEL_EXPORTER_OTLP_LOGS_HEADERS`, `OTEL_EXPORTER_OTLP_HEADERS` (`k=v,k2=v2`, percent-encoded) | none |
//! | compression | [`with_compression`](OtlpExporterBuilder::with_compression) | `OTEL_EXPORTER_OTLP_LOGS_COMPRESSION`, `OTEL_EXPORTER_OTLP_COMPRESSION` (`gzip`, `none`) | none |
//! | timeout | [`with_timeout`](OtlpExporterBuilder::with_timeout) | `OTEL_EXPORTER_OTLP_LOGS_TIMEOUT`, `OTEL_EXPORTER_OTLP_TIMEOUT` (ms) | 10 s |
//! | CA file | [`with_tls`](OtlpExporterBuilder::with_tls) ([`TlsConfig::with_ca_file`]) | `OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE`, `OTEL_EXPORTER_OTLP_CERTIFICATE` | the platform's roots |
//! | client certificate | [`TlsConfig::with_cert_file`] | `OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE`, `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE` | none |
//! | client key | [`TlsConfig::with_key_file`] | `OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY`, `OTEL_EXPORTER_OTLP_CLIENT_KEY` | none |
//! | insecure (gRPC, no scheme) | [`TlsConfig::with_insecure`] | `OTEL_EXPORTER_OTLP_LOGS_INSECURE`, `OTEL_EXPORTER_OTLP_INSECURE` | `false` |
//!
//! One rule for OTLP/HTTP endpoints: a URL with a path is used as it is;
//! one without a path (`http://collector:4318` or `…:4318/`) gets
//! `/v1/logs`, whether it comes from the builder, the YAML or
//! `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`; `OTEL_EXPORTER_OTLP_ENDPOINT` is a
//! base URL and always gets `/v1/logs`. A `404` names the URL it was posted
//! to. gRPC endpoints are used as they are.
//!
//! A value that cannot be used is an error at build naming the setting or
//! the variable ([`ConfigError`]).
//!
//! # TLS
//!
//! `https` endpoints use rustls (aws-lc-rs), for OTLP/HTTP through reqwest
//! and for OTLP/gRPC through the exporter's own connector: the platform's
//! roots by default, or what [`TlsConfig`] (or the
//! `OTEL_EXPORTER_OTLP_[LOGS_]CERTIFICATE`, `..._CLIENT_CERTIFICATE`,
//! `..._CLIENT_KEY`, `..._INSECURE` variables) says: a private CA, a client
//! certificate for mutual TLS, files read again when they are rotated. A
//! handshake that fails is a connection error (retried, counted in
//! [`ExporterMetrics::tls_failures`], noted once per kind with what to
//! check).
//!
//! # No feedback loop
//!
//! The exporter runs on a thread of its own with its own single-threaded
//! Tokio runtime, so the client's connection tasks and timers run there too;
//! the thread and its runtime's blocking threads are zone threads
//! ([`selftrace::pipeline::enter_zone_thread`], `Noop`): whatever the HTTP or gRPC
//! stack logs there is discarded, counted, never exported. Its
//! [`layer`](OtlpExporter::layer) also keeps the transport crates' events of
//! other threads out ([`selftrace::TRANSPORT_TARGETS`]).

mod config;
mod spool;
mod tls;
mod transport;
mod worker;

use std::{
    collections::VecDeque,
    fmt,
    future::Future,
    io,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

pub use config::{Compression, Protocol};
use selftrace::{
    Destination, NodeLogger, NodeLogs, NodeMetrics, OtlpBytes, OtlpBytesChannel, OtlpBytesSender, OtlpTracingLayer,
    OtlpTracingLayerBuilder, TrySendError,
    batch::Batcher,
    channel::OtlpSink,
    encoder::EncoderSettings,
    pipeline::{enter_zone_thread, zone_thread_start},
};
pub use spool::SpoolError;
pub use tls::{TlsConfig, TlsVersion};
use tokio::sync::watch;

use self::{
    config::Settings,
    spool::Spool,
    transport::Transport,
    worker::{QueueBytes, Worker},
};

/// Default most records in one batch (the SDK's `BatchLogProcessor`'s).
pub(crate) const DEFAULT_MAX_BATCH_RECORDS: u64 = 512;
/// Default most bytes in one batch (1 MiB).
pub(crate) const DEFAULT_MAX_BATCH_BYTES: usize = 1 << 20;
/// Default longest a request waits for its batch to fill.
pub(crate) const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(1);
/// Default capacity of the exporter's channel, in requests.
pub(crate) const DEFAULT_EXPORT_CHANNEL_CAPACITY: usize = 2048;
/// Default most bytes the exporter holds in memory (32 MiB): requests in
/// its channel, the batch being built, batches waiting, the one in flight.
pub(crate) const DEFAULT_MAX_QUEUE_BYTES: u64 = 32 << 20;
/// Default most bytes a spool holds on disk (1 GiB).
pub(crate) const DEFAULT_SPOOL_MAX_BYTES: u64 = 1 << 30;
/// Default interval between syncs of a spool to the disk (500 ms, Vector's
/// disk buffer's): what a crash can lose.
pub(crate) const DEFAULT_SPOOL_SYNC: Duration = Duration::from_millis(500);
/// Default time [`OtlpExporter::shutdown`] gives what is left to be sent.
pub(crate) const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

const LABEL: &str = "otlp_export";

/// The shortest batch delay and first retry delay (shorter ones are raised
/// to it).
const MIN_DELAY: Duration = Duration::from_millis(1);

// === impl RetryPolicy ===

/// How retryable failures are retried: exponential backoff from `initial`
/// to `max_interval`, each delay drawn in its upper half (jitter), for at
/// most `max_elapsed` from the first attempt. A `Retry-After` from the
/// endpoint replaces the delay it applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first delay.
    pub initial: Duration,
    /// The longest delay.
    pub max_interval: Duration,
    /// The longest time a batch is retried before it is dropped; zero: no
    /// retry.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    /// 500 ms, doubling to 5 s, for 30 s at most.
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max_interval: Duration::from_secs(5),
            max_elapsed: Duration::from_secs(30),
        }
    }
}

// === impl ExportError ===

/// Why an exporter could not start or did not stop cleanly.
#[derive(Debug)]
#[non_exhaustive]
pub enum ExportError {
    /// A setting or environment variable cannot be used.
    Config(ConfigError),
    /// The exporter's thread or runtime could not be started.
    Start(io::Error),
    /// The exporter's thread panicked; what it held was not sent.
    Panicked,
    /// The spool directory cannot be used.
    Spool(SpoolError),
}

impl ExportError {
    /// Whether this is a configuration error.
    pub fn is_config(&self) -> bool {
        matches!(self, Self::Config(_))
    }
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The cause is `source()`: said once, by whoever prints the chain.
            Self::Config(_) => f.write_str("invalid OTLP exporter configuration"),
            Self::Start(_) => f.write_str("cannot start the OTLP exporter"),
            Self::Panicked => f.write_str("the OTLP exporter's thread panicked"),
            Self::Spool(_) => f.write_str("cannot open the OTLP exporter's spool"),
        }
    }
}

impl std::error::Error for ExportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config(e) => Some(e),
            Self::Start(e) => Some(e),
            Self::Spool(e) => Some(e),
            Self::Panicked => None,
        }
    }
}

impl From<SpoolError> for ExportError {
    fn from(e: SpoolError) -> Self {
        Self::Spool(e)
    }
}

impl From<ConfigError> for ExportError {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

// === ConfigError ===

/// A setting that cannot be used: which one (a builder setting, a YAML key
/// or an environment variable) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The builder setting (`endpoint`, `headers`, ...) or environment
    /// variable it came from.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// `key` cannot be used: `message`.
    pub(crate) fn new(key: &str, message: impl Into<String>) -> Self {
        Self { key: key.to_owned(), message: message.into() }
    }
}

// === impl ExporterMetrics ===

/// What an exporter did so far. Records are log records; requests are what
/// producers sent (one per event, or one per node flush); batches are what
/// went to the endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExporterMetrics {
    /// Requests taken from the channel.
    pub requests_received: u64,
    /// Records in them.
    pub records_received: u64,
    /// Batches that reached the endpoint: an attempt got an answer
    /// (success, refusal or a retryable status; not an endpoint that could
    /// not be reached or did not answer in time; for gRPC, `UNAVAILABLE` and
    /// `DEADLINE_EXCEEDED` count as not reached). Each batch once; retries
    /// are counted apart.
    pub batches_sent: u64,
    /// Records in those batches.
    pub records_sent: u64,
    /// Bytes of those batches, before compression.
    pub bytes_sent: u64,
    /// Attempts that were retries.
    pub retries: u64,
    /// Records the endpoint answered success for (less partial rejections).
    pub records_acknowledged: u64,
    /// Records the endpoint rejected in a `partial_success`.
    pub records_rejected: u64,
    /// Records refused at the channel: full, or the exporter's memory at
    /// [`max_queue_bytes`](OtlpExporterBuilder::with_max_queue_bytes).
    pub dropped_queue_full: u64,
    /// Records refused because the spool was at its
    /// [`max_bytes`](OtlpExporterBuilder::with_spool_max_bytes) (the
    /// newest are refused, the oldest kept).
    pub dropped_spool_full: u64,
    /// Records of batches the endpoint refused (a non-retryable failure).
    pub dropped_rejected: u64,
    /// Records of batches still failing when the retry time ran out.
    pub dropped_retries_exhausted: u64,
    /// Records the shutdown deadline left unsent.
    pub dropped_shutdown: u64,
    /// Requests that were not an `ExportLogsServiceRequest` (their records
    /// cannot be counted); never sent.
    pub malformed_requests: u64,
    /// Successful answers whose body was not an `ExportLogsServiceResponse`.
    pub malformed_responses: u64,
    /// Records taken and not yet acknowledged or dropped (with a spool:
    /// those recovered at start too, and at the end what the spool keeps
    /// for the next exporter).
    pub records_in_flight: u64,
    /// Records written to the spool.
    pub records_spooled: u64,
    /// Records a previous exporter left unacknowledged in the spool, found
    /// at start (they are sent first).
    pub records_recovered: u64,
    /// Of those, records that had been sent before (the endpoint may have
    /// them already): the duplicates at-least-once delivery may make.
    pub records_redelivered: u64,
    /// Spool frames cut off (torn by a crash) or skipped (checksum failed);
    /// their records cannot be counted.
    pub spool_corrupt_frames: u64,
    /// Writes to the spool that failed (disk full, read-only): the batch
    /// was kept in memory, within the memory cap.
    pub spool_write_errors: u64,
    /// Reads from the spool that failed.
    pub spool_read_errors: u64,
    /// Bytes of the spool's segments now.
    pub spool_bytes: u64,
    /// Records in the spool not yet acknowledged, now.
    pub spool_records: u64,
    /// Bytes the exporter holds in memory now (at most
    /// [`max_queue_bytes`](OtlpExporterBuilder::with_max_queue_bytes)).
    pub queue_bytes: u64,
    /// TLS handshakes that failed (an unknown CA, an expired certificate, a
    /// wrong host, a client certificate refused or missing); each is a
    /// connection error, retried. Each kind is noted once on the raw logger.
    pub tls_failures: u64,
    /// Certificate files read again after they changed.
    pub tls_reloads: u64,
    /// Changes of the certificate files that did not load (the last good
    /// ones stayed in use).
    pub tls_reload_errors: u64,
}

impl ExporterMetrics {
    /// Records dropped, every reason together.
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full
            + self.dropped_spool_full
            + self.dropped_rejected
            + self.dropped_retries_exhausted
            + self.dropped_shutdown
    }
}

#[derive(Debug, Default)]
struct Counters {
    requests_received: AtomicU64,
    records_received: AtomicU64,
    batches_sent: AtomicU64,
    records_sent: AtomicU64,
    bytes_sent: AtomicU64,
    retries: AtomicU64,
    records_acknowledged: AtomicU64,
    records_rejected: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_rejected: AtomicU64,
    dropped_retries_exhausted: AtomicU64,
    dropped_shutdown: AtomicU64,
    malformed_requests: AtomicU64,
    malformed_responses: AtomicU64,
    records_in_flight: AtomicU64,
    dropped_spool_full: AtomicU64,
    records_spooled: AtomicU64,
    records_recovered: AtomicU64,
    records_redelivered: AtomicU64,
    spool_corrupt_frames: AtomicU64,
    spool_write_errors: AtomicU64,
    spool_read_errors: AtomicU64,
    spool_bytes: AtomicU64,
    spool_records: AtomicU64,
    queue_bytes: AtomicU64,
    tls_failures: AtomicU64,
    tls_reloads: AtomicU64,
    tls_reload_errors: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    fn snapshot(&self) -> ExporterMetrics {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ExporterMetrics {
            requests_received: get(&self.requests_received),
            records_received: get(&self.records_received),
            batches_sent: get(&self.batches_sent),
            records_sent: get(&self.records_sent),
            bytes_sent: get(&self.bytes_sent),
            retries: get(&self.retries),
            records_acknowledged: get(&self.records_acknowledged),
            records_rejected: get(&self.records_rejected),
            dropped_queue_full: get(&self.dropped_queue_full),
            dropped_rejected: get(&self.dropped_rejected),
            dropped_retries_exhausted: get(&self.dropped_retries_exhausted),
            dropped_shutdown: get(&self.dropped_shutdown),
            malformed_requests: get(&self.malformed_requests),
            malformed_responses: get(&self.malformed_responses),
            records_in_flight: get(&self.records_in_flight),
            dropped_spool_full: get(&self.dropped_spool_full),
            records_spooled: get(&self.records_spooled),
            records_recovered: get(&self.records_recovered),
            records_redelivered: get(&self.records_redelivered),
            spool_corrupt_frames: get(&self.spool_corrupt_frames),
            spool_write_errors: get(&self.spool_write_errors),
            spool_read_errors: get(&self.spool_read_errors),
            spool_bytes: get(&self.spool_bytes),
            spool_records: get(&self.spool_records),
            queue_bytes: get(&self.queue_bytes),
            tls_failures: get(&self.tls_failures),
            tls_reloads: get(&self.tls_reloads),
            tls_reload_errors: get(&self.tls_reload_errors),
        }
    }

    /// Records leave the exporter: `counter` says how.
    fn settle(&self, counter: &AtomicU64, records: u64) {
        add(counter, records);
        self.records_in_flight.fetch_sub(records, Ordering::Relaxed);
    }
}

// === impl OtlpExporterBuilder ===

/// Builds an [`OtlpExporter`]; see there.
///
/// Every setting is optional: without one, the `OTEL_EXPORTER_OTLP_*`
/// variables, then the defaults, apply (see the [module docs](self)).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use selftrace_bridge::{OtlpExporter, export::{Compression, Protocol}};
///
/// let spool = std::env::temp_dir().join(format!("selftrace-doc-{}", std::process::id()));
/// let exporter = OtlpExporter::builder()
///     .with_endpoint("http://collector.internal:4318") // /v1/logs is added
///     .with_protocol(Protocol::HttpProtobuf)
///     .with_header("api-key", "secret")
///     .with_compression(Compression::Gzip)
///     .with_timeout(Duration::from_secs(5))
///     .with_max_queue_bytes(16 << 20) // memory held while the endpoint is slow or down
///     .with_spool(&spool) // and what outlives an outage or a crash
///     .with_shutdown_timeout(Duration::from_millis(200))
///     .build()?;
/// let metrics = exporter.shutdown()?;
/// assert_eq!(metrics.dropped(), 0);
/// # std::fs::remove_dir_all(&spool)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct OtlpExporterBuilder {
    settings: Settings,
    encoding: EncoderSettings,
    read_env: bool,
    max_batch_records: u64,
    max_batch_bytes: usize,
    max_delay: Duration,
    capacity: usize,
    max_queue_bytes: u64,
    retry: RetryPolicy,
    shutdown_timeout: Duration,
    spool: Option<SpoolSettings>,
}

/// Where and how an exporter spools.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SpoolSettings {
    dir: PathBuf,
    max_bytes: u64,
    sync: Duration,
}

impl OtlpExporterBuilder {
    selftrace::__encoder_settings_setters!(encoding);

    /// The URL to send to: for OTLP/HTTP, `http://collector:4318` (a URL
    /// without a path gets `/v1/logs`) or a whole URL with its path, used as
    /// it is; for gRPC, the server's.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.settings.endpoint = Some(endpoint.into());
        self
    }

    /// OTLP/HTTP (protobuf) or OTLP/gRPC.
    pub fn with_protocol(mut self, protocol: Protocol) -> Self {
        self.settings.protocol = Some(protocol);
        self
    }

    /// Adds a header (gRPC: metadata) to every request. Headers given here
    /// replace those of the environment.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.headers.get_or_insert_with(Vec::new).push((name.into(), value.into()));
        self
    }

    /// Compresses request bodies.
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.settings.compression = Some(compression);
        self
    }

    /// The longest one request may take (default 10 s); one
    /// that takes longer is retried.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = Some(timeout);
        self
    }

    /// TLS: a private CA, a client certificate, their reloading (see
    /// [`TlsConfig`]). What it leaves unset comes from the
    /// `OTEL_EXPORTER_OTLP_*CERTIFICATE`, `*CLIENT_KEY` and `*INSECURE`
    /// variables.
    pub fn with_tls(mut self, tls: TlsConfig) -> Self {
        self.settings.tls = tls;
        self
    }

    /// Whether to read the `OTEL_EXPORTER_OTLP_*` variables for what the
    /// builder leaves unset (default: yes).
    pub fn with_env(mut self, read: bool) -> Self {
        self.read_env = read;
        self
    }

    /// Most records in one batch (default 512).
    pub fn with_max_batch_records(mut self, records: u64) -> Self {
        self.max_batch_records = records;
        self
    }

    /// Most bytes in one batch (default 1 MiB); a
    /// single larger request goes alone.
    pub fn with_max_batch_bytes(mut self, bytes: usize) -> Self {
        self.max_batch_bytes = bytes;
        self
    }

    /// Longest a request waits for its batch to fill, and how often the
    /// per-thread buffers are flushed (default 1 s; at
    /// least 1 ms).
    pub fn with_max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// The channel holds at most `capacity` requests (default
    /// 2048).
    pub fn with_channel_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// The most bytes the exporter holds in memory (default
    /// 32 MiB): requests in its channel, the batch
    /// being built, batches waiting (for their turn, for a retry), the one
    /// in flight, and with a spool the frames kept to save reading them
    /// back. A request that would pass it is refused and counted
    /// ([`ExporterMetrics::dropped_queue_full`]); the producer never waits.
    pub fn with_max_queue_bytes(mut self, bytes: u64) -> Self {
        self.max_queue_bytes = bytes;
        self
    }

    /// Spools batches to `dir` (see [Durable delivery](self#durable-delivery)):
    /// they survive an outage of the endpoint up to the spool's
    /// [size](Self::with_spool_max_bytes), and a crash of the process or of
    /// the machine, but for the last [sync interval](Self::with_spool_sync).
    /// The directory is created `0700` if missing.
    pub fn with_spool(mut self, dir: impl Into<PathBuf>) -> Self {
        let spool = self.spool.get_or_insert_with(|| SpoolSettings {
            dir: PathBuf::new(),
            max_bytes: DEFAULT_SPOOL_MAX_BYTES,
            sync: DEFAULT_SPOOL_SYNC,
        });
        spool.dir = dir.into();
        self
    }

    /// The most bytes the spool holds on disk (default
    /// 1 GiB); past it, new batches are refused and
    /// counted ([`ExporterMetrics::dropped_spool_full`]). Without
    /// [`with_spool`](Self::with_spool), it does nothing.
    pub fn with_spool_max_bytes(mut self, bytes: u64) -> Self {
        if let Some(spool) = &mut self.spool {
            spool.max_bytes = bytes;
        }
        self
    }

    /// How often what is not acknowledged is written to the spool and
    /// flushed to the disk (default 500 ms): what a crash
    /// can lose. Without
    /// [`with_spool`](Self::with_spool), it does nothing.
    pub fn with_spool_sync(mut self, interval: Duration) -> Self {
        if let Some(spool) = &mut self.spool {
            spool.sync = interval;
        }
        self
    }

    /// How retryable failures are retried (default
    /// [`RetryPolicy::default`]; a first delay under 1 ms counts as 1 ms).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// How long [`OtlpExporter::shutdown`] waits for what is left (default
    /// 5 s).
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Checks the configuration and starts the exporter on a thread of its
    /// own (`selftrace-otlp-export`). Nothing is sent until there is
    /// something to send: an endpoint that is down at start is not an error.
    ///
    /// # Errors
    ///
    /// [`ExportError::Config`] naming the setting or variable that cannot be
    /// used; [`ExportError::Start`] if the thread or its runtime cannot
    /// start.
    pub fn build(self) -> Result<OtlpExporter, ExportError> {
        #[cfg(feature = "traces")]
        let sample_ratio = match (self.settings.signal, self.read_env) {
            (config::Signal::Traces, true) => config::trace_sample_ratio(|name| std::env::var(name).ok())?,
            _ => 1.0,
        };
        let resolved = if self.read_env {
            self.settings.resolve(|name| std::env::var(name).ok())?
        } else {
            self.settings.resolve(|_| None)?
        };
        let counters = Arc::new(Counters::default());
        // The spool's frames kept in memory for its reader: a quarter of the
        // memory cap, so batches waiting for the disk keep most of it.
        let cache = usize::try_from(self.max_queue_bytes / 4).unwrap_or(usize::MAX);
        let spool = match &self.spool {
            Some(settings) => {
                let (spool, recovered) = Spool::open(&settings.dir, settings.max_bytes, cache)?;
                add(&counters.records_recovered, recovered.records);
                add(&counters.records_redelivered, recovered.redelivered);
                add(&counters.records_in_flight, recovered.records);
                worker::publish_spool(&counters, &spool);
                Some(spool)
            }
            None => None,
        };
        let queue = Arc::new(QueueBytes::new(self.max_queue_bytes));
        let (tx, rx) = OtlpBytesChannel::new(self.capacity).into_parts();
        let sink = Arc::new(ExportSink { tx, counters: Arc::clone(&counters), queue: Arc::clone(&queue) });
        let sender = OtlpBytesSender::from_sink(sink);
        // The per-thread buffers of the layer's events and the nodes'
        // records, flushed by the worker.
        let mut node_logs =
            NodeLogs::builder(Destination::Channel(sender.clone())).with_encoder_settings(self.encoding.clone());
        // Its buffers hold its signal only (the other is refused, counted).
        if self.settings.signal == config::Signal::Traces {
            node_logs = node_logs.for_spans();
        }
        let node_logs = node_logs.build();
        let (stop_tx, stop_rx) = watch::channel(None);
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Result<(), ExportError>>(1);
        let (done_tx, done_rx) = flume::bounded::<()>(1);
        let endpoint = resolved.endpoint.to_string();
        let protocol = resolved.protocol;
        let transport_counters = Arc::clone(&counters);
        let worker = Worker {
            flight: None,
            node_logs: node_logs.clone(),
            rx,
            counters: Arc::clone(&counters),
            queue,
            batcher: Batcher::new(self.max_batch_bytes, self.max_batch_records),
            // A zero delay would spin the worker: a millisecond at least.
            max_delay: self.max_delay.max(MIN_DELAY),
            retry: RetryPolicy { initial: self.retry.initial.max(MIN_DELAY), ..self.retry },
            shutdown_timeout: self.shutdown_timeout,
            stop: stop_rx,
            rng: worker::seed(),
            sync_every: self.spool.as_ref().map_or(DEFAULT_SPOOL_SYNC, |s| s.sync.max(MIN_DELAY)),
            spool,
            memory: VecDeque::new(),
            memory_bytes: 0,
            batcher_bytes: 0,
            cache_held: 0,
            _done: done_tx,
        };
        let thread = std::thread::Builder::new()
            .name("selftrace-otlp-export".into())
            .spawn(move || {
                // A zone thread, and so is every thread of its runtime (hyper
                // resolves names on the blocking pool): whatever the HTTP or
                // gRPC stack logs there is discarded, counted, never exported.
                let _zone = enter_zone_thread(NodeLogger::Noop);
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .on_thread_start(zone_thread_start(NodeLogger::Noop))
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(ExportError::Start(e)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match Transport::new(&resolved, &transport_counters) {
                        Ok(transport) => {
                            let _ = ready_tx.send(Ok(()));
                            worker.run(transport).await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.into()));
                        }
                    }
                });
            })
            .map_err(ExportError::Start)?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(ExportError::Panicked);
            }
        }
        Ok(OtlpExporter {
            sender,
            node_logs,
            encoding: self.encoding,
            counters,
            stop: stop_tx,
            shutdown_timeout: self.shutdown_timeout,
            done: done_rx,
            thread: Mutex::new(Some(thread)),
            endpoint,
            protocol,
            #[cfg(feature = "traces")]
            sample_ratio,
        })
    }
}

// === impl OtlpExporter ===

/// Sends the bytes selftrace encoded to an OTLP endpoint as they are: the
/// way logs leave the process without a second encoding (see the [module
/// docs](self) for batching, retries, accounting and configuration).
///
/// Offered like [`SdkBridge`](crate::SdkBridge): give
/// [`destination`](Self::destination) (or [`layer`](Self::layer),
/// [`node_logs`](Self::node_logs)) to what produces the bytes, read
/// [`metrics`](Self::metrics), call [`shutdown`](Self::shutdown) at the end.
///
/// # Examples
///
/// ```no_run
/// use selftrace_bridge::OtlpExporter;
/// use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt};
///
/// let exporter = OtlpExporter::builder().with_endpoint("http://localhost:4318/v1/logs").build()?;
/// tracing_subscriber::registry().with(exporter.layer()).init();
///
/// tracing::info!(target: "db", pool = 16_u64, "connected");
///
/// let metrics = exporter.shutdown()?; // sends what is left, within the shutdown timeout
/// assert_eq!(metrics.records_acknowledged, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct OtlpExporter {
    sender: OtlpBytesSender,
    /// The per-thread buffers its layer and nodes log into.
    node_logs: NodeLogs,
    /// The resource and limits of its layer and node logs.
    encoding: EncoderSettings,
    counters: Arc<Counters>,
    stop: watch::Sender<Option<Instant>>,
    shutdown_timeout: Duration,
    /// Disconnected when the worker ends, normally or by a panic.
    done: flume::Receiver<()>,
    thread: Mutex<Option<JoinHandle<()>>>,
    endpoint: String,
    protocol: Protocol,
    /// Its span layer's sample ratio (`OTEL_TRACES_SAMPLER`, `..._ARG`).
    #[cfg(feature = "traces")]
    sample_ratio: f64,
}

impl fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpExporter")
            .field("endpoint", &self.endpoint)
            .field("protocol", &self.protocol)
            .field("metrics", &self.metrics())
            .finish_non_exhaustive()
    }
}

impl OtlpExporter {
    /// A builder with the defaults (and the environment).
    pub fn builder() -> OtlpExporterBuilder {
        Self::signal_builder(config::Signal::Logs)
    }

    /// A builder of an exporter of spans (`ExportTraceServiceRequest`s, as
    /// [`selftrace::traces`] encodes them): to `/v1/traces` over OTLP/HTTP,
    /// `TraceService/Export` over gRPC, with the
    /// `OTEL_EXPORTER_OTLP_TRACES_*` variables (then the generic ones)
    /// where the logs exporter reads `..._LOGS_...`; the same batching,
    /// retries, TLS, spool and accounting (its records are spans). Feed it
    /// with [`span_layer`](Self::span_layer); its logs methods
    /// ([`layer`](Self::layer), [`node_logs`](Self::node_logs)) are for a
    /// logs exporter.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use selftrace_bridge::OtlpExporter;
    /// use tracing_subscriber::layer::SubscriberExt;
    ///
    /// let traces = OtlpExporter::traces_builder()
    ///     .with_endpoint("http://127.0.0.1:9") // POSTs to /v1/traces there (nothing listens in this example)
    ///     .with_shutdown_timeout(Duration::from_millis(100))
    ///     .build()?;
    /// let subscriber = tracing_subscriber::registry().with(traces.span_layer());
    /// tracing::subscriber::with_default(subscriber, || tracing::info_span!("request").in_scope(|| {}));
    /// let metrics = traces.shutdown()?;
    /// // One span taken, and (no endpoint here) dropped and counted.
    /// assert_eq!((metrics.records_received, metrics.dropped()), (1, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "traces")]
    pub fn traces_builder() -> OtlpExporterBuilder {
        Self::signal_builder(config::Signal::Traces)
    }

    /// A layer that turns each closed `tracing` span into an OTLP span
    /// (see [`OtlpSpanLayer`](selftrace::traces::OtlpSpanLayer)) batched in
    /// the exporter's per-thread buffers, as [`layer`](Self::layer) batches
    /// events, with the exporter's resource and limits.
    ///
    /// For an exporter made by [`traces_builder`](Self::traces_builder): on
    /// a logs exporter the layer's spans are refused (counted in
    /// [`SpanMetrics::dropped_channel_closed`](selftrace::traces::SpanMetrics::dropped_channel_closed)),
    /// and a note says so on the raw logger, never mixed with its records.
    #[cfg(feature = "traces")]
    pub fn span_layer(&self) -> selftrace::traces::OtlpSpanLayer {
        self.span_layer_builder().build()
    }

    /// The builder of [`span_layer`](Self::span_layer), to change more of it
    /// (the sample ratio, span events). Its sample ratio comes from
    /// `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` when the exporter
    /// reads the environment (`always_on`, `always_off`, `traceidratio` and
    /// their `parentbased_` forms, all applied parent-based; another value
    /// is an error at build), else 1.
    ///
    /// ```
    /// # use selftrace_bridge::OtlpExporter;
    /// let traces = OtlpExporter::traces_builder().with_endpoint("http://127.0.0.1:9").build()?;
    /// let layer = traces.span_layer_builder().with_sample_ratio(0.1).with_span_events(true).build();
    /// # drop(layer);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "traces")]
    pub fn span_layer_builder(&self) -> selftrace::traces::OtlpSpanLayerBuilder {
        selftrace::traces::OtlpSpanLayer::buffered(self.node_logs.clone()).with_sample_ratio(self.sample_ratio)
    }

    fn signal_builder(signal: config::Signal) -> OtlpExporterBuilder {
        OtlpExporterBuilder {
            settings: Settings { signal, ..Settings::default() },
            encoding: EncoderSettings::default(),
            read_env: true,
            max_batch_records: DEFAULT_MAX_BATCH_RECORDS,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            max_delay: DEFAULT_MAX_DELAY,
            capacity: DEFAULT_EXPORT_CHANNEL_CAPACITY,
            max_queue_bytes: DEFAULT_MAX_QUEUE_BYTES,
            retry: RetryPolicy::default(),
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            spool: None,
        }
    }

    /// The exporter's channel as a destination: for producers that bring
    /// their own requests (a `NodeLogs` or a layer built elsewhere, an
    /// Internal Telemetry Receiver's batches), one request per `try_send`.
    /// Prefer [`layer`](Self::layer) and [`node_logs`](Self::node_logs),
    /// which batch per thread.
    pub fn destination(&self) -> Destination {
        Destination::Channel(self.sender.clone())
    }

    /// The sending end of the exporter's channel, for an engine node that
    /// hands it requests or batches it already has (an Internal Telemetry
    /// Receiver's output, say). Never waits; refusals are counted.
    pub fn sender(&self) -> OtlpBytesSender {
        self.sender.clone()
    }

    /// A layer whose events are batched in per-thread buffers
    /// ([`Destination::Buffered`]) that the exporter flushes every
    /// [max delay](OtlpExporterBuilder::with_max_delay) and at shutdown (a
    /// full buffer is flushed by its thread): one request per buffer, not
    /// per event. Its records carry the exporter's resource. The transport
    /// crates' events ([`selftrace::TRANSPORT_TARGETS`]) are kept out
    /// (counted as discarded): exporting them would log more of them.
    ///
    /// Levels follow the rule of every selftrace product
    /// ([`DynamicFilter::from_env`](selftrace::levels::DynamicFilter::from_env)):
    /// `RUST_LOG`, read now, else `info` with the transport crates off; a
    /// per-layer filter, so other layers keep their own. For a filter of
    /// your own, or the layer's [`handle`](OtlpTracingLayer::handle),
    /// build it from [`layer_builder`](Self::layer_builder).
    pub fn layer<S>(&self) -> impl tracing_subscriber::Layer<S> + use<S>
    where
        S: tracing_core::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        use tracing_subscriber::Layer as _;
        let (filter, _) = selftrace::levels::DynamicFilter::from_env();
        self.layer_builder().build().with_filter(filter)
    }

    /// The builder of [`layer`](Self::layer), to change more of it (flood
    /// control, the denied targets' logger). The layer it builds has no
    /// level filter: it exports every event it is given.
    pub fn layer_builder(&self) -> OtlpTracingLayerBuilder {
        OtlpTracingLayer::builder(Destination::Buffered(self.node_logs.clone()))
            .with_encoder_settings(self.encoding.clone())
            .with_denied_targets(selftrace::TRANSPORT_TARGETS.iter().copied())
    }

    /// The node logs whose per-thread buffers the exporter flushes (the
    /// one [`layer`](Self::layer) logs into too): give its telemetry to the
    /// engine's nodes. [`shutdown`](Self::shutdown) drains and shuts it
    /// down; shutting it down earlier refuses the layer's events too.
    ///
    /// On an exporter of traces ([`traces_builder`](Self::traces_builder)),
    /// [`layer`](Self::layer) and `node_logs` refuse every record (counted as
    /// discarded, with a note on the raw logger): its requests hold spans.
    pub fn node_logs(&self) -> NodeLogs {
        self.node_logs.clone()
    }

    /// The counters of those per-thread buffers: records taken, delivered
    /// to the exporter's channel, dropped by reason (`ChannelFull` when the
    /// exporter was busy, `ShutDown` after shutdown).
    pub fn buffer_metrics(&self) -> NodeMetrics {
        self.node_logs.metrics()
    }

    /// The counters of the layers built from [`layer`](Self::layer) and
    /// [`layer_builder`](Self::layer_builder), summed (also once they are
    /// gone): events delivered to the exporter's buffers, and dropped by
    /// reason, flood control's
    /// [`Suppressed`](selftrace::DropReason::Suppressed) among them.
    pub fn layer_metrics(&self) -> selftrace::LayerMetrics {
        self.node_logs.layer_metrics()
    }

    /// The endpoint in force (after the environment and the defaults).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The protocol in force.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// What the exporter did so far.
    pub fn metrics(&self) -> ExporterMetrics {
        self.counters.snapshot()
    }

    /// Reads the counters at any time, also after the exporter stopped
    /// (what its instruments observe).
    #[cfg(feature = "metrics")]
    pub(crate) fn metrics_reader(&self) -> selftrace::instruments::Read<ExporterMetrics> {
        let counters = self.counters.clone();
        Arc::new(move || counters.snapshot())
    }

    /// Stops the exporter and waits for it: what is in the channel and in
    /// the batch being built is sent (with retries) until the shutdown
    /// timeout; what is left then is dropped and counted
    /// ([`ExporterMetrics::dropped_shutdown`]). Calling it again returns the
    /// final metrics at once.
    ///
    /// Blocks the calling thread; from async code, use
    /// [`shutdown_async`](Self::shutdown_async). Stop producing first (swap
    /// the layer's destination, shut the node logs down): what is sent after
    /// it is refused and counted by the producer as `ChannelClosed`.
    ///
    /// # Errors
    ///
    /// [`ExportError::Panicked`] if the exporter's thread panicked.
    pub fn shutdown(&self) -> Result<ExporterMetrics, ExportError> {
        self.signal_stop();
        let _ = self.done.recv();
        self.join()
    }

    /// [`shutdown`](Self::shutdown) without blocking the async runtime.
    ///
    /// # Errors
    ///
    /// As for [`shutdown`](Self::shutdown).
    pub fn shutdown_async(&self) -> impl Future<Output = Result<ExporterMetrics, ExportError>> + Send + '_ {
        self.signal_stop();
        async move {
            let _ = self.done.recv_async().await;
            self.join()
        }
    }

    fn signal_stop(&self) {
        let deadline = Instant::now() + self.shutdown_timeout;
        self.stop.send_if_modified(|stop| {
            let first = stop.is_none();
            if first {
                *stop = Some(deadline);
            }
            first
        });
    }

    fn join(&self) -> Result<ExporterMetrics, ExportError> {
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        let panicked = thread.is_some_and(|t| t.join().is_err());
        if panicked { Err(ExportError::Panicked) } else { Ok(self.metrics()) }
    }
}

impl Drop for OtlpExporter {
    /// Shuts down as [`shutdown`](OtlpExporter::shutdown) does.
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

// === impl ExportSink ===

/// The producers' end: a bounded channel whose refusals are counted in
/// records, on the refusal path only.
struct ExportSink {
    tx: OtlpBytesSender,
    counters: Arc<Counters>,
    queue: Arc<QueueBytes>,
}

impl fmt::Debug for ExportSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportSink").field("tx", &self.tx).finish()
    }
}

impl OtlpSink for ExportSink {
    fn try_send(&self, bytes: OtlpBytes) -> Result<(), TrySendError> {
        let len = bytes.len() as u64;
        let refused = |bytes: &OtlpBytes| {
            let records = selftrace::batch::shape(bytes.as_bytes()).map_or(0, |s| s.records);
            add(&self.counters.dropped_queue_full, records);
        };
        if !self.queue.reserve(len) {
            refused(&bytes);
            return Err(TrySendError::Full(bytes));
        }
        self.tx.try_send(bytes).inspect_err(|e| {
            self.queue.release(len);
            if let TrySendError::Full(bytes) = e {
                refused(bytes);
            }
        })
    }

    fn capacity(&self) -> usize {
        self.tx.capacity()
    }

    fn queued(&self) -> usize {
        self.tx.len()
    }

    fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}
