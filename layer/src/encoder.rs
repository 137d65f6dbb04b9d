//! A bounded, stateful OTLP logs encoder.
//!
//! [`StatefulOtlpEncoder`] writes an `ExportLogsServiceRequest` in protobuf
//! wire format straight into one buffer, one record at a time:
//!
//! ```text
//! ExportLogsServiceRequest
//! └─ resource_logs [tag][len: container placeholder]
//!    ├─ resource          (pre-encoded once, copied per request)
//!    ├─ scope_logs [tag][len: container placeholder]   scope "a"
//!    │  ├─ scope { name }
//!    │  ├─ log_records [tag][len: record placeholder] ...
//!    │  └─ log_records ...
//!    └─ scope_logs ...                                  scope "b"
//! ```
//!
//! Lengths that are not known in advance are written as padded varints (a
//! varint with continuation bits set on its leading bytes, which every
//! protobuf decoder accepts) and patched when the message closes. A record's
//! placeholder is as wide as its limit needs: 2 bytes hold 16383, which is why
//! [`DEFAULT_MAX_RECORD_BYTES`] is 16383 and not 16384.
//!
//! # Bounds
//!
//! * A request never exceeds the buffer capacity
//!   ([`DEFAULT_BUFFER_CAPACITY`]); a record that does not fit returns
//!   [`EncodeError::BufferFull`] and leaves the buffer exactly as it was.
//! * A record never exceeds the record limit. A string or `Debug` value longer
//!   than the value limit, or than what is left of the record, is cut at a
//!   UTF-8 boundary and ends with [`TRUNCATION_MARKER`]; a value that cannot
//!   fit even cut is left out. Both count in the record's
//!   `dropped_attributes_count`.
//! * Errors are values; nothing here panics.
//!
//! # Memory
//!
//! Records are written into a buffer of exactly the buffer capacity,
//! allocated once and never grown. [`flush`] copies the finished request
//! into a hand-off block (a `BytesMut`) and splits it off as `Bytes` that
//! share the block; the next request goes after it. When the block is full
//! the encoder reclaims it whole if every request split off it has been
//! dropped, and otherwise takes a fresh block of the buffer capacity. A
//! consumer that keeps up therefore costs no allocation at all, and a slow one
//! one allocation per block, not per request. Per encoder: the buffer plus at
//! most one block; each request in flight keeps its block alive.
//!
//! [`flush`]: StatefulOtlpEncoder::flush

use std::{error::Error, fmt, ops::Range};

use bytes::{Bytes, BytesMut};

use crate::view::{AnyValue, LogRecordView, RecordVisitor};

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
pub const MIN_BUFFER_CAPACITY: usize = 1024;

/// The smallest record limit [`EncoderLimits`] accepts.
pub const MIN_MAX_RECORD_BYTES: usize = 128;

/// Room kept for the request envelope (resource, scope) beyond one record.
const ENVELOPE_ROOM: usize = 512;

/// Deepest nesting of arrays and maps that is encoded; deeper values are
/// dropped and counted.
const MAX_NESTING: usize = 16;

/// Room kept at the end of a record for `dropped_attributes_count` when
/// values had to be cut.
const DROPPED_COUNT_ROOM: usize = 6;

/// Longest scope name written; longer names are cut.
const MAX_SCOPE_NAME_BYTES: usize = 1024;

// Wire tags: (field << 3) | wire type.
mod tag {
    pub(super) const REQUEST_RESOURCE_LOGS: u8 = 0x0A;
    pub(super) const RESOURCE_LOGS_RESOURCE: u8 = 0x0A;
    pub(super) const RESOURCE_LOGS_SCOPE_LOGS: u8 = 0x12;
    pub(super) const RESOURCE_ATTRIBUTES: u8 = 0x0A;
    pub(super) const SCOPE_LOGS_SCOPE: u8 = 0x0A;
    pub(super) const SCOPE_LOGS_LOG_RECORDS: u8 = 0x12;
    pub(super) const SCOPE_NAME: u8 = 0x0A;
    pub(super) const LOG_TIME: u8 = 0x09;
    pub(super) const LOG_SEVERITY_NUMBER: u8 = 0x10;
    pub(super) const LOG_SEVERITY_TEXT: u8 = 0x1A;
    pub(super) const LOG_BODY: u8 = 0x2A;
    pub(super) const LOG_ATTRIBUTES: u8 = 0x32;
    pub(super) const LOG_DROPPED_ATTRIBUTES: u8 = 0x38;
    pub(super) const LOG_FLAGS: u8 = 0x45;
    pub(super) const LOG_TRACE_ID: u8 = 0x4A;
    pub(super) const LOG_SPAN_ID: u8 = 0x52;
    pub(super) const LOG_OBSERVED_TIME: u8 = 0x59;
    pub(super) const LOG_EVENT_NAME: u8 = 0x62;
    pub(super) const KV_KEY: u8 = 0x0A;
    pub(super) const KV_VALUE: u8 = 0x12;
    pub(super) const ANY_STRING: u8 = 0x0A;
    pub(super) const ANY_BOOL: u8 = 0x10;
    pub(super) const ANY_INT: u8 = 0x18;
    pub(super) const ANY_DOUBLE: u8 = 0x21;
    pub(super) const ANY_ARRAY: u8 = 0x2A;
    pub(super) const ANY_KVLIST: u8 = 0x32;
    pub(super) const ANY_BYTES: u8 = 0x3A;
    pub(super) const ARRAY_VALUES: u8 = 0x0A;
    pub(super) const KVLIST_VALUES: u8 = 0x0A;
}

