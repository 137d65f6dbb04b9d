//! The bounded channel the encoded requests are handed off on.
//!
//! [`OtlpBytesChannel`] is bounded ([`DEFAULT_CHANNEL_CAPACITY`] requests)
//! and the layer only ever calls [`OtlpBytesSender::try_send`]: a full or
//! closed channel never blocks the thread that logs. The event goes to the
//! [raw logger](crate::raw::raw_logger_metrics) and is counted instead. Memory is
//! bounded by capacity × request size. Requests from one thread arrive in the
//! order they were logged; requests from different threads interleave.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use crate::{encoder::OtlpBytes, metrics::DropReason};

/// Default capacity of an [`OtlpBytesChannel`], in requests.
pub const DEFAULT_CHANNEL_CAPACITY: usize = 1000;
// === impl OtlpBytesChannel ===

/// A bounded channel of [`OtlpBytes`].
///
/// # Examples
///
/// ```
/// use selftrace::{DEFAULT_CHANNEL_CAPACITY, OtlpBytesChannel};
///
/// let (sender, receiver) = OtlpBytesChannel::new(DEFAULT_CHANNEL_CAPACITY).into_parts();
/// assert_eq!(sender.capacity(), DEFAULT_CHANNEL_CAPACITY);
/// drop(sender);
/// assert!(receiver.recv().is_none()); // every sender is gone
/// ```
#[derive(Debug)]
pub struct OtlpBytesChannel {
    sender: OtlpBytesSender,
    receiver: OtlpBytesReceiver,
}

impl OtlpBytesChannel {
    /// A channel holding at most `capacity` requests (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let (tx, rx) = flume::bounded(capacity);
        let full = Arc::<AtomicBool>::default();
        let sender = OtlpBytesSender { inner: SenderKind::Channel { tx, capacity, full: full.clone() } };
        Self { sender, receiver: OtlpBytesReceiver { inner: rx, full } }
    }

    /// A new sender for this channel.
    pub fn sender(&self) -> OtlpBytesSender {
        self.sender.clone()
    }

    /// A new receiver for this channel (receivers share the requests).
    pub fn receiver(&self) -> OtlpBytesReceiver {
        self.receiver.clone()
    }

    /// Both ends, so that dropping every sender closes the channel.
    pub fn into_parts(self) -> (OtlpBytesSender, OtlpBytesReceiver) {
        (self.sender, self.receiver)
    }
}

impl Default for OtlpBytesChannel {
    fn default() -> Self {
        Self::new(DEFAULT_CHANNEL_CAPACITY)
    }
}

/// The sending end of an [`OtlpBytesChannel`], or of an [`OtlpSink`].
#[derive(Clone)]
pub struct OtlpBytesSender {
    inner: SenderKind,
}

#[derive(Clone)]
enum SenderKind {
    /// `full`: set when a send found the channel full, cleared when a
    /// receiver takes a request (or a send succeeds); shared by every clone
    /// of both ends.
    Channel {
        tx: flume::Sender<OtlpBytes>,
        capacity: usize,
        full: Arc<AtomicBool>,
    },
    Sink(Arc<dyn OtlpSink>),
}

impl fmt::Debug for OtlpBytesSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            SenderKind::Channel { tx, capacity, .. } => {
                f.debug_struct("OtlpBytesSender").field("len", &tx.len()).field("capacity", capacity).finish()
            }
            SenderKind::Sink(sink) => f.debug_tuple("OtlpBytesSender").field(sink).finish(),
        }
    }
}

/// A receiving end that is not a plain channel, such as a fan-out to
/// several channels (`selftrace-itr`'s router).
///
/// [`OtlpBytesSender::from_sink`] makes a sender of it, usable wherever a
/// channel's sender is. Like a channel's, its `try_send` must never block,
/// panic or log through `tracing`: it runs on the thread that logs.
#[doc(hidden)]
pub trait OtlpSink: fmt::Debug + Send + Sync + 'static {
    /// Hands `bytes` on without waiting.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] when nothing took the request for lack of room,
    /// [`TrySendError::Closed`] when nothing will ever take one; both give
    /// the request back.
    fn try_send(&self, bytes: OtlpBytes) -> Result<(), TrySendError>;

    /// How many requests it holds at most.
    fn capacity(&self) -> usize;

    /// How many requests it holds now.
    fn queued(&self) -> usize;

    /// Whether nothing will ever take a request again.
    fn is_closed(&self) -> bool;
}

