//! [`EncoderLimits`]: the bounds every encoder writes within.

use std::{error::Error, fmt};

/// Default capacity of an encoder's buffer: the largest request it writes.
pub const DEFAULT_BUFFER_CAPACITY: usize = 64 * 1024;

/// Default limit of one encoded `LogRecord`, the largest length a 2-byte
/// placeholder holds.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 16_383;

/// Default limit of one string value (body, attribute, event name) before it
/// is truncated.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 8 * 1024;

/// Appended to a value that was cut to fit its limit.
pub const TRUNCATION_MARKER: &str = "…[truncated]";

/// The smallest buffer capacity [`EncoderLimits`] accepts.
#[doc(hidden)]
pub const MIN_BUFFER_CAPACITY: usize = 1024;

/// The smallest record limit [`EncoderLimits`] accepts.
#[doc(hidden)]
pub const MIN_MAX_RECORD_BYTES: usize = 128;

/// The scope name [`EncoderLimits::resource_room`] keeps room for.
pub(crate) const RESOURCE_ROOM_SCOPE_BYTES: usize = 128;

/// What [`EncoderLimits::resource_room`] keeps for the envelope besides the
/// resource: the lengths and tags of the request, a scope name of
/// 128 bytes and the record's framing.
#[doc(hidden)]
pub const RESOURCE_ROOM_ENVELOPE_BYTES: usize = 32 + RESOURCE_ROOM_SCOPE_BYTES;

/// Room a record's limit leaves in the buffer for the request's envelope
/// (resource, scope, lengths).
pub(super) const ENVELOPE_ROOM: usize = 512;

/// Deepest nesting of arrays and maps that is encoded; deeper values are
/// dropped and counted.
pub(super) const MAX_NESTING: usize = 16;

/// Room kept at the end of a record for `dropped_attributes_count` when
/// values had to be cut.
pub(super) const DROPPED_COUNT_ROOM: usize = 6;

/// Longest scope name written; longer names are cut.
pub(super) const MAX_SCOPE_NAME_BYTES: usize = 1024;

/// Why [`EncoderLimits::new`] refused a set of limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitsError(String);

impl fmt::Display for LimitsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for LimitsError {}

// === impl EncoderLimits ===

/// The size limits of a [`StatefulOtlpEncoder`](crate::encoder::StatefulOtlpEncoder).
///
/// # Examples
///
/// ```
/// use selftrace::{Destination, EncoderLimits, OtlpTracingLayer};
///
/// // 256 KiB requests, records of at most 32 KiB, string values cut past 1 KiB.
/// let limits = EncoderLimits::new(256 << 10, 32 << 10, 1024)?;
/// let layer = OtlpTracingLayer::builder(Destination::Console).with_limits(limits).build();
/// # drop(layer);
/// assert!(EncoderLimits::new(1024, 4096, 64).is_err()); // a record larger than a request
/// # Ok::<(), selftrace::encoder::LimitsError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncoderLimits {
    pub(super) buffer_capacity: usize,
    pub(super) max_record_bytes: usize,
    pub(super) max_value_bytes: usize,
}

impl Default for EncoderLimits {
    fn default() -> Self {
        Self {
            buffer_capacity: DEFAULT_BUFFER_CAPACITY,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
        }
    }
}

impl EncoderLimits {
    /// Limits with a buffer of `buffer_capacity` bytes, records of at most
    /// `max_record_bytes` and string values of at most `max_value_bytes`.
    ///
    /// # Errors
    ///
    /// When the buffer is below 1024 or above 256 MiB, the
    /// record limit is below 128 or leaves less than 512
    /// bytes of the buffer for the request envelope, or the value limit is
    /// zero.
    pub fn new(buffer_capacity: usize, max_record_bytes: usize, max_value_bytes: usize) -> Result<Self, LimitsError> {
        if !(MIN_BUFFER_CAPACITY..=(256 << 20)).contains(&buffer_capacity) {
            return Err(LimitsError(format!(
                "buffer capacity {buffer_capacity} is outside {MIN_BUFFER_CAPACITY}..=268435456 bytes"
            )));
        }
        if max_record_bytes < MIN_MAX_RECORD_BYTES || max_record_bytes + ENVELOPE_ROOM > buffer_capacity {
            return Err(LimitsError(format!(
                "record limit {max_record_bytes} must be at least {MIN_MAX_RECORD_BYTES} and at most the buffer capacity {buffer_capacity} less {ENVELOPE_ROOM}"
            )));
        }
        if max_value_bytes == 0 {
            return Err(LimitsError("value limit must be greater than zero".into()));
        }
        Ok(Self { buffer_capacity, max_record_bytes, max_value_bytes })
    }

    /// The most bytes an encoded resource may take so that a record at the
    /// record limit, under a scope name of up to
    /// 128 bytes, still fits a request: the buffer
    /// capacity less the record limit less
    /// 160 bytes. With a larger resource, such records
    /// are dropped as too large.
    pub fn resource_room(&self) -> usize {
        self.buffer_capacity.saturating_sub(self.max_record_bytes).saturating_sub(RESOURCE_ROOM_ENVELOPE_BYTES)
    }

    /// The buffer capacity: the largest request.
    #[inline]
    pub fn buffer_capacity(&self) -> usize {
        self.buffer_capacity
    }

    /// The largest encoded record.
    #[inline]
    pub fn max_record_bytes(&self) -> usize {
        self.max_record_bytes
    }

    /// The largest string value before truncation.
    #[inline]
    pub fn max_value_bytes(&self) -> usize {
        self.max_value_bytes
    }
}