// === impl OtlpBytes ===

/// One complete OTLP `ExportLogsServiceRequest` in protobuf bytes.
///
/// It can be POSTed unchanged to an OTLP/HTTP `/v1/logs` endpoint with
/// `Content-Type: application/x-protobuf`. Cloning is cheap (a reference
/// count).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OtlpBytes(Bytes);

impl OtlpBytes {
    /// Wraps bytes that claim to hold an `ExportLogsServiceRequest`.
    ///
    /// Nothing is checked: readers of `OtlpBytes` must treat the content as
    /// untrusted.
    pub fn from_bytes(bytes: Bytes) -> Self {
        Self(bytes)
    }

    /// The encoded request.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The encoded request as `Bytes`.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the request is empty (holds no record).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl AsRef<[u8]> for OtlpBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<OtlpBytes> for Bytes {
    fn from(value: OtlpBytes) -> Self {
        value.0
    }
}

impl fmt::Debug for OtlpBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpBytes").field("len", &self.0.len()).finish()
    }
}

// === impl EncodeError ===

/// Why a record was not encoded. The buffer is unchanged in both cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The record does not fit in what is left of the buffer: flush and
    /// retry. Only returned while the buffer holds at least one record.
    BufferFull,
    /// The record cannot be encoded even into an empty buffer.
    RecordTooLarge,
}

impl EncodeError {
    /// Whether flushing and retrying can succeed.
    pub fn is_buffer_full(&self) -> bool {
        matches!(self, EncodeError::BufferFull)
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::BufferFull => f.write_str("encoder buffer is full"),
            EncodeError::RecordTooLarge => f.write_str("log record is larger than the encoder allows"),
        }
    }
}

impl Error for EncodeError {}

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

/// The size limits of a [`StatefulOtlpEncoder`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncoderLimits {
    buffer_capacity: usize,
    max_record_bytes: usize,
    max_value_bytes: usize,
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
    /// When the buffer is below [`MIN_BUFFER_CAPACITY`] or above 256 MiB, the
    /// record limit is below [`MIN_MAX_RECORD_BYTES`] or leaves less than 512
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

    /// The buffer capacity: the largest request.
    pub fn buffer_capacity(&self) -> usize {
        self.buffer_capacity
    }

    /// The largest encoded record.
    pub fn max_record_bytes(&self) -> usize {
        self.max_record_bytes
    }

    /// The largest string value before truncation.
    pub fn max_value_bytes(&self) -> usize {
        self.max_value_bytes
    }
}

// === impl OtlpResource ===

/// An OTLP `Resource`, encoded once and copied into every request.
///
/// # Examples
///
/// ```
/// use selftrace::OtlpResource;
///
/// let resource = OtlpResource::builder()
///     .with_attribute("service.name", "engine")
///     .with_attribute("service.instance.id", 7_i64)
///     .build();
/// assert!(!resource.is_empty());
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OtlpResource {
    encoded: Bytes,
}

impl fmt::Debug for OtlpResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpResource").field("encoded_len", &self.encoded.len()).finish()
    }
}

impl OtlpResource {
    /// A builder for a resource.
    pub fn builder() -> OtlpResourceBuilder {
        OtlpResourceBuilder::default()
    }

    /// Whether the resource has no attribute.
    pub fn is_empty(&self) -> bool {
        self.encoded.is_empty()
    }

    /// The encoded `Resource` message.
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }
}

/// A resource attribute value owned by an [`OtlpResourceBuilder`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ResourceValue {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A double.
    Double(f64),
    /// A boolean.
    Bool(bool),
}

impl From<&str> for ResourceValue {
    fn from(value: &str) -> Self {
        ResourceValue::Str(value.to_owned())
    }
}
impl From<String> for ResourceValue {
    fn from(value: String) -> Self {
        ResourceValue::Str(value)
    }
}
impl From<i64> for ResourceValue {
    fn from(value: i64) -> Self {
        ResourceValue::Int(value)
    }
}
impl From<f64> for ResourceValue {
    fn from(value: f64) -> Self {
        ResourceValue::Double(value)
    }
}
impl From<bool> for ResourceValue {
    fn from(value: bool) -> Self {
        ResourceValue::Bool(value)
    }
}

/// Builds an [`OtlpResource`].
#[derive(Clone, Debug, Default)]
pub struct OtlpResourceBuilder {
    attributes: Vec<(String, ResourceValue)>,
}

