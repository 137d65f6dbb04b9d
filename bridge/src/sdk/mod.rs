//! The SDK bridge: the consumer that drains an
//! `OtlpBytesChannel` into an OpenTelemetry
//! SDK `LoggerProvider`, on a thread of its own or as an async task, and the
//! [`SdkEmitter`] it emits each decoded record with.

mod consumer;
mod emit;
mod error;
mod intern;
mod metrics;

use std::{
    fmt,
    future::Future,
    io,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context as TaskContext, Poll},
    thread::JoinHandle,
};

use bytes::Bytes;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use selftrace::{
    DEFAULT_CHANNEL_CAPACITY, Destination, NodeLogs, OtlpBytes, OtlpBytesChannel, OtlpBytesSender, OtlpTracingLayer,
};

pub(crate) use self::emit::DEFAULT_MAX_LOGGERS;
use self::{consumer::Consumer, metrics::BridgeCounters};
pub use self::{emit::SdkEmitter, error::BridgeError, metrics::BridgeMetrics};

// === impl SdkBridgeBuilder ===

/// Builds an [`SdkBridge`]; see there.
///
/// # Examples
///
/// ```
/// use opentelemetry_sdk::logs::SdkLoggerProvider;
/// use selftrace_bridge::SdkBridge;
///
/// let provider = SdkLoggerProvider::builder().build(); // with the processors and exporters of your choice
/// let bridge = SdkBridge::builder(provider)
///     .with_channel_capacity(4096) // requests waiting for the consumer thread
///     .with_flush_every(1024) // records emitted between two waits for the provider
///     .spawn()?;
/// let metrics = bridge.shutdown()?;
/// assert_eq!(metrics.records_emitted, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SdkBridgeBuilder {
    provider: SdkLoggerProvider,
    capacity: usize,
    max_loggers: usize,
    flush_every: usize,
}

/// Default records emitted between two waits for the provider
/// ([`SdkBridgeBuilder::with_flush_every`]): the SDK `BatchLogProcessor`'s
/// default export batch, a quarter of its default queue (2048).
#[doc(hidden)]
pub const DEFAULT_FLUSH_EVERY: usize = 512;

