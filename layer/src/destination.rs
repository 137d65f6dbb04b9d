//! [`Destination`]: where the layer sends events.
//!
//! # Hot swap
//!
//! The destination sits in an atomically swappable slot (see
//! [`DestinationHandle`](crate::DestinationHandle)). Each event loads it
//! exactly once, so an event lands in exactly one destination even while
//! another thread swaps: the old one or the new one, never both, never
//! neither.

use crate::{
    channel::OtlpBytesSender,
    console::{self, ConsoleFormat, ConsoleStream},
    encoder::OtlpBytes,
    json,
    metrics::DropReason,
    node::{NodeLogs, Output},
    startup::{self, Push, StartupBuffer},
    view::LogRecordView,
};

/// Where the layer delivers events.
///
/// # Examples
///
/// ```
/// use selftrace::{Destination, OtlpBytesChannel, OtlpTracingLayer, console::ConsoleStream};
///
/// // OTLP/JSON lines on stdout, for a log agent reading the container's output.
/// let layer = OtlpTracingLayer::new(Destination::OtlpJson(ConsoleStream::Stdout));
/// // Later, the encoded requests into a channel whose consumer exports them.
/// let channel = OtlpBytesChannel::new(selftrace::DEFAULT_CHANNEL_CAPACITY);
/// let previous = layer.handle().set(Destination::Channel(channel.sender()))?;
/// assert!(matches!(previous, Destination::OtlpJson(ConsoleStream::Stdout)));
/// # Ok::<(), selftrace::HandleError>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Destination {
    /// Encode each event into one OTLP request and `try_send` it.
    Channel(OtlpBytesSender),
    /// Write each event as a human-readable line to stderr, synchronously.
    Console,
    /// Write each event as one OTLP/JSON line (an `ExportLogsServiceRequest`
    /// of one record, see [`json`](crate::json)) to the stream,
    /// synchronously: encoded once with the layer's resource and limits,
    /// then written from the bytes. For log agents reading a container's
    /// output, and the Collector's `otlpjsonfile` receiver.
    OtlpJson(ConsoleStream),
    /// Discard every event (counted as [`DropReason::Discarded`](crate::DropReason::Discarded)).
    Noop,
    /// Encode each event into this thread's buffer of a [`NodeLogs`]
    /// (`Destination::Buffered(node_logs)`, or `node_logs.into()`), under the event's target as its scope,
    /// with the node logs' resource and limits: one request per full buffer or
    /// per flush, not per event. Whoever owns the node logs flushes it
    /// ([`NodeLogs::flush`] on a timer, as `selftrace-bridge`'s
    /// `OtlpExporter` and `selftrace-itr`'s receivers do); a thread's
    /// buffer is also flushed when it is full and when the thread ends.
    ///
    /// The layer counts such an event delivered when the buffer has it; the
    /// node logs' [`NodeMetrics`](crate::NodeMetrics) count what the flushes
    /// delivered or dropped.
    Buffered(NodeLogs),
    /// Keep each event, encoded, until the real destination is set (see
    /// [`startup`](crate::startup)): a layer installed before its exporter
    /// or pipeline exists loses nothing of the start.
    Startup(StartupBuffer),
}

impl Destination {
    /// [`Destination::Startup`] with a buffer of
    /// [`DEFAULT_STARTUP_BUFFER_BYTES`](crate::startup::DEFAULT_STARTUP_BUFFER_BYTES).
    pub fn startup() -> Self {
        Destination::Startup(StartupBuffer::default())
    }

    /// Hands one encoded request on (a startup buffer's, at its hand-over);
    /// the reason when it was not taken. Into another startup buffer it is
    /// only pushed: the layer, which counts what its buffers keep, routes
    /// those itself.
    pub(crate) fn take_request(&self, request: OtlpBytes) -> Option<DropReason> {
        let sender = match self {
            Destination::Channel(sender) => sender,
            Destination::Buffered(node_logs) => match node_logs.output() {
                Output::Channel(sender) => sender,
                Output::Console(format) => return print(&request, *format),
                _ => return Some(DropReason::Discarded),
            },
            Destination::Console => return startup::print(&request),
            Destination::OtlpJson(stream) => return print(&request, ConsoleFormat::OtlpJson(*stream)),
            Destination::Noop => return Some(DropReason::Discarded),
            Destination::Startup(buffer) => {
                return match buffer.push(request, crate::clock::now_unix_nanos(), None) {
                    Push::Kept => None,
                    Push::Full | Push::Closed(_) => Some(DropReason::StartupBufferFull),
                };
            }
        };
        sender.try_send(request).err().map(|refused| refused.drop_reason())
    }

    /// Hands one record on as [`take_request`](Self::take_request) does;
    /// `encode` makes a request of it (with the layer's resource) where
    /// bytes are taken.
    pub(crate) fn take_record(
        &self,
        scope: &str,
        record: &dyn LogRecordView,
        encode: &dyn Fn(&dyn LogRecordView) -> Option<OtlpBytes>,
    ) -> Option<DropReason> {
        match self {
            Destination::Console => {
                console::print_console_line(scope, record);
                None
            }
            Destination::Noop => Some(DropReason::Discarded),
            _ => match encode(record) {
                Some(request) => self.take_request(request),
                None => Some(DropReason::RecordTooLarge),
            },
        }
    }
}

/// Prints an encoded request in `format`; `RecordTooLarge` if it does not
/// decode (never: it is our own encoding).
pub(crate) fn print(request: &OtlpBytes, format: ConsoleFormat) -> Option<DropReason> {
    match format {
        ConsoleFormat::OtlpJson(stream) => match json::print_request(request.as_bytes(), stream) {
            Ok(_) => None,
            Err(_) => Some(DropReason::RecordTooLarge),
        },
        _ => startup::print(request),
    }
}

impl From<Destination> for Output {
    /// A `NodeLogs`'s output: `Buffered(node_logs)` sends where `node_logs` sends.
    fn from(destination: Destination) -> Self {
        match destination {
            Destination::Channel(sender) => Output::Channel(sender),
            Destination::Console => Output::Console(ConsoleFormat::Text),
            Destination::OtlpJson(stream) => Output::Console(ConsoleFormat::OtlpJson(stream)),
            Destination::Noop => Output::Noop,
            Destination::Buffered(node_logs) => node_logs.output().clone(),
            // Node logs do not wait: their records go to the console.
            Destination::Startup(_) => Output::Console(ConsoleFormat::Text),
        }
    }
}

impl From<NodeLogs> for Destination {
    /// [`Destination::Buffered`].
    fn from(node_logs: NodeLogs) -> Self {
        Destination::Buffered(node_logs)
    }
}