impl OtlpResourceBuilder {
    /// Adds an attribute; a later value for the same key replaces the earlier.
    pub fn with_attribute(mut self, key: impl Into<String>, value: impl Into<ResourceValue>) -> Self {
        let key = key.into();
        let value = value.into();
        match self.attributes.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.attributes.push((key, value)),
        }
        self
    }

    /// Whether an attribute with `key` was added.
    pub fn has_attribute(&self, key: &str) -> bool {
        self.attributes.iter().any(|(k, _)| k == key)
    }

    /// Encodes the resource, with `service.name` set to `unknown_service`
    /// when no `service.name` was added (what OpenTelemetry SDKs do).
    pub(crate) fn build_for_service(self) -> OtlpResource {
        if self.has_attribute("service.name") { self } else { self.with_attribute("service.name", "unknown_service") }
            .build()
    }

    /// Encodes the resource.
    pub fn build(self) -> OtlpResource {
        let mut out = Out::unbounded();
        for (key, value) in &self.attributes {
            let value = match value {
                ResourceValue::Str(s) => AnyValue::Str(s),
                ResourceValue::Int(i) => AnyValue::Int(*i),
                ResourceValue::Double(d) => AnyValue::Double(*d),
                ResourceValue::Bool(b) => AnyValue::Bool(*b),
            };
            // An unbounded `Out` with an unbounded value limit cannot overflow.
            let _ = out.put_key_value(tag::RESOURCE_ATTRIBUTES, key, value, usize::MAX, 0);
        }
        OtlpResource { encoded: Bytes::from(out.buf) }
    }
}

// === impl Out ===

/// Which bound a write crossed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Overflow {
    /// The record's own limit: degrade the value (truncate or drop it).
    Record,
    /// The request's capacity: abort the record, the caller may flush.
    Request,
}

/// The buffer plus the two bounds every write is checked against.
#[derive(Debug)]
struct Out {
    /// Never reallocates while a request is encoded: every write is checked
    /// against `request_end`, which is at most its capacity.
    buf: Vec<u8>,
    /// Writes may not end past this index (the request capacity).
    request_end: usize,
    /// Writes may not end past this index (the current record's limit).
    record_end: usize,
    /// `min(request_end, record_end)`: the one bound the fast path checks.
    end: usize,
    /// Placeholder width for lengths inside a record.
    record_width: usize,
}

impl Out {
    fn unbounded() -> Self {
        Self { buf: Vec::new(), request_end: usize::MAX, record_end: usize::MAX, end: usize::MAX, record_width: 5 }
    }

    #[inline(always)]
    fn check(&self, n: usize) -> Result<(), Overflow> {
        if self.buf.len() + n <= self.end { Ok(()) } else { Err(self.overflow(n)) }
    }

    /// Which bound a write of `n` bytes crosses: the record's own limit wins,
    /// since flushing cannot help it.
    #[cold]
    fn overflow(&self, n: usize) -> Overflow {
        if self.buf.len().saturating_add(n) > self.record_end { Overflow::Record } else { Overflow::Request }
    }

    #[inline(always)]
    fn set_record_end(&mut self, record_end: usize) {
        self.record_end = record_end;
        self.end = self.request_end.min(record_end);
    }

