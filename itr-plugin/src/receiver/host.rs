//! The node trait: what a host engine gives a receiver node.

use std::{fmt, future::Future, time::Duration, time::Instant};

use selftrace::OtlpBytes;

/// What a host engine gives a receiver node: an output, control signals and
/// a timer. Nothing else, and nothing engine-specific.
///
/// The receiver's loop is written once, generic over this trait. Its future
/// is `Send` when the host's futures are (a multi-threaded runtime spawns
/// it) and `!Send` when they are not (a thread-per-core host runs it with
/// its other local tasks): nothing in the receiver forces either.
///
/// See the [crate docs](crate#mounting-the-receiver-in-a-host) for a host
/// adapting its own node API.
pub trait ReceiverHost {
    /// The future of [`sleep`](Self::sleep).
    type Sleep: Future<Output = ()>;

    /// Sends one batch to the node's output port. Waiting here is the
    /// downstream pipeline's backpressure.
    ///
    /// # Errors
    ///
    /// [`OutputClosed`] when the output is gone for good.
    fn send(&mut self, batch: OtlpBytes) -> impl Future<Output = Result<(), OutputClosed>>;

    /// Waits for the host's next control signal. The receiver drops this
    /// future when something else wakes it first, so it must lose nothing
    /// when dropped (a `tokio::sync::mpsc` or `flume` receive is fine). A
    /// host whose control source is gone returns [`Control::Shutdown`].
    fn recv_control(&mut self) -> impl Future<Output = Control>;

    /// A timer that fires once after `duration`: the receiver's flush timer.
    /// A host that sends [`Control::TimerTick`] itself instead returns
    /// [`std::future::pending`].
    fn sleep(&self, duration: Duration) -> Self::Sleep;
}

/// A control signal from the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Control {
    /// Flush and send everything, then stop; what cannot be sent by
    /// `deadline` is dropped and counted.
    Shutdown {
        /// When the receiver gives up sending.
        deadline: Instant,
    },
    /// A timer tick from the host: flush now, as the receiver's own timer
    /// would.
    TimerTick,
}

impl Control {
    /// A shutdown that may take `timeout` from now.
    pub fn shutdown_within(timeout: Duration) -> Self {
        let now = Instant::now();
        // A timeout past what `Instant` holds: a year is as good as forever.
        let deadline = now.checked_add(timeout).or_else(|| now.checked_add(Duration::from_secs(365 * 86_400)));
        Control::Shutdown { deadline: deadline.unwrap_or(now) }
    }
}

/// The node's output is gone for good.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutputClosed;

impl fmt::Display for OutputClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the receiver's output is closed")
    }
}

impl std::error::Error for OutputClosed {}
