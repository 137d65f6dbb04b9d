//! Counters of what the layer delivered and dropped, and their snapshot.
//!
//! Every event the layer sees is either delivered (handed to its
//! destination) or dropped for exactly one [`DropReason`], so
//! `received == delivered + dropped_total` holds at all times. Counters are
//! relaxed atomics: one uncontended increment per event.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why an event did not reach its destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// The channel was full; the event went to the raw logger.
    ChannelFull,
    /// The channel's receiver was gone; the event went to the raw logger.
    ChannelClosed,
    /// The event was raised while this thread was already inside the layer
    /// (a `Debug` implementation or a destination that logs); it went to the
    /// raw logger instead of recursing.
    Reentrant,
    /// The record could not be encoded within the encoder's limits; it went
    /// to the raw logger.
    RecordTooLarge,
    /// The destination is `Noop`: the event was discarded on purpose.
    Discarded,
}

impl DropReason {
    /// Every reason, in a stable order.
    pub const ALL: [DropReason; 5] = [
        DropReason::ChannelFull,
        DropReason::ChannelClosed,
        DropReason::Reentrant,
        DropReason::RecordTooLarge,
        DropReason::Discarded,
    ];

    /// A short snake_case name, as used in metric names and raw log lines.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::ChannelFull => "channel_full",
            DropReason::ChannelClosed => "channel_closed",
            DropReason::Reentrant => "reentrant",
            DropReason::RecordTooLarge => "record_too_large",
            DropReason::Discarded => "discarded",
        }
    }

    const fn index(self) -> usize {
        match self {
            DropReason::ChannelFull => 0,
            DropReason::ChannelClosed => 1,
            DropReason::Reentrant => 2,
            DropReason::RecordTooLarge => 3,
            DropReason::Discarded => 4,
        }
    }
}

/// A point-in-time copy of a layer's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayerMetrics {
    delivered: u64,
    dropped: [u64; 5],
    truncated_values: u64,
}

impl LayerMetrics {
    /// Events handed to the destination (accepted by the channel, or
    /// written to the console).
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Events dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()]
    }

    /// Events dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    /// Events the layer saw: `delivered + dropped_total`.
    pub fn received(&self) -> u64 {
        self.delivered + self.dropped_total()
    }

    /// Values cut or left out to respect the encoder's limits (each also
    /// counted in its record's `dropped_attributes_count`).
    pub fn truncated_values(&self) -> u64 {
        self.truncated_values
    }
}

/// One counter on its own cache line, so threads bumping different counters
/// do not contend.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded(AtomicU64);

#[derive(Debug, Default)]
pub(crate) struct LayerCounters {
    delivered: Padded,
    dropped: [Padded; 5],
    truncated_values: Padded,
}

impl LayerCounters {
    #[inline]
    pub(crate) fn delivered(&self) {
        self.delivered.0.fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn dropped(&self, reason: DropReason) {
        self.dropped[reason.index()].0.fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn truncated(&self, values: u32) {
        self.truncated_values.0.fetch_add(u64::from(values), Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> LayerMetrics {
        LayerMetrics {
            delivered: self.delivered.0.load(Ordering::Relaxed),
            dropped: std::array::from_fn(|i| self.dropped[i].0.load(Ordering::Relaxed)),
            truncated_values: self.truncated_values.0.load(Ordering::Relaxed),
        }
    }
}