    #[inline]
    fn put_slice(&mut self, bytes: &[u8]) -> Result<(), Overflow> {
        self.check(bytes.len())?;
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    #[inline]
    fn put_tag_varint(&mut self, tag: u8, value: u64) -> Result<(), Overflow> {
        self.check(1 + varint_len(value))?;
        self.buf.push(tag);
        put_varint(&mut self.buf, value);
        Ok(())
    }

    #[inline]
    fn put_tag_fixed64(&mut self, tag: u8, value: u64) -> Result<(), Overflow> {
        self.check(9)?;
        self.buf.push(tag);
        self.buf.extend_from_slice(&value.to_le_bytes());
        Ok(())
    }

    #[inline]
    fn put_tag_fixed32(&mut self, tag: u8, value: u32) -> Result<(), Overflow> {
        self.check(5)?;
        self.buf.push(tag);
        self.buf.extend_from_slice(&value.to_le_bytes());
        Ok(())
    }

    /// A length-delimited field whose content is known.
    #[inline]
    fn put_bytes_field(&mut self, tag: u8, bytes: &[u8]) -> Result<(), Overflow> {
        self.check(1 + varint_len(bytes.len() as u64) + bytes.len())?;
        self.buf.push(tag);
        put_varint(&mut self.buf, bytes.len() as u64);
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// Opens a length-delimited field whose length is patched by [`Out::close`].
    #[inline]
    fn open(&mut self, tag: u8, width: usize) -> Result<usize, Overflow> {
        self.check(1 + width)?;
        self.buf.push(tag);
        let at = self.buf.len();
        for _ in 0..width {
            self.buf.push(0);
        }
        Ok(at)
    }

    /// Patches the length of the field opened at `at` with `width` bytes.
    #[inline]
    fn close(&mut self, at: usize, width: usize) {
        let len = self.buf.len().saturating_sub(at + width);
        if let Some(slot) = self.buf.get_mut(at..at + width) {
            write_padded_varint(slot, len as u64);
        }
    }

    /// Runs `write`; a value that crossed the record's limit is rolled back
    /// and reported as cut (`Ok(true)`), so the caller goes on with the next
    /// one. A request overflow is passed up: the whole record must go.
    #[inline]
    fn degrade(&mut self, write: impl FnOnce(&mut Out) -> Result<bool, Overflow>) -> Result<bool, Overflow> {
        let mark = self.buf.len();
        match write(self) {
            Err(Overflow::Record) => {
                self.buf.truncate(mark);
                Ok(true)
            }
            other => other,
        }
    }

    /// A string field cut to `max` bytes and to the record's room, with the
    /// truncation marker. Returns whether it was cut.
    fn put_string_field(&mut self, tag: u8, s: &str, max: usize) -> Result<bool, Overflow> {
        if s.len() <= max {
            match self.put_bytes_field(tag, s.as_bytes()) {
                Err(Overflow::Record) => {}
                other => return other.map(|()| false),
            }
        }
        let mut sink = self.open_str(tag, max)?;
        // An error only means the sink stopped at its bound; `finish` says which.
        let _ = fmt::Write::write_str(&mut sink, s);
        sink.finish()
    }

    /// A string field written through `Debug`, cut like [`put_string_field`].
    ///
    /// [`put_string_field`]: Out::put_string_field
    fn put_fmt_field(&mut self, tag: u8, value: &dyn fmt::Debug, max: usize) -> Result<bool, Overflow> {
        let mut sink = self.open_str(tag, max)?;
        // An error only means the sink stopped at its bound; `finish` says which.
        let _ = fmt::write(&mut sink, format_args!("{value:?}"));
        sink.finish()
    }

    fn open_str(&mut self, tag: u8, max: usize) -> Result<StrSink<'_>, Overflow> {
        let width = self.record_width;
        let at = self.open(tag, width)?;
        let start = self.buf.len();
        let hard_end = start.saturating_add(max).min(self.record_end);
        Ok(StrSink { out: self, at, width, start, hard_end, cut: false, request_overflow: false })
    }

    /// `KeyValue { key, value }` as field `tag`. Returns whether anything was
    /// cut or dropped inside the value.
    fn put_key_value(
        &mut self,
        tag: u8,
        key: &str,
        value: AnyValue<'_>,
        max_value: usize,
        depth: usize,
    ) -> Result<bool, Overflow> {
        // Fast path: scalar and short-string values have lengths known up front.
        if let Some(any_len) = scalar_any_value_len(value, max_value) {
            let kv_len = 1 + varint_len(key.len() as u64) + key.len() + 1 + varint_len(any_len as u64) + any_len;
            match self.check(1 + varint_len(kv_len as u64) + kv_len) {
                Ok(()) => {
                    self.buf.push(tag);
                    put_varint(&mut self.buf, kv_len as u64);
                    self.buf.push(tag::KV_KEY);
                    put_varint(&mut self.buf, key.len() as u64);
                    self.buf.extend_from_slice(key.as_bytes());
                    self.buf.push(tag::KV_VALUE);
                    put_varint(&mut self.buf, any_len as u64);
                    put_scalar_any_value(&mut self.buf, value);
                    return Ok(false);
                }
                Err(Overflow::Request) => return Err(Overflow::Request),
                Err(Overflow::Record) => {} // fall through: the value may be cut
            }
        }
        let width = self.record_width;
        let at = self.open(tag, width)?;
        self.put_bytes_field(tag::KV_KEY, key.as_bytes())?;
        let cut = self.put_any_value_field(tag::KV_VALUE, value, max_value, depth)?;
        self.close(at, width);
        Ok(cut)
    }

    /// `AnyValue` as field `tag`. Returns whether anything was cut or dropped.
    fn put_any_value_field(
        &mut self,
        tag: u8,
        value: AnyValue<'_>,
        max_value: usize,
        depth: usize,
    ) -> Result<bool, Overflow> {
        if let Some(len) = scalar_any_value_len(value, max_value) {
            match self.check(1 + varint_len(len as u64) + len) {
                Ok(()) => {
                    self.buf.push(tag);
                    put_varint(&mut self.buf, len as u64);
                    put_scalar_any_value(&mut self.buf, value);
                    return Ok(false);
                }
                Err(Overflow::Request) => return Err(Overflow::Request),
                Err(Overflow::Record) => {}
            }
        }
        if depth >= MAX_NESTING {
            return Err(Overflow::Record);
        }
        let width = self.record_width;
        let at = self.open(tag, width)?;
        let cut = match value {
            AnyValue::Str(s) => self.put_string_field(tag::ANY_STRING, s, max_value)?,
            AnyValue::Fmt(v) => self.put_fmt_field(tag::ANY_STRING, v, max_value)?,
            AnyValue::Bytes(b) if b.len() <= max_value => {
                self.put_bytes_field(tag::ANY_BYTES, b)?;
                false
            }
            AnyValue::Bytes(_) => return Err(Overflow::Record),
            AnyValue::Array(array) => {
                let inner = self.open(tag::ANY_ARRAY, width)?;
                let mut cut = Ok(false);
                array.visit_values(&mut |item| {
                    if let Ok(any_cut) = cut {
                        cut = self
                            .degrade(|out| out.put_any_value_field(tag::ARRAY_VALUES, item, max_value, depth + 1))
                            .map(|c| any_cut | c);
                    }
                });
                let cut = cut?;
                self.close(inner, width);
                cut
            }
            AnyValue::Map(map) => {
                let inner = self.open(tag::ANY_KVLIST, width)?;
                let mut cut = Ok(false);
                map.visit_entries(&mut |key, item| {
                    if let Ok(any_cut) = cut {
                        cut = self
                            .degrade(|out| out.put_key_value(tag::KVLIST_VALUES, key, item, max_value, depth + 1))
                            .map(|c| any_cut | c);
                    }
                });
                let cut = cut?;
                self.close(inner, width);
                cut
            }
            // Scalars only reach here when they did not fit the record.
            AnyValue::Bool(_) | AnyValue::Int(_) | AnyValue::Double(_) => return Err(Overflow::Record),
        };
        self.close(at, width);
        Ok(cut)
    }
}

/// The encoded length of an `AnyValue` message whose size is known without
/// writing it, or `None` for values that need placeholders.
#[inline(always)]
fn scalar_any_value_len(value: AnyValue<'_>, max_value: usize) -> Option<usize> {
    match value {
        AnyValue::Str(s) if s.len() <= max_value => Some(1 + varint_len(s.len() as u64) + s.len()),
        AnyValue::Bool(_) => Some(2),
        AnyValue::Int(i) => Some(1 + varint_len(i as u64)),
        AnyValue::Double(_) => Some(9),
        AnyValue::Bytes(b) if b.len() <= max_value => Some(1 + varint_len(b.len() as u64) + b.len()),
        _ => None,
    }
}

/// Writes a value accepted by [`scalar_any_value_len`]; capacity was checked.
#[inline(always)]
fn put_scalar_any_value(buf: &mut Vec<u8>, value: AnyValue<'_>) {
    match value {
        AnyValue::Str(s) => {
            buf.push(tag::ANY_STRING);
            put_varint(buf, s.len() as u64);
            buf.extend_from_slice(s.as_bytes());
        }
        AnyValue::Bool(b) => {
            buf.push(tag::ANY_BOOL);
            buf.push(u8::from(b));
        }
        AnyValue::Int(i) => {
            buf.push(tag::ANY_INT);
            put_varint(buf, i as u64);
        }
        AnyValue::Double(d) => {
            buf.push(tag::ANY_DOUBLE);
            buf.extend_from_slice(&d.to_le_bytes());
        }
        AnyValue::Bytes(b) => {
            buf.push(tag::ANY_BYTES);
            put_varint(buf, b.len() as u64);
            buf.extend_from_slice(b);
        }
        AnyValue::Fmt(_) | AnyValue::Array(_) | AnyValue::Map(_) => {}
    }
}

// === impl StrSink ===

/// A `fmt::Write` into an open string field that stops at its bound.
struct StrSink<'o> {
    out: &'o mut Out,
    at: usize,
    width: usize,
    start: usize,
    hard_end: usize,
    cut: bool,
    request_overflow: bool,
}