/// Why [`OtlpBytesSender::try_send`] did not send; carries the request back.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError {
    /// The channel is at capacity.
    Full(OtlpBytes),
    /// Every receiver is gone.
    Closed(OtlpBytes),
}

impl TrySendError {
    /// The reason a refused request's records are dropped under: the one
    /// mapping every sender of selftrace's uses.
    pub(crate) fn drop_reason(&self) -> DropReason {
        match self {
            TrySendError::Full(_) => DropReason::ChannelFull,
            TrySendError::Closed(_) => DropReason::ChannelClosed,
        }
    }

    /// Whether the channel was full (rather than closed).
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }

    /// The request that was not sent.
    pub fn into_inner(self) -> OtlpBytes {
        match self {
            TrySendError::Full(b) | TrySendError::Closed(b) => b,
        }
    }
}

impl fmt::Display for TrySendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("otlp bytes channel is full"),
            TrySendError::Closed(_) => f.write_str("otlp bytes channel is closed"),
        }
    }
}

impl std::error::Error for TrySendError {}

impl OtlpBytesSender {
    /// Sends `bytes` if there is room, without ever waiting.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] at capacity, [`TrySendError::Closed`] when every
    /// receiver is gone; both give the request back.
    #[inline]
    pub fn try_send(&self, bytes: OtlpBytes) -> Result<(), TrySendError> {
        match &self.inner {
            SenderKind::Channel { tx, full, .. } => match tx.try_send(bytes) {
                Ok(()) => {
                    // Written only when the state changes: the flag's cache
                    // line stays shared while the channel has room.
                    if full.load(Ordering::Relaxed) {
                        full.store(false, Ordering::Relaxed);
                    }
                    Ok(())
                }
                Err(flume::TrySendError::Full(b)) => {
                    full.store(true, Ordering::SeqCst);
                    // A receiver may have taken a request between the send
                    // and the flag, and seen the flag still clear: look once
                    // more, or every sender would refuse an empty channel.
                    if !tx.is_full() {
                        full.store(false, Ordering::SeqCst);
                    }
                    Err(TrySendError::Full(b))
                }
                Err(flume::TrySendError::Disconnected(b)) => Err(TrySendError::Closed(b)),
            },
            SenderKind::Sink(sink) => sink.try_send(bytes),
        }
    }

    /// Whether the channel refuses requests now: a send found it full and no
    /// receiver has taken a request since (one relaxed load): a producer
    /// asks before encoding, so that an event the channel cannot take costs
    /// less than one it can. A receiver may make room right after; the
    /// caller counts such an event as refused all the same, as it would
    /// have been a moment earlier. Always false for an [`OtlpSink`].
    #[inline]
    pub fn is_refusing(&self) -> bool {
        match &self.inner {
            // One load of a flag that only changes when the channel fills
            // or a receiver makes room: refusing threads share the cache
            // line, none of them takes the channel's lock.
            // (A closed channel is not refusing: the send says it is closed.)
            SenderKind::Channel { tx, full, .. } => full.load(Ordering::Relaxed) && !tx.is_disconnected(),
            SenderKind::Sink(_) => false,
        }
    }

    /// A sender that hands requests to `sink`.
    #[doc(hidden)]
    pub fn from_sink(sink: Arc<dyn OtlpSink>) -> Self {
        Self { inner: SenderKind::Sink(sink) }
    }

    /// The channel's capacity.
    pub fn capacity(&self) -> usize {
        match &self.inner {
            SenderKind::Channel { capacity, .. } => *capacity,
            SenderKind::Sink(sink) => sink.capacity(),
        }
    }

    /// Requests waiting in the channel.
    pub fn len(&self) -> usize {
        match &self.inner {
            SenderKind::Channel { tx, .. } => tx.len(),
            SenderKind::Sink(sink) => sink.queued(),
        }
    }