impl SdkBridgeBuilder {
    /// The channel holds at most `capacity` requests (default
    /// [`DEFAULT_CHANNEL_CAPACITY`]); past it, producers count their events
    /// as `ChannelFull` instead of waiting.
    pub fn with_channel_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Caches at most `max_loggers` SDK loggers, one per scope name (default
    /// 1024).
    pub fn with_max_loggers(mut self, max_loggers: usize) -> Self {
        self.max_loggers = max_loggers;
        self
    }

    /// Waits for the provider to export what it holds (`force_flush`) after
    /// every `records` records emitted (default 512; 0
    /// never waits).
    ///
    /// The SDK's `BatchLogProcessor` drops records silently when its queue
    /// is full, and the bridge emits far faster than an exporter sends: a
    /// burst would be lost inside the SDK while the bridge counted it as
    /// emitted. Waiting turns that into backpressure on the bridge's own
    /// bounded channel, where every refusal is counted by the producer
    /// (`ChannelFull`). Keep `records` at most the queue size of your batch
    /// processors (the SDK's default is 2048). Producers never wait: only
    /// the bridge's consumer does.
    pub fn with_flush_every(mut self, records: usize) -> Self {
        self.flush_every = records;
        self
    }

    /// Starts the consumer on a thread of its own (`selftrace-sdk-bridge`).
    ///
    /// # Errors
    ///
    /// The thread could not be spawned.
    pub fn spawn(self) -> io::Result<SdkBridge> {
        let (bridge, consumer) = self.parts();
        let handle = std::thread::Builder::new().name("selftrace-sdk-bridge".into()).spawn(move || consumer.run())?;
        *bridge.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        Ok(bridge)
    }

    /// The bridge and its consumer as a future, for an async runtime to run
    /// (`tokio::spawn(task)`). The future is `Send` and runtime-agnostic.
    ///
    /// Each request is emitted synchronously between two awaits. When the
    /// bridge stops, the future flushes and shuts the provider down
    /// synchronously too, which blocks the worker running it for as long as
    /// the exporters take: await [`SdkBridge::shutdown_async`] rather than
    /// calling [`SdkBridge::shutdown`] from async code.
    pub fn into_task(self) -> (SdkBridge, BridgeTask) {
        let (bridge, consumer) = self.parts();
        (bridge, BridgeTask { future: Box::pin(consumer.run_async()) })
    }

    fn parts(self) -> (SdkBridge, Consumer) {
        let (sender, receiver) = OtlpBytesChannel::new(self.capacity).into_parts();
        let (done_tx, done_rx) = flume::bounded::<()>(1);
        let shared = Arc::new(BridgeState { stop: AtomicBool::new(false), result: Mutex::new(None) });
        let counters = Arc::new(BridgeCounters::default());
        let emitter =
            SdkEmitter::with_counters(self.provider, Arc::clone(&counters)).with_max_loggers(self.max_loggers);
        let consumer = Consumer {
            receiver,
            emitter,
            counters: Arc::clone(&counters),
            flush_every: self.flush_every as u64,
            since_flush: 0,
            shared: Arc::clone(&shared),
            _done: done_tx,
        };
        let bridge = SdkBridge { shared, counters, sender, done: done_rx, thread: Mutex::new(None) };
        (bridge, consumer)
    }
}

// === impl SdkBridge ===

/// OTLP bytes into the OpenTelemetry SDK: the default routing mode, where
/// third-party and node logs reach the exporters an application already uses.
///
/// An `SdkBridge` owns a bounded channel and a consumer that reads each
/// request from it with the zero-copy decoder and emits its records through
/// an [`SdkEmitter`] into the [`SdkLoggerProvider`] it was built with.
/// Give [`destination`](Self::destination) (or [`layer`](Self::layer),
/// [`node_logs`](Self::node_logs)) to what produces the bytes.
///
/// # No feedback loop
///
/// The consumer runs inside a [`selftrace::pipeline::PipelineScope`]: an event an
/// exporter raises on its thread (`SimpleLogProcessor` exports there) goes to
/// the raw logger, counted, never back into the channel. The SDK's own
/// processors export inside an OpenTelemetry telemetry-suppressed context,
/// which the selftrace layer honours the same way. The records themselves are
/// emitted outside a suppressed context, since `SdkLogger::emit` discards
/// records emitted inside one; the provider's `force_flush` and `shutdown`
/// run inside one.
///
/// # Shutdown
///
/// [`shutdown`](Self::shutdown) (or dropping the bridge) stops the consumer:
/// it emits the requests waiting in the channel, then flushes and shuts the
/// provider down. It is idempotent. Stop producing into the bridge first
/// (swap the layer's destination, shut the node logs down): requests sent
/// after the consumer stopped are refused, and the producers count them as
/// `ChannelClosed`.
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
///
/// use opentelemetry::InstrumentationScope;
/// use opentelemetry_sdk::{error::OTelSdkResult, logs::{LogProcessor, SdkLogRecord, SdkLoggerProvider}};
/// use selftrace::{Node, otel_info};
/// use selftrace_bridge::SdkBridge;
/// use tracing_subscriber::layer::SubscriberExt;
///
/// /// Keeps the scope of every record (any exporter would do).
/// #[derive(Debug, Clone, Default)]
/// struct Scopes(Arc<Mutex<Vec<String>>>);
/// impl LogProcessor for Scopes {
///     fn emit(&self, _: &mut SdkLogRecord, scope: &InstrumentationScope) {
///         self.0.lock().unwrap().push(scope.name().to_string());
///     }
///     fn force_flush(&self) -> OTelSdkResult { Ok(()) }
/// }
///
/// let scopes = Scopes::default();
/// let provider = SdkLoggerProvider::builder().with_log_processor(scopes.clone()).build();
/// let bridge = SdkBridge::builder(provider).spawn()?;
///
/// // Third-party logs, through the layer...
/// let subscriber = tracing_subscriber::registry().with(bridge.layer());
/// tracing::subscriber::with_default(subscriber, || tracing::info!(target: "db", "connected"));
/// // ...and node logs, through a `NodeLogs`.
/// let nodes = bridge.node_logs();
/// let receiver = nodes.shared(Node::new("receiver.otlp.0"));
/// otel_info!(receiver, "receiver.started", port = 4318_i64);
/// nodes.shutdown(); // flushes the node buffers into the bridge
///
/// let metrics = bridge.shutdown()?;
/// assert_eq!(metrics.records_emitted, 2);
/// assert_eq!(*scopes.0.lock().unwrap(), ["db", "receiver.otlp.0"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SdkBridge {
    shared: Arc<BridgeState>,
    counters: Arc<BridgeCounters>,
    sender: OtlpBytesSender,
    /// Disconnected when the consumer ends, normally or by a panic.
    done: flume::Receiver<()>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for SdkBridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdkBridge")
            .field("sender", &self.sender)
            .field("stopped", &self.shared.stop.load(Ordering::Relaxed))
            .field("metrics", &self.metrics())
            .finish_non_exhaustive()
    }
}