impl fmt::Write for StrSink<'_> {
    fn write_str(&mut self, piece: &str) -> fmt::Result {
        if self.cut || self.request_overflow {
            return Err(fmt::Error);
        }
        let len = self.out.buf.len();
        let room = self.hard_end.saturating_sub(len);
        let take = piece.len().min(room);
        if len + take > self.out.request_end {
            self.request_overflow = true;
            return Err(fmt::Error);
        }
        // Bytes, not `&piece[..take]`: the cut may split a character; `finish`
        // moves it back to a boundary.
        self.out.buf.extend_from_slice(piece.as_bytes().get(..take).unwrap_or_default());
        if take < piece.len() {
            self.cut = true;
            return Err(fmt::Error);
        }
        Ok(())
    }
}

impl StrSink<'_> {
    fn finish(self) -> Result<bool, Overflow> {
        if self.request_overflow {
            return Err(Overflow::Request);
        }
        if self.cut {
            let Some(mut cut) = self.hard_end.checked_sub(TRUNCATION_MARKER.len()) else {
                return Err(Overflow::Record);
            };
            if cut < self.start {
                return Err(Overflow::Record);
            }
            // Step back over UTF-8 continuation bytes to a character boundary.
            while cut > self.start && self.out.buf.get(cut).is_some_and(|b| b & 0xC0 == 0x80) {
                cut -= 1;
            }
            self.out.buf.truncate(cut);
            self.out.buf.extend_from_slice(TRUNCATION_MARKER.as_bytes());
        }
        self.out.close(self.at, self.width);
        Ok(self.cut)
    }
}

// === impl StatefulOtlpEncoder ===

/// The open `ScopeLogs` of the current request.
#[derive(Debug, Clone)]
struct OpenScope {
    /// Where its length placeholder starts.
    at: usize,
    /// Where its name sits in the buffer, to match the next record's scope.
    /// Its records start right after it.
    name: Range<usize>,
    /// Records written into it.
    records: usize,
}

/// One record being appended: rolled back when dropped before `commit`
/// (an overflow, or a panic in a value's `Debug` while unwinding).
struct Attempt<'e> {
    encoder: &'e mut StatefulOtlpEncoder,
    mark: usize,
    saved: (Option<usize>, Option<OpenScope>),
    committed: bool,
}

impl<'e> Attempt<'e> {
    fn new(encoder: &'e mut StatefulOtlpEncoder) -> Self {
        let mark = encoder.out.buf.len();
        let saved = (encoder.resource_logs, encoder.scope.clone());
        Self { encoder, mark, saved, committed: false }
    }