    /// Whether no request is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every receiver is gone.
    pub fn is_closed(&self) -> bool {
        match &self.inner {
            SenderKind::Channel { tx, .. } => tx.is_disconnected(),
            SenderKind::Sink(sink) => sink.is_closed(),
        }
    }
}

/// The receiving end of an [`OtlpBytesChannel`].
#[derive(Clone)]
pub struct OtlpBytesReceiver {
    inner: flume::Receiver<OtlpBytes>,
    /// The senders' `full` flag: cleared once a request is taken.
    full: Arc<AtomicBool>,
}

impl fmt::Debug for OtlpBytesReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpBytesReceiver").field("len", &self.inner.len()).finish()
    }
}

impl OtlpBytesReceiver {
    /// Waits for the next request, blocking this thread; `None` once the
    /// channel is empty and every sender is gone.
    pub fn recv(&self) -> Option<OtlpBytes> {
        self.took(self.inner.recv().ok())
    }

    /// Passes `request` on; there is room once one is taken.
    #[inline]
    fn took(&self, request: Option<OtlpBytes>) -> Option<OtlpBytes> {
        if request.is_some() {
            self.made_room();
        }
        request
    }

    /// Senders may send again.
    #[inline]
    fn made_room(&self) {
        // Written only when set: the flag's line stays shared otherwise.
        if self.full.load(Ordering::SeqCst) {
            self.full.store(false, Ordering::SeqCst);
        }
    }

    /// Waits up to `timeout` for the next request; `None` on timeout or once
    /// the channel is empty and every sender is gone (see
    /// [`is_closed`](Self::is_closed)).
    pub fn recv_timeout(&self, timeout: Duration) -> Option<OtlpBytes> {
        self.took(self.inner.recv_timeout(timeout).ok())
    }

    /// The next request if one is waiting.
    pub fn try_recv(&self) -> Option<OtlpBytes> {
        self.took(self.inner.try_recv().ok())
    }

    /// Waits for the next request without blocking the async runtime; `None`
    /// once the channel is empty and every sender is gone.
    pub async fn recv_async(&self) -> Option<OtlpBytes> {
        self.took(self.inner.recv_async().await.ok())
    }

    /// Every request waiting now, without blocking.
    pub fn drain(&self) -> impl Iterator<Item = OtlpBytes> + '_ {
        self.inner.try_iter().inspect(|_| self.made_room())
    }

    /// Requests waiting in the channel.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether no request is waiting.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Whether every sender is gone.
    pub fn is_closed(&self) -> bool {
        self.inner.is_disconnected()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> OtlpBytes {
        OtlpBytes::from_bytes(bytes::Bytes::from_static(b"\x0a\x00"))
    }

    #[test]
    fn a_refused_send_makes_the_sender_refuse_until_a_receiver_takes_a_request() {
        let (sender, receiver) = OtlpBytesChannel::new(1).into_parts();
        assert!(!sender.is_refusing());
        sender.try_send(request()).expect("room for one");
        assert!(!sender.is_refusing(), "full, but no send has been refused yet");
        assert!(sender.try_send(request()).is_err_and(|e| e.is_full()));
        assert!(sender.is_refusing());
        assert!(sender.clone().is_refusing(), "clones share the flag");
        // Each way of receiving clears it.
        let takes: [fn(&OtlpBytesReceiver) -> bool; 4] = [
            |r| r.try_recv().is_some(),
            |r| r.recv().is_some(),
            |r| r.recv_timeout(Duration::from_secs(1)).is_some(),
            |r| r.drain().count() == 1,
        ];
        for take in takes {
            assert!(take(&receiver));
            assert!(!sender.is_refusing());
            sender.try_send(request()).expect("room again");
            assert!(sender.try_send(request()).is_err());
            assert!(sender.is_refusing());
        }
    }

    #[test]
    fn a_closed_channel_is_not_refusing_its_sends_say_closed() {
        let (sender, receiver) = OtlpBytesChannel::new(1).into_parts();
        sender.try_send(request()).expect("room for one");
        assert!(sender.try_send(request()).is_err_and(|e| e.is_full()));
        drop(receiver);
        assert!(!sender.is_refusing());
        assert!(matches!(sender.try_send(request()), Err(TrySendError::Closed(_))));
    }
}