pub(super) struct BridgeState {
    pub(super) stop: AtomicBool,
    /// What the consumer's end gave; set before `done` disconnects.
    pub(super) result: Mutex<Option<Result<(), BridgeError>>>,
}

impl SdkBridge {
    /// A bridge into `provider`, with the default channel capacity.
    pub fn builder(provider: SdkLoggerProvider) -> SdkBridgeBuilder {
        SdkBridgeBuilder {
            provider,
            capacity: DEFAULT_CHANNEL_CAPACITY,
            max_loggers: DEFAULT_MAX_LOGGERS,
            flush_every: DEFAULT_FLUSH_EVERY,
        }
    }

    /// The destination that feeds this bridge, for an [`OtlpTracingLayer`]
    /// or a [`NodeLogs`].
    pub fn destination(&self) -> Destination {
        Destination::Channel(self.sender.clone())
    }

    /// A layer whose third-party events feed this bridge.
    pub fn layer(&self) -> OtlpTracingLayer {
        OtlpTracingLayer::new(self.destination())
    }

    /// A `NodeLogs` whose records feed this bridge.
    pub fn node_logs(&self) -> NodeLogs {
        NodeLogs::new(self.destination())
    }

    /// What the bridge did so far.
    pub fn metrics(&self) -> BridgeMetrics {
        self.counters.snapshot()
    }

    /// Reads the counters at any time (what its instruments observe).
    #[cfg(feature = "metrics")]
    pub(crate) fn metrics_reader(&self) -> selftrace::instruments::Read<BridgeMetrics> {
        let counters = self.counters.clone();
        Arc::new(move || counters.snapshot())
    }

    /// Stops the consumer and waits for it: the requests waiting in the
    /// channel are emitted, then the provider is flushed and shut down.
    /// Calling it again returns the same result.
    ///
    /// Blocks the calling thread; from async code, use
    /// [`shutdown_async`](Self::shutdown_async).
    ///
    /// # Errors
    ///
    /// The provider's flush or shutdown failed, or the consumer panicked.
    pub fn shutdown(&self) -> Result<BridgeMetrics, BridgeError> {
        self.signal_stop();
        self.wait();
        self.result()
    }

    /// [`shutdown`](Self::shutdown) without blocking the async runtime.
    ///
    /// # Errors
    ///
    /// As for [`shutdown`](Self::shutdown).
    pub async fn shutdown_async(&self) -> Result<BridgeMetrics, BridgeError> {
        self.signal_stop();
        let _ = self.done.recv_async().await;
        self.join();
        self.result()
    }

    fn signal_stop(&self) {
        if !self.shared.stop.swap(true, Ordering::AcqRel) {
            // Wake a consumer waiting on an empty channel. An empty request
            // holds no record; a full channel wakes it anyway, and a closed
            // one means it is gone.
            let _ = self.sender.try_send(OtlpBytes::from_bytes(Bytes::new()));
        }
    }

    /// Blocks until the consumer is gone, then joins its thread if any.
    fn wait(&self) {
        // Disconnects when the consumer ends (nothing is ever sent).
        let _ = self.done.recv();
        self.join();
    }

    fn join(&self) {
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            // The consumer has ended (done is disconnected): this returns at
            // once, and a panic was already recorded as the missing result.
            let _ = thread.join();
        }
    }

    fn result(&self) -> Result<BridgeMetrics, BridgeError> {
        let result = self.shared.result.lock().unwrap_or_else(|p| p.into_inner()).clone();
        result.unwrap_or(Err(BridgeError::ConsumerPanicked)).map(|()| self.metrics())
    }
}

impl Drop for SdkBridge {
    fn drop(&mut self) {
        self.signal_stop();
        // A thread consumer is waited for, as the SDK's providers wait for
        // their exports on drop; a task is left to finish on its runtime.
        if self.thread.get_mut().map(|t| t.is_some()).unwrap_or(false) {
            self.wait();
        }
    }
}

// === impl BridgeTask ===

/// The consumer of an [`SdkBridge`] as a future; see
/// [`SdkBridgeBuilder::into_task`].
#[must_use = "the bridge consumes nothing until the task is polled"]
pub struct BridgeTask {
    future: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl fmt::Debug for BridgeTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BridgeTask")
    }
}

impl Future for BridgeTask {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        self.future.as_mut().poll(cx)
    }
}