    fn commit(mut self) {
        self.committed = true;
        self.encoder.records += 1;
        if let Some(scope) = &mut self.encoder.scope {
            scope.records += 1;
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        let encoder = &mut *self.encoder;
        encoder.out.set_record_end(usize::MAX);
        if encoder.records == 0 {
            // Nothing to keep: drop the warm envelope too.
            encoder.clear();
        } else {
            encoder.out.buf.truncate(self.mark);
            (encoder.resource_logs, encoder.scope) = std::mem::take(&mut self.saved);
        }
    }
}

/// Encodes log records into one bounded `ExportLogsServiceRequest`.
///
/// Records are written straight into a buffer whose capacity is fixed by
/// [`EncoderLimits`]; a record that does not fit is rolled back whole
/// ([`EncodeError`]), one oversize value is cut and counted instead.
///
/// # Examples
///
/// ```
/// use selftrace::{AnyValue, LogRecordView, RecordVisitor, Severity, StatefulOtlpEncoder};
///
/// struct Hello;
/// impl LogRecordView for Hello {
///     fn time_unix_nano(&self) -> Option<u64> { Some(1) }
///     fn observed_time_unix_nano(&self) -> Option<u64> { Some(1) }
///     fn severity(&self) -> Option<Severity> { Some(Severity::INFO) }
///     fn event_name(&self) -> Option<&str> { None }
///     fn visit(&self, v: &mut dyn RecordVisitor) { v.visit_body(AnyValue::Str("hello")) }
/// }
///
/// let mut encoder = StatefulOtlpEncoder::new();
/// encoder.encode_log_record("my.scope", &Hello)?;
/// encoder.encode_log_record("my.scope", &Hello)?; // same ScopeLogs
/// assert_eq!(encoder.record_count(), 2);
/// let request = encoder.flush();
/// assert!(!request.is_empty());
/// assert!(encoder.is_empty());
/// # Ok::<(), selftrace::EncodeError>(())
/// ```
#[derive(Debug)]
pub struct StatefulOtlpEncoder {
    out: Out,
    limits: EncoderLimits,
    resource: OtlpResource,
    /// Where flushed requests live: each is copied here once and split off
    /// as `Bytes` sharing the block.
    arena: BytesMut,
    /// Placeholder width for ResourceLogs and ScopeLogs lengths.
    container_width: usize,
    /// Where the ResourceLogs length placeholder starts, once opened.
    resource_logs: Option<usize>,
    /// Where the first ScopeLogs starts (right after the resource).
    resource_end: usize,
    scope: Option<OpenScope>,
    records: usize,
}

impl Default for StatefulOtlpEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl StatefulOtlpEncoder {
    /// An encoder with the default limits and an empty resource.
    pub fn new() -> Self {
        Self::with_limits(EncoderLimits::default(), OtlpResource::default())
    }

    /// An encoder with `limits`, writing `resource` into every request.
    ///
    /// Allocates the buffer (the buffer capacity) once.
    pub fn with_limits(limits: EncoderLimits, resource: OtlpResource) -> Self {
        Self {
            out: Out {
                buf: Vec::with_capacity(limits.buffer_capacity),
                request_end: limits.buffer_capacity,
                record_end: usize::MAX,
                end: limits.buffer_capacity,
                record_width: varint_len(limits.max_record_bytes as u64),
            },
            container_width: varint_len(limits.buffer_capacity as u64),
            limits,
            resource,
            arena: BytesMut::new(),
            resource_logs: None,
            resource_end: 0,
            scope: None,
            records: 0,
        }
    }

    /// The limits this encoder enforces.
    pub fn limits(&self) -> EncoderLimits {
        self.limits
    }

    /// Records in the current request.
    pub fn record_count(&self) -> usize {
        self.records
    }

    /// Bytes in the current request (0 without records).
    pub fn len(&self) -> usize {
        if self.records == 0 { 0 } else { self.out.buf.len() }
    }

    /// Whether the current request holds no record.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Appends one record under the instrumentation scope `scope_name`.
    ///
    /// Consecutive records with the same scope share one `ScopeLogs`. On
    /// success returns how many values were cut or left out to respect the
    /// limits (also written as the record's `dropped_attributes_count`).
    ///
    /// Cost: no allocation while the buffer block has room (see the module
    /// docs); values are formatted straight into the buffer.
    ///
    /// # Errors
    ///
    /// [`EncodeError::BufferFull`] when the record does not fit what is left
    /// of the request (flush, then retry); [`EncodeError::RecordTooLarge`]
    /// when it cannot fit even an empty request. In both cases the buffer is
    /// unchanged.
    pub fn encode_log_record(
        &mut self,
        scope_name: &str,
        record: &(impl LogRecordView + ?Sized),
    ) -> Result<u32, EncodeError> {
        // Rolls the buffer back if a value's `Debug` panics mid-record, so
        // the records already buffered stay a valid request.
        let attempt = Attempt::new(self);
        match attempt.encoder.try_encode(scope_name, record) {
            Ok(dropped) => {
                attempt.commit();
                Ok(dropped)
            }
            Err(overflow) => {
                let buffered = attempt.encoder.records > 0;
                drop(attempt);
                if overflow == Overflow::Request && buffered {
                    Err(EncodeError::BufferFull)
                } else {
                    Err(EncodeError::RecordTooLarge)
                }
            }
        }
    }

    /// Closes the current request and returns it; the encoder is then empty
    /// and ready for the next request. Returns empty bytes when there was no
    /// record.
    ///
    /// Cost: patches two lengths and copies the request once into the
    /// hand-off block; no allocation while the block has room or can be
    /// reclaimed.
    pub fn flush(&mut self) -> OtlpBytes {
        if self.records == 0 {
            return OtlpBytes::default();
        }
        if let Some(scope) = &self.scope {
            self.out.close(scope.at, self.container_width);
        }
        if let Some(at) = self.resource_logs {
            self.out.close(at, self.container_width);
        }
        self.records = 0;
        let len = self.out.buf.len();
        if self.arena.capacity() < len {
            // Reclaims the block when every request split off it is gone,
            // else takes a fresh one.
            self.arena.reserve(len.max(self.limits.buffer_capacity));
        }
        self.arena.extend_from_slice(&self.out.buf);
        // Keep the envelope (the resource and the last scope's header, moved
        // down next to it) for the next request: a next record of the same
        // scope starts right after it.
        match &mut self.scope {
            Some(scope) => {
                let header = scope.at - 1..scope.name.end;
                let shift = header.start - self.resource_end;
                if shift > 0 {
                    self.out.buf.copy_within(header, self.resource_end);
                    scope.at -= shift;
                    scope.name = scope.name.start - shift..scope.name.end - shift;
                }
                scope.records = 0;
                self.out.buf.truncate(scope.name.end);
            }
            None => self.clear(),
        }
        OtlpBytes(self.arena.split().freeze())
    }

    /// Drops the current request.
    pub fn clear(&mut self) {
        self.out.buf.clear();
        self.resource_logs = None;
        self.scope = None;
        self.records = 0;
    }

    /// Closes the open scope; one left without records (kept from the last
    /// request) is removed instead.
    fn close_scope(&mut self) {
        if let Some(scope) = self.scope.take() {
            if scope.records == 0 {
                self.out.buf.truncate(scope.at - 1);
            } else {
                self.out.close(scope.at, self.container_width);
            }
        }
    }

    fn try_encode(&mut self, scope_name: &str, record: &(impl LogRecordView + ?Sized)) -> Result<u32, Overflow> {
        // Envelope writes are bounded by the request only.
        self.out.set_record_end(usize::MAX);
        if self.resource_logs.is_none() {
            let at = self.out.open(tag::REQUEST_RESOURCE_LOGS, self.container_width)?;
            self.out.put_bytes_field(tag::RESOURCE_LOGS_RESOURCE, self.resource.encoded())?;
            self.resource_logs = Some(at);
            self.resource_end = self.out.buf.len();
        }
        let same_scope =
            self.scope.as_ref().is_some_and(|s| self.out.buf.get(s.name.clone()) == Some(scope_name.as_bytes()));
        if !same_scope {
            self.close_scope();
            let at = self.out.open(tag::RESOURCE_LOGS_SCOPE_LOGS, self.container_width)?;
            let name = truncate_at_char_boundary(scope_name, MAX_SCOPE_NAME_BYTES);
            let scope_len = 1 + varint_len(name.len() as u64) + name.len();
            self.out.put_tag_varint(tag::SCOPE_LOGS_SCOPE, scope_len as u64)?;
            self.out.put_tag_varint(tag::SCOPE_NAME, name.len() as u64)?;
            let start = self.out.buf.len();
            self.out.put_slice(name.as_bytes())?;
            self.scope = Some(OpenScope { at, name: start..start + name.len(), records: 0 });
        }

        let width = self.out.record_width;
        let at = self.out.open(tag::SCOPE_LOGS_LOG_RECORDS, width)?;
        let record_start = self.out.buf.len();
        let record_limit = record_start + self.limits.max_record_bytes;
        // First pass against the whole limit. Only if something had to be cut
        // and its count no longer fits is the record written again with room
        // kept for the count, so a record of exactly the limit stays whole.
        let mut dropped = self.write_record(record, record_limit)?;
        if dropped > 0 && self.out.check(1 + varint_len(u64::from(dropped))).is_err() {
            self.out.buf.truncate(record_start);
            dropped = self.write_record(record, record_limit - DROPPED_COUNT_ROOM)?;
        }
        self.out.set_record_end(record_limit);
        if dropped > 0 {
            self.out.put_tag_varint(tag::LOG_DROPPED_ATTRIBUTES, u64::from(dropped))?;
        }
        self.out.close(at, width);
        self.out.set_record_end(usize::MAX);
        Ok(dropped)
    }

    /// Writes the fields of `record` up to `end`; returns the values cut or
    /// left out.
    fn write_record(&mut self, record: &(impl LogRecordView + ?Sized), end: usize) -> Result<u32, Overflow> {
        self.out.set_record_end(end);
        let max_value = self.limits.max_value_bytes;
        if let Some(t) = record.time_unix_nano() {
            self.out.put_tag_fixed64(tag::LOG_TIME, t)?;
        }
        if let Some(t) = record.observed_time_unix_nano() {
            self.out.put_tag_fixed64(tag::LOG_OBSERVED_TIME, t)?;
        }
        if let Some(severity) = record.severity() {
            self.out.put_tag_varint(tag::LOG_SEVERITY_NUMBER, severity.number() as u64)?;
        }
        let mut dropped = record.dropped_attributes_count();
        if let Some(text) = record.severity_text() {
            dropped += u32::from(self.out.put_string_field(tag::LOG_SEVERITY_TEXT, text, max_value)?);
        }
        if let Some(name) = record.event_name() {
            dropped += u32::from(self.out.put_string_field(tag::LOG_EVENT_NAME, name, max_value)?);
        }
        if let Some(cx) = record.trace_context() {
            self.out.put_bytes_field(tag::LOG_TRACE_ID, &cx.trace_id)?;
            self.out.put_bytes_field(tag::LOG_SPAN_ID, &cx.span_id)?;
            self.out.put_tag_fixed32(tag::LOG_FLAGS, u32::from(cx.flags))?;
        }
        let mut fields = FieldWriter { out: &mut self.out, max_value, dropped: 0, abort: false };
        record.visit(&mut fields);
        if fields.abort {
            return Err(Overflow::Request);
        }
        Ok(dropped.saturating_add(fields.dropped))
    }
}

/// Writes the body and attributes a view visits, degrading values that do not
/// fit and remembering a request overflow.
struct FieldWriter<'o> {
    out: &'o mut Out,
    max_value: usize,
    dropped: u32,
    abort: bool,
}

impl FieldWriter<'_> {
    fn field(&mut self, write: impl FnOnce(&mut Out) -> Result<bool, Overflow>) {
        if self.abort {
            return;
        }
        match self.out.degrade(write) {
            Ok(cut) => self.dropped = self.dropped.saturating_add(u32::from(cut)),
            Err(_) => self.abort = true,
        }
    }
}

impl RecordVisitor for FieldWriter<'_> {
    fn visit_body(&mut self, body: AnyValue<'_>) {
        let max_value = self.max_value;
        let mark = self.out.buf.len();
        self.field(|out| out.put_any_value_field(tag::LOG_BODY, body, max_value, 0));
        // An empty string body is no body.
        if !self.abort && is_empty_string_any_value(self.out.buf.get(mark..).unwrap_or_default()) {
            self.out.buf.truncate(mark);
        }
    }

    fn visit_attribute(&mut self, key: &str, value: AnyValue<'_>) {
        let max_value = self.max_value;
        self.field(|out| out.put_key_value(tag::LOG_ATTRIBUTES, key, value, max_value, 0));
    }
}

/// Whether `field` is `body { string_value: "" }` (with any length widths).
fn is_empty_string_any_value(field: &[u8]) -> bool {
    // [tag][len varint...][0x0A][0 as varint, maybe padded]
    let Some((&tag, rest)) = field.split_first() else {
        return false;
    };
    if tag != tag::LOG_BODY {
        return false;
    }
    let Some((_len, rest)) = read_varint(rest) else {
        return false;
    };
    let Some((&inner, rest)) = rest.split_first() else {
        return false;
    };
    inner == tag::ANY_STRING && read_varint(rest).is_some_and(|(n, tail)| n == 0 && tail.is_empty())
}

fn read_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, bytes.get(i + 1..).unwrap_or_default()));
        }
    }
    None
}

// === wire helpers ===

/// Bytes needed for `value` as a minimal varint.
#[inline]
pub(crate) const fn varint_len(value: u64) -> usize {
    // ceil(bits / 7) without a division: (bits * 9 + 64) / 64 for 1..=64 bits.
    let bits = (64 - (value | 1).leading_zeros()) as usize;
    (bits * 9 + 64) >> 6
}

#[inline(always)]
fn put_varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

/// Writes `value` as a varint padded to exactly `slot.len()` bytes.
#[inline]
fn write_padded_varint(slot: &mut [u8], mut value: u64) {
    let last = slot.len().saturating_sub(1);
    for (i, byte) in slot.iter_mut().enumerate() {
        let mut b = (value & 0x7F) as u8;
        value >>= 7;
        if i < last {
            b |= 0x80;
        }
        *byte = b;
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character
/// boundary.
pub(crate) fn truncate_at_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_len_matches_encoding() {
        let boundaries = (0..64).flat_map(|bit| [(1u64 << bit) - 1, 1u64 << bit]);
        for v in boundaries.chain([u64::MAX]) {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            assert_eq!(buf.len(), varint_len(v), "{v}");
            assert_eq!(read_varint(&buf), Some((v, &[][..])));
        }
    }

    #[test]
    fn padded_varints_decode_to_their_value() {
        for (v, width) in [(0u64, 2), (127, 2), (128, 2), (16_383, 2), (65_535, 3)] {
            let mut slot = vec![0; width];
            write_padded_varint(&mut slot, v);
            assert_eq!(read_varint(&slot), Some((v, &[][..])), "{v} in {width}");
        }
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_at_char_boundary("héllo", 2), "h");
        assert_eq!(truncate_at_char_boundary("héllo", 3), "hé");
        assert_eq!(truncate_at_char_boundary("abc", 10), "abc");
    }

    #[test]
    fn limits_are_validated() {
        assert!(EncoderLimits::new(64 * 1024, 16_383, 8192).is_ok());
        assert!(EncoderLimits::new(100, 64, 10).is_err());
        assert!(EncoderLimits::new(4096, 4000, 10).is_err());
        assert!(EncoderLimits::new(4096, 1024, 0).is_err());
    }
}
