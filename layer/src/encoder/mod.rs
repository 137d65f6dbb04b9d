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
//! most one block; each request in flight keeps its block alive; plus the
//! encoded severity text and event name of at most 512
//! callsites ([`LogRecordView::callsite_id`]), each at most
//! 256 bytes, allocated once when the callsite is first seen.
//!
//! [`flush`]: StatefulOtlpEncoder::flush

mod bytes;
mod limits;
mod resource;
mod settings;
mod writer;

use std::{
    collections::{HashMap, hash_map::Entry},
    error::Error,
    fmt,
    hash::{BuildHasherDefault, Hasher},
    num::NonZeroUsize,
    ops::Range,
};

use ::bytes::BytesMut;

pub use self::{
    bytes::OtlpBytes,
    limits::{
        DEFAULT_BUFFER_CAPACITY, DEFAULT_MAX_RECORD_BYTES, DEFAULT_MAX_VALUE_BYTES, EncoderLimits, LimitsError,
        MIN_BUFFER_CAPACITY, MIN_MAX_RECORD_BYTES, RESOURCE_ROOM_ENVELOPE_BYTES, TRUNCATION_MARKER,
    },
    resource::{OtlpResource, OtlpResourceBuilder, ResourceValue},
    settings::EncoderSettings,
};
use self::{
    limits::{DROPPED_COUNT_ROOM, MAX_SCOPE_NAME_BYTES},
    writer::{Exceeded, Out, truncate_at_char_boundary},
};
use crate::{
    out::FieldWriter,
    view::{AnyValue, LogRecordView, PreEncoded, RecordVisitor},
    wire::varint_len,
};

// Wire tags, from the OTLP field table: `(field << 3) | wire type`.
pub(super) mod tag {
    use crate::wire::{I32, I64, LEN, VARINT, otlp::*, tag};

    pub(crate) const REQUEST_RESOURCE_LOGS: u8 = tag(request::RESOURCE_LOGS, LEN);
    pub(crate) const RESOURCE_LOGS_RESOURCE: u8 = tag(resource_logs::RESOURCE, LEN);
    pub(crate) const RESOURCE_LOGS_SCOPE_LOGS: u8 = tag(resource_logs::SCOPE_LOGS, LEN);
    pub(crate) const RESOURCE_ATTRIBUTES: u8 = tag(resource::ATTRIBUTES, LEN);
    pub(crate) const SCOPE_LOGS_SCOPE: u8 = tag(scope_logs::SCOPE, LEN);
    pub(crate) const SCOPE_LOGS_LOG_RECORDS: u8 = tag(scope_logs::LOG_RECORDS, LEN);
    pub(crate) const SCOPE_NAME: u8 = tag(scope::NAME, LEN);
    pub(crate) const LOG_TIME: u8 = tag(log_record::TIME_UNIX_NANO, I64);
    pub(crate) const LOG_SEVERITY_NUMBER: u8 = tag(log_record::SEVERITY_NUMBER, VARINT);
    pub(crate) const LOG_SEVERITY_TEXT: u8 = tag(log_record::SEVERITY_TEXT, LEN);
    pub(crate) const LOG_BODY: u8 = tag(log_record::BODY, LEN);
    pub(crate) const LOG_ATTRIBUTES: u8 = tag(log_record::ATTRIBUTES, LEN);
    pub(crate) const LOG_DROPPED_ATTRIBUTES: u8 = tag(log_record::DROPPED_ATTRIBUTES_COUNT, VARINT);
    pub(crate) const LOG_FLAGS: u8 = tag(log_record::FLAGS, I32);
    pub(crate) const LOG_TRACE_ID: u8 = tag(log_record::TRACE_ID, LEN);
    pub(crate) const LOG_SPAN_ID: u8 = tag(log_record::SPAN_ID, LEN);
    pub(crate) const LOG_OBSERVED_TIME: u8 = tag(log_record::OBSERVED_TIME_UNIX_NANO, I64);
    pub(crate) const LOG_EVENT_NAME: u8 = tag(log_record::EVENT_NAME, LEN);
    #[cfg(feature = "traces")]
    pub(crate) const SPAN_TRACE_ID: u8 = tag(span::TRACE_ID, LEN);
    #[cfg(feature = "traces")]
    pub(crate) const SPAN_SPAN_ID: u8 = tag(span::SPAN_ID, LEN);
    #[cfg(feature = "traces")]
    pub(crate) const SPAN_PARENT_SPAN_ID: u8 = tag(span::PARENT_SPAN_ID, LEN);
    #[cfg(feature = "traces")]
    pub(crate) const SPAN_NAME: u8 = tag(span::NAME, LEN);
    #[cfg(feature = "traces")]
    pub(crate) const SPAN_KIND: u8 = tag(span::KIND, VARINT);
    #[cfg(feature = "traces")]
    pub(crate) const SPAN_START_TIME: u8 = tag(span::START_TIME_UNIX_NANO, I64);
    #[cfg(feature = "traces")]
    pub(crate) const SPAN_END_TIME: u8 = tag(span::END_TIME_UNIX_NANO, I64);
    #[cfg(feature = "traces")]
    pub(crate) const SPAN_ATTRIBUTES: u8 = tag(span::ATTRIBUTES, LEN);
    #[cfg(feature = "traces")]
    pub(crate) const SPAN_DROPPED_ATTRIBUTES: u8 = tag(span::DROPPED_ATTRIBUTES_COUNT, VARINT);
    #[cfg(feature = "traces")]
    pub(crate) const SPAN_STATUS: u8 = tag(span::STATUS, LEN);
    #[cfg(feature = "traces")]
    pub(crate) const SPAN_EVENTS: u8 = tag(span::EVENTS, LEN);
    #[cfg(feature = "traces")]
    pub(crate) const SPAN_DROPPED_EVENTS: u8 = tag(span::DROPPED_EVENTS_COUNT, VARINT);
    #[cfg(feature = "traces")]
    pub(crate) const SPAN_LINKS: u8 = tag(span::LINKS, LEN);
    #[cfg(feature = "traces")]
    pub(crate) const SPAN_DROPPED_LINKS: u8 = tag(span::DROPPED_LINKS_COUNT, VARINT);
    #[cfg(feature = "traces")]
    pub(crate) const LINK_TRACE_ID: u8 = tag(span_link::TRACE_ID, LEN);
    #[cfg(feature = "traces")]
    pub(crate) const LINK_SPAN_ID: u8 = tag(span_link::SPAN_ID, LEN);
    #[cfg(feature = "traces")]
    pub(crate) const LINK_FLAGS: u8 = tag(span_link::FLAGS, I32);
    #[cfg(feature = "traces")]
    pub(crate) const EVENT_TIME: u8 = tag(span_event::TIME_UNIX_NANO, I64);
    #[cfg(feature = "traces")]
    pub(crate) const EVENT_NAME: u8 = tag(span_event::NAME, LEN);
    #[cfg(feature = "traces")]
    pub(crate) const EVENT_ATTRIBUTES: u8 = tag(span_event::ATTRIBUTES, LEN);
    #[cfg(feature = "traces")]
    pub(crate) const EVENT_DROPPED_ATTRIBUTES: u8 = tag(span_event::DROPPED_ATTRIBUTES_COUNT, VARINT);
    /// `fixed32 flags = 16`: a two-byte tag (field numbers past 15).
    #[cfg(feature = "traces")]
    pub(crate) const SPAN_FLAGS: [u8; 2] = [(span::FLAGS << 3) as u8 | I32 | 0x80, (span::FLAGS >> 4) as u8];
    #[cfg(feature = "traces")]
    pub(crate) const STATUS_MESSAGE: u8 = tag(status::MESSAGE, LEN);
    #[cfg(feature = "traces")]
    pub(crate) const STATUS_CODE: u8 = tag(status::CODE, VARINT);
    pub(crate) const KV_KEY: u8 = tag(key_value::KEY, LEN);
    pub(crate) const KV_VALUE: u8 = tag(key_value::VALUE, LEN);
    pub(crate) const ANY_STRING: u8 = tag(any_value::STRING, LEN);
    pub(crate) const ANY_BOOL: u8 = tag(any_value::BOOL, VARINT);
    pub(crate) const ANY_INT: u8 = tag(any_value::INT, VARINT);
    pub(crate) const ANY_DOUBLE: u8 = tag(any_value::DOUBLE, I64);
    pub(crate) const ANY_ARRAY: u8 = tag(any_value::ARRAY, LEN);
    pub(crate) const ANY_KVLIST: u8 = tag(any_value::KVLIST, LEN);
    pub(crate) const ANY_BYTES: u8 = tag(any_value::BYTES, LEN);
    pub(crate) const ARRAY_VALUES: u8 = tag(list::VALUES, LEN);
    pub(crate) const KVLIST_VALUES: u8 = tag(list::VALUES, LEN);
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
    #[inline]
    fn new(encoder: &'e mut StatefulOtlpEncoder) -> Self {
        let mark = encoder.out.buf.len();
        let saved = (encoder.resource_logs, encoder.scope.clone());
        Self { encoder, mark, saved, committed: false }
    }

    #[inline]
    fn commit(mut self) {
        self.committed = true;
        self.encoder.records += 1;
        if let Some(scope) = &mut self.encoder.scope {
            scope.records += 1;
        }
    }

    /// Commits on success; otherwise rolls back (on drop) and says why: a
    /// request that has records is full, else the record is too large.
    #[inline]
    fn finish(self, result: Result<u32, Exceeded>) -> Result<u32, EncodeError> {
        match result {
            Ok(dropped) => {
                self.commit();
                Ok(dropped)
            }
            Err(overflow) => {
                let buffered = self.encoder.records > 0;
                drop(self);
                if overflow == Exceeded::Request && buffered {
                    Err(EncodeError::BufferFull)
                } else {
                    Err(EncodeError::RecordTooLarge)
                }
            }
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
/// use selftrace::{view::{AnyValue, LogRecordView, RecordVisitor, Severity}, encoder::StatefulOtlpEncoder};
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
/// # Ok::<(), selftrace::encoder::EncodeError>(())
/// ```
#[derive(Debug)]
pub struct StatefulOtlpEncoder {
    out: Out,
    limits: EncoderLimits,
    resource: OtlpResource,
    /// Where flushed requests live: each is copied here once and split off
    /// as `Bytes` sharing the block.
    arena: BytesMut,
    /// Whether `arena` has a block (none until the first flush).
    arena_block: bool,
    /// Placeholder width for ResourceLogs and ScopeLogs lengths.
    container_width: usize,
    /// Where the ResourceLogs length placeholder starts, once opened.
    resource_logs: Option<usize>,
    /// Where the first ScopeLogs starts (right after the resource).
    resource_end: usize,
    scope: Option<OpenScope>,
    records: usize,
    callsites: Callsites,
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
                buf: Vec::with_capacity(limits.buffer_capacity + writer::SLACK),
                request_end: limits.buffer_capacity,
                record_end: usize::MAX,
                end: limits.buffer_capacity,
                record_width: varint_len(limits.max_record_bytes as u64),
            },
            container_width: varint_len(limits.buffer_capacity as u64),
            limits,
            resource,
            arena: BytesMut::new(),
            arena_block: false,
            resource_logs: None,
            resource_end: 0,
            scope: None,
            records: 0,
            callsites: Callsites::default(),
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
        let attempt = Attempt::new(self);
        let result = attempt.encoder.try_encode(scope_name, record);
        attempt.finish(result)
    }

    /// Appends one span (see the `traces` module) under the
    /// instrumentation scope `scope_name`, as
    /// [`encode_log_record`](Self::encode_log_record) appends a record: the
    /// same limits, the same errors, the buffer unchanged on an error. An
    /// encoder holds one kind: a request of spans is an
    /// `ExportTraceServiceRequest`; do not mix records in it.
    ///
    /// Returns how many values were cut or left out (counted in the span's
    /// `dropped_attributes_count`).
    ///
    /// # Errors
    ///
    /// As [`encode_log_record`](Self::encode_log_record).
    #[cfg(feature = "traces")]
    pub fn encode_span(
        &mut self,
        scope_name: &str,
        span: &(impl crate::span_view::SpanView + ?Sized),
    ) -> Result<u32, EncodeError> {
        let attempt = Attempt::new(self);
        let result = (attempt.encoder)
            .encode_in_scope(scope_name, tag::SPAN_DROPPED_ATTRIBUTES, |encoder, end| encoder.write_span(span, end));
        attempt.finish(result)
    }

    /// Writes the fields of `span` up to `end`; returns the values cut or
    /// left out.
    #[cfg(feature = "traces")]
    fn write_span(&mut self, span: &(impl crate::span_view::SpanView + ?Sized), end: usize) -> Result<u32, Exceeded> {
        use crate::span_view::SpanStatus;

        self.out.set_record_end(end);
        let max_value = self.limits.max_value_bytes;
        self.out.put_bytes_field(tag::SPAN_TRACE_ID, &span.trace_id())?;
        self.out.put_bytes_field(tag::SPAN_SPAN_ID, &span.span_id())?;
        if let Some(parent) = span.parent_span_id() {
            self.out.put_bytes_field(tag::SPAN_PARENT_SPAN_ID, &parent)?;
        }
        let mut flags = [0; 6];
        flags[..2].copy_from_slice(&tag::SPAN_FLAGS);
        flags[2..].copy_from_slice(&span.flags().to_le_bytes());
        self.out.put_slice(&flags)?;
        let mut dropped = span.dropped_attributes_count();
        // A name cut to the value limit is still the name: not counted.
        self.out.put_string_field(tag::SPAN_NAME, span.name(), max_value)?;
        self.out.put_tag_varint(tag::SPAN_KIND, span.kind().number())?;
        self.out.put_tag_fixed64(tag::SPAN_START_TIME, span.start_time_unix_nano())?;
        self.out.put_tag_fixed64(tag::SPAN_END_TIME, span.end_time_unix_nano())?;
        let mut fields = FieldWriter::new(&mut self.out, max_value, tag::SPAN_ATTRIBUTES);
        span.visit(&mut fields);
        if fields.abort {
            return Err(Exceeded::Request);
        }
        dropped = dropped.saturating_add(fields.dropped);
        // Each event whole or not at all; those past the record's limit are
        // counted in `dropped_events_count`.
        let mut dropped_events = span.dropped_events_count();
        let mut result = Ok(());
        span.visit_events(&mut |event: &[u8]| put_whole(&mut self.out, event, &mut dropped_events, &mut result));
        result?;
        if dropped_events > 0 {
            self.out.put_tag_varint(tag::SPAN_DROPPED_EVENTS, u64::from(dropped_events))?;
        }
        // Each link whole or not at all, as events.
        let mut dropped_links = span.dropped_links_count();
        span.visit_links(&mut |trace_id, span_id, flags| {
            let mut link = [0_u8; LINK_BYTES];
            link[..4].copy_from_slice(&[tag::SPAN_LINKS, (LINK_BYTES - 2) as u8, tag::LINK_TRACE_ID, 16]);
            link[4..20].copy_from_slice(&trace_id);
            link[20..22].copy_from_slice(&[tag::LINK_SPAN_ID, 8]);
            link[22..30].copy_from_slice(&span_id);
            link[30] = tag::LINK_FLAGS;
            link[31..].copy_from_slice(&flags.to_le_bytes());
            put_whole(&mut self.out, &link, &mut dropped_links, &mut result);
        });
        result?;
        if dropped_links > 0 {
            self.out.put_tag_varint(tag::SPAN_DROPPED_LINKS, u64::from(dropped_links))?;
        }
        let (code, message) = match span.status() {
            SpanStatus::Unset => (0, ""),
            SpanStatus::Ok => (1, ""),
            SpanStatus::Error(message) => (2, message),
        };
        if code != 0 {
            let message = writer::truncate_at_char_boundary(message, max_value.min(MAX_STATUS_MESSAGE_BYTES));
            let len = if message.is_empty() { 0 } else { 1 + varint_len(message.len() as u64) + message.len() } + 2;
            self.out.put_tag_varint(tag::SPAN_STATUS, len as u64)?;
            if !message.is_empty() {
                self.out.put_tag_varint(tag::STATUS_MESSAGE, message.len() as u64)?;
                self.out.put_slice(message.as_bytes())?;
            }
            self.out.put_tag_varint(tag::STATUS_CODE, code)?;
        }
        Ok(dropped)
    }

    /// Closes the current request and returns it; the encoder is then empty
    /// and ready for the next request. Returns empty bytes when there was no
    /// record.
    ///
    /// Cost: patches two lengths and copies the request once into the
    /// hand-off block; no allocation while the block has room or can be
    /// reclaimed. A request of half the buffer or more that the block
    /// cannot take is handed over in its own buffer instead (no copy; a
    /// fresh buffer, with the envelope, for the next request).
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
        if self.arena.capacity() < len
            && let Some(request) = self.make_room(len)
        {
            return request;
        }
        self.arena.extend_from_slice(&self.out.buf);
        self.keep_envelope(None);
        OtlpBytes(self.arena.split().freeze())
    }

    /// Room in the hand-off block for a request of `len` bytes: the block
    /// reclaimed when every request split off it is gone, else a fresh one.
    /// A large request (half the buffer or more) when the block cannot be
    /// reclaimed is handed over in its own buffer instead, returned here: a
    /// fresh allocation either way, and this one spares copying the request
    /// (a full 64 KiB buffer: a few µs on the thread that logs, about every
    /// 400 events). The next request starts in a fresh buffer, the envelope
    /// copied into it.
    #[cold]
    #[inline(never)]
    fn make_room(&mut self, len: usize) -> Option<OtlpBytes> {
        if len >= self.limits.buffer_capacity / 2 && self.arena_block && !self.arena.try_reclaim(len) {
            let fresh = Vec::with_capacity(self.out.buf.capacity());
            let request = std::mem::replace(&mut self.out.buf, fresh);
            self.keep_envelope(Some(&request));
            return Some(OtlpBytes(::bytes::Bytes::from(request)));
        }
        self.arena.reserve(len.max(self.limits.buffer_capacity));
        self.arena_block = true;
        None
    }

    /// Keeps the envelope (the resource and the last scope's header, next
    /// to it) for the next request, so that a next record of the same
    /// scope starts right after it: moved down in the buffer, or copied
    /// from the request `handed_over` into the fresh (empty) buffer.
    #[inline]
    fn keep_envelope(&mut self, handed_over: Option<&[u8]>) {
        let Some(scope) = &mut self.scope else {
            self.clear();
            return;
        };
        let header = scope.at - 1..scope.name.end;
        let shift = header.start - self.resource_end;
        match handed_over {
            Some(request) => {
                self.out.buf.extend_from_slice(&request[..self.resource_end]);
                self.out.buf.extend_from_slice(&request[header]);
            }
            None => {
                if shift > 0 {
                    self.out.buf.copy_within(header.clone(), self.resource_end);
                }
                self.out.buf.truncate(header.end - shift);
            }
        }
        if shift > 0 {
            scope.at -= shift;
            scope.name = scope.name.start - shift..scope.name.end - shift;
        }
        scope.records = 0;
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

    fn try_encode(&mut self, scope_name: &str, record: &(impl LogRecordView + ?Sized)) -> Result<u32, Exceeded> {
        self.encode_in_scope(scope_name, tag::LOG_DROPPED_ATTRIBUTES, |encoder, end| encoder.write_record(record, end))
    }

    /// Opens the envelope of `scope_name` (the resource, the scope) if the
    /// request does not have it open yet, then one record (a `LogRecord`,
    /// or a `Span`: the envelopes of logs and traces share their field
    /// numbers) that `write` fills up to the end it is given, then the count
    /// of the values cut or left out (under `dropped_tag`); returns it.
    #[inline(always)]
    fn encode_in_scope(
        &mut self,
        scope_name: &str,
        dropped_tag: u8,
        mut write: impl FnMut(&mut Self, usize) -> Result<u32, Exceeded>,
    ) -> Result<u32, Exceeded> {
        // Envelope writes are bounded by the request only.
        self.out.set_record_end(usize::MAX);
        if self.resource_logs.is_none() {
            let at = self.out.open(tag::REQUEST_RESOURCE_LOGS, self.container_width)?;
            self.out.put_bytes_field(tag::RESOURCE_LOGS_RESOURCE, self.resource.encoded())?;
            self.resource_logs = Some(at);
            self.resource_end = self.out.buf.len();
        }
        let same_scope = self.scope.as_ref().is_some_and(|s| {
            self.out.buf.get(s.name.clone()).is_some_and(|name| writer::same_bytes(name, scope_name.as_bytes()))
        });
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
        let mut dropped = write(self, record_limit)?;
        if dropped > 0 && self.out.check(1 + varint_len(u64::from(dropped))).is_err() {
            self.out.buf.truncate(record_start);
            dropped = write(self, record_limit - DROPPED_COUNT_ROOM)?;
        }
        self.out.set_record_end(record_limit);
        if dropped > 0 {
            self.out.put_tag_varint(dropped_tag, u64::from(dropped))?;
        }
        self.out.close(at, width);
        self.out.set_record_end(usize::MAX);
        Ok(dropped)
    }

    /// Writes the fields of `record` up to `end`; returns the values cut or
    /// left out.
    fn write_record(&mut self, record: &(impl LogRecordView + ?Sized), end: usize) -> Result<u32, Exceeded> {
        self.out.set_record_end(end);
        let max_value = self.limits.max_value_bytes;
        let (time, observed, severity) = (record.time_unix_nano(), record.observed_time_unix_nano(), record.severity());
        match (time, observed, severity.map(|s| s.number())) {
            // The usual head, both times and a severity: one piece, one check.
            (Some(time), Some(observed), Some(number @ 0..0x80)) => {
                self.out.check(20)?;
                let mut head = [0; 20];
                head[0] = tag::LOG_TIME;
                head[1..9].copy_from_slice(&time.to_le_bytes());
                head[9] = tag::LOG_OBSERVED_TIME;
                head[10..18].copy_from_slice(&observed.to_le_bytes());
                head[18] = tag::LOG_SEVERITY_NUMBER;
                head[19] = number as u8;
                self.out.buf.extend_from_slice(&head);
            }
            _ => {
                if let Some(t) = time {
                    self.out.put_tag_fixed64(tag::LOG_TIME, t)?;
                }
                if let Some(t) = observed {
                    self.out.put_tag_fixed64(tag::LOG_OBSERVED_TIME, t)?;
                }
                if let Some(severity) = severity {
                    self.out.put_tag_varint(tag::LOG_SEVERITY_NUMBER, severity.number() as u64)?;
                }
            }
        }
        let mut dropped = record.dropped_attributes_count();
        let head = record.callsite_id().and_then(|id| self.callsites.head(id, record, max_value));
        match head.map(|head| self.out.put_slice(head)) {
            Some(Ok(())) => {}
            Some(Err(Exceeded::Request)) => return Err(Exceeded::Request),
            // Not kept, or past the record's limit: field by field, cut as
            // need be.
            Some(Err(Exceeded::Record)) | None => {
                if let Some(text) = record.severity_text() {
                    dropped += u32::from(self.out.put_string_field(tag::LOG_SEVERITY_TEXT, text, max_value)?);
                }
                if let Some(name) = record.event_name() {
                    dropped += u32::from(self.out.put_string_field(tag::LOG_EVENT_NAME, name, max_value)?);
                }
                if let Some(location) = record.code_location() {
                    let mut fields = FieldWriter::new(&mut self.out, max_value, tag::LOG_ATTRIBUTES);
                    location.visit(&mut fields);
                    if fields.abort {
                        return Err(Exceeded::Request);
                    }
                    dropped = dropped.saturating_add(fields.dropped);
                }
            }
        }
        if let Some(cx) = record.trace_context() {
            self.out.put_bytes_field(tag::LOG_TRACE_ID, &cx.trace_id)?;
            self.out.put_bytes_field(tag::LOG_SPAN_ID, &cx.span_id)?;
            self.out.put_tag_fixed32(tag::LOG_FLAGS, u32::from(cx.flags))?;
        }
        let mut fields = FieldWriter::new(&mut self.out, max_value, tag::LOG_ATTRIBUTES);
        record.visit_encoder(&mut fields);
        if fields.abort {
            return Err(Exceeded::Request);
        }
        Ok(dropped.saturating_add(fields.dropped))
    }
}

// === impl Callsites ===

/// At most this many callsites per encoder keep their severity text and
/// event name encoded ([`LogRecordView::callsite_id`]); the records of
/// callsites past it are encoded field by field, as records without an
/// identity are. Each kept callsite holds at most
/// 256 bytes bytes.
#[doc(hidden)]
pub const MAX_CACHED_CALLSITES: usize = 512;

/// The longest encoded severity text, event name and code location a
/// callsite keeps.
pub(crate) const MAX_CACHED_HEAD_BYTES: usize = 256;

/// The severity text, event name and code location fields of each callsite
/// seen, encoded (`None`: encoded per record, because a value was cut or too
/// long).
#[derive(Debug, Default)]
struct Callsites {
    heads: HashMap<NonZeroUsize, Option<Box<[u8]>>, BuildHasherDefault<IdHasher>>,
}

impl Callsites {
    /// One lookup for a callsite seen before.
    #[inline]
    fn head(&mut self, id: NonZeroUsize, record: &(impl LogRecordView + ?Sized), max_value: usize) -> Option<&[u8]> {
        let full = self.heads.len() >= MAX_CACHED_CALLSITES;
        match self.heads.entry(id) {
            Entry::Occupied(kept) => kept.into_mut().as_deref(),
            Entry::Vacant(_) if full => None,
            Entry::Vacant(new) => new.insert(Self::encode_head(record, max_value)).as_deref(),
        }
    }

    /// The two fields, or `None` when one would be cut.
    #[cold]
    fn encode_head(record: &(impl LogRecordView + ?Sized), max_value: usize) -> Option<Box<[u8]>> {
        let mut out = Out::unbounded();
        if let Some(text) = record.severity_text()
            && out.put_string_field(tag::LOG_SEVERITY_TEXT, text, max_value) != Ok(false)
        {
            return None;
        }
        if let Some(name) = record.event_name()
            && out.put_string_field(tag::LOG_EVENT_NAME, name, max_value) != Ok(false)
        {
            return None;
        }
        if let Some(location) = record.code_location() {
            let mut fields = FieldWriter::new(&mut out, max_value, tag::LOG_ATTRIBUTES);
            location.visit(&mut fields);
            if fields.abort || fields.dropped > 0 {
                return None;
            }
        }
        (out.buf.len() <= MAX_CACHED_HEAD_BYTES).then(|| out.buf.into_boxed_slice())
    }
}

/// A span status message longer than this is cut (it is a description,
/// not data).
#[cfg(feature = "traces")]
const MAX_STATUS_MESSAGE_BYTES: usize = 1024;

/// Writes `bytes` (one span event or link) whole, or counts it in `dropped`
/// when it does not fit the record; once the request is full, nothing more
/// (`result` says so).
#[cfg(feature = "traces")]
fn put_whole(out: &mut writer::Out, bytes: &[u8], dropped: &mut u32, result: &mut Result<(), Exceeded>) {
    if result.is_err() {
        return;
    }
    match out.put_slice(bytes) {
        Ok(()) => {}
        Err(Exceeded::Record) => *dropped = dropped.saturating_add(1),
        Err(Exceeded::Request) => *result = Err(Exceeded::Request),
    }
}

/// One encoded `Span.links` entry: its tag and length, the trace id, the
/// span id and the flags, each with its tag.
#[cfg(feature = "traces")]
const LINK_BYTES: usize = 2 + (2 + 16) + (2 + 8) + (1 + 4);

/// Hashes a callsite identity (an address): one multiplication.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

impl<'o> FieldWriter<'o> {
    fn new(out: &'o mut Out, max_value: usize, attributes: u8) -> Self {
        Self { out, max_value, attributes, dropped: 0, abort: false }
    }
}

impl FieldWriter<'_> {
    /// Settles a write of one value that began at `mark` (see
    /// `Out::degraded`): a value cut or past the record's limit (rolled
    /// back) is counted, a full request aborts the record.
    #[inline(always)]
    fn settle(&mut self, mark: usize, written: Result<bool, Exceeded>) {
        match self.out.degraded(mark, written) {
            Ok(cut) => self.dropped = self.dropped.saturating_add(u32::from(cut)),
            Err(_) => self.abort = true,
        }
    }
}

impl RecordVisitor for FieldWriter<'_> {
    #[inline]
    fn visit_body(&mut self, body: AnyValue<'_>) {
        // An empty string body is no body; a span has none.
        if matches!(body, AnyValue::Str("")) || self.attributes != tag::LOG_ATTRIBUTES {
            return;
        }
        if self.abort {
            return;
        }
        let max_value = self.max_value;
        let mark = self.out.buf.len();
        let written = match body {
            // The message of most events.
            AnyValue::Fmt(value) => self.out.put_fmt_any_value_field(tag::LOG_BODY, value, max_value),
            _ => self.out.put_any_value_field(tag::LOG_BODY, body, max_value, 0),
        };
        self.settle(mark, written);
        // A formatted value is written between two placeholders: nothing
        // between them is an empty string (a cut one ends with the marker).
        if !self.abort && matches!(body, AnyValue::Fmt(_)) && self.out.buf.len() == mark + 2 + 2 * self.out.record_width
        {
            self.out.buf.truncate(mark);
        }
    }

    /// Inlined where the caller knows the value's kind (a `tracing`
    /// visitor's `record_i64` keeps the integer's case only).
    #[inline(always)]
    fn visit_attribute(&mut self, key: &str, value: AnyValue<'_>) {
        if self.abort {
            return;
        }
        let mark = self.out.buf.len();
        let written = self.out.put_key_value(self.attributes, key, value, self.max_value, 0);
        self.settle(mark, written);
    }

    /// Copied whole, or left out and counted when it would cross the
    /// record's limit.
    fn reads_pre_encoded_values(&self) -> bool {
        false
    }

    fn visit_pre_encoded_attribute(&mut self, _: &str, _: AnyValue<'_>, encoded: PreEncoded<'_>) {
        if self.abort {
            return;
        }
        let at = self.out.buf.len();
        match self.out.put_slice(encoded.as_bytes()) {
            // A `LogRecord.attributes` field; a span's own tag where it is
            // one (both tags are one byte).
            Ok(()) => {
                if let Some(tag) = self.out.buf.get_mut(at) {
                    *tag = self.attributes;
                }
            }
            Err(Exceeded::Record) => self.dropped = self.dropped.saturating_add(1),
            Err(Exceeded::Request) => self.abort = true,
        }
    }

    fn visit_dropped_attributes(&mut self, count: u32) {
        self.dropped = self.dropped.saturating_add(count);
    }
}

/// One `Span.Event` field (its tag, its length, the event): `time`,
/// `name`, then `attributes` (each a pre-encoded attribute: its tag is
/// rewritten to the event's) and how many were cut or left out.
#[cfg(feature = "traces")]
pub(crate) fn encode_span_event(
    time: u64,
    name: &str,
    attributes: &[&[u8]],
    dropped: u32,
    max_value: usize,
) -> Vec<u8> {
    let name = truncate_at_char_boundary(name, max_value);
    let mut body = Vec::with_capacity(16 + name.len() + attributes.iter().map(|a| a.len()).sum::<usize>());
    body.push(tag::EVENT_TIME);
    body.extend_from_slice(&time.to_le_bytes());
    body.push(tag::EVENT_NAME);
    crate::wire::put_varint(&mut body, name.len() as u64);
    body.extend_from_slice(name.as_bytes());
    for attribute in attributes {
        let at = body.len();
        body.extend_from_slice(attribute);
        if let Some(tag) = body.get_mut(at) {
            *tag = tag::EVENT_ATTRIBUTES;
        }
    }
    if dropped > 0 {
        body.push(tag::EVENT_DROPPED_ATTRIBUTES);
        crate::wire::put_varint(&mut body, u64::from(dropped));
    }
    let mut event = Vec::with_capacity(body.len() + 6);
    event.push(tag::SPAN_EVENTS);
    crate::wire::put_varint(&mut event, body.len() as u64);
    event.extend_from_slice(&body);
    event
}

/// Encodes one attribute as the record writer would, unbounded but for
/// `max_value`: the bytes of a [`PreEncoded`] attribute, and whether its
/// value was cut.
#[cfg(feature = "traces")]
pub(crate) fn pre_encode_attribute(key: &str, value: AnyValue<'_>, max_value: usize) -> (Vec<u8>, bool) {
    let mut buf = Vec::new();
    let cut = pre_encode_attribute_into(&mut buf, key, value, max_value);
    (buf, cut)
}

/// As [`pre_encode_attribute`], appending the attribute to `buf`; whether
/// the value was cut.
pub(crate) fn pre_encode_attribute_into(buf: &mut Vec<u8>, key: &str, value: AnyValue<'_>, max_value: usize) -> bool {
    let mut out = Out::unbounded();
    out.buf = std::mem::take(buf);
    let cut = out.put_key_value(tag::LOG_ATTRIBUTES, key, value, max_value, 0).unwrap_or(true);
    *buf = out.buf;
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_at_char_boundary("héllo", 2), "h");
        assert_eq!(truncate_at_char_boundary("héllo", 3), "hé");
        assert_eq!(truncate_at_char_boundary("abc", 10), "abc");
    }

    /// A record with a callsite identity (`id` from 1; 0: none) and
    /// attributes.
    struct Site<'a>(usize, &'a [(&'a str, AnyValue<'a>)]);

    impl LogRecordView for Site<'_> {
        fn time_unix_nano(&self) -> Option<u64> {
            Some(1)
        }
        fn observed_time_unix_nano(&self) -> Option<u64> {
            Some(1)
        }
        fn severity(&self) -> Option<crate::view::Severity> {
            Some(crate::view::Severity::INFO)
        }
        fn event_name(&self) -> Option<&str> {
            Some("site")
        }
        fn visit(&self, visitor: &mut dyn RecordVisitor) {
            if !self.1.is_empty() {
                visitor.visit_body(AnyValue::Str("sixteen bytes!!!"));
            }
            for (key, value) in self.1 {
                visitor.visit_attribute(key, *value);
            }
        }
        fn callsite_id(&self) -> Option<NonZeroUsize> {
            NonZeroUsize::new(self.0)
        }
    }

    #[test]
    fn the_callsite_cache_keeps_at_most_its_bound() {
        let mut encoder = StatefulOtlpEncoder::new();
        for id in 1..=MAX_CACHED_CALLSITES + 100 {
            encoder.encode_log_record("s", &Site(id, &[])).expect("fits");
            if encoder.len() > DEFAULT_BUFFER_CAPACITY / 2 {
                encoder.flush();
            }
        }
        assert_eq!(encoder.callsites.heads.len(), MAX_CACHED_CALLSITES);
        // Seen again, kept or not, each is still written.
        encoder.flush();
        encoder.encode_log_record("s", &Site(1, &[])).expect("fits");
        encoder.encode_log_record("s", &Site(MAX_CACHED_CALLSITES + 50, &[])).expect("fits");
        assert_eq!(encoder.record_count(), 2);
    }

    /// The short writes store whole chunks past what they write (into the
    /// slack): filling requests to the brim, byte by byte of room, never
    /// grows the buffer.
    #[test]
    fn filling_a_request_never_grows_its_buffer() {
        let keys = ["", "abc", "abcdefg", "key1", "exactly.16.bytes", "seventeen.bytes.k"];
        let strings = ["", "abc", "abcdefg", "eight by", "sixteen bytes!!!", "seventeen bytes!!"];
        let mut attributes = Vec::new();
        for key in keys {
            attributes.extend([(key, AnyValue::Int(1)), (key, AnyValue::Int(1 << 40)), (key, AnyValue::Bool(true))]);
            attributes.push((key, AnyValue::Double(0.5)));
            attributes.extend(strings.iter().map(|s| (key, AnyValue::Str(s))));
        }
        for capacity in 1024..1024 + 64 {
            let limits = EncoderLimits::new(capacity, 256, 64).expect("valid limits");
            let mut encoder = StatefulOtlpEncoder::with_limits(limits, OtlpResource::default());
            let allocated = encoder.out.buf.capacity();
            let (mut full, mut records) = (0, 0);
            // Every window of attributes, so that the last record of a
            // request ends at every distance from the capacity.
            for start in 0..attributes.len() {
                let end = (start + 3).min(attributes.len());
                // Attributes whose keys and values sit around the fast
                // paths' chunk sizes.
                let record = Site(0, &attributes[start..end]);
                match encoder.encode_log_record("scope", &record) {
                    Ok(_) => records += 1,
                    Err(EncodeError::BufferFull) => {
                        full += 1;
                        encoder.flush();
                        encoder.encode_log_record("scope", &record).expect("fits an empty request");
                        records += 1;
                    }
                    Err(EncodeError::RecordTooLarge) => panic!("a record of three attributes fits"),
                }
                assert!(encoder.len() <= capacity, "{} bytes in a request of {capacity}", encoder.len());
                assert_eq!(encoder.out.buf.capacity(), allocated, "the buffer grew (capacity {capacity})");
            }
            assert!(full > 0 && records == attributes.len(), "{full} flushes, {records} records");
        }
    }

    /// A large request the hand-off block cannot take goes in its own
    /// buffer: the same bytes as a copied one, and the requests after it too
    /// (the envelope kept across scope changes).
    #[test]
    fn a_request_handed_over_in_its_own_buffer_is_the_bytes_a_copied_one_is() {
        let attributes = [("key1", AnyValue::Int(7)), ("key2", AnyValue::Str("value"))];
        let run = |keep: bool| {
            let limits = EncoderLimits::new(4096, 1024, 64).expect("valid limits");
            let mut encoder = StatefulOtlpEncoder::with_limits(limits, OtlpResource::default());
            let (mut requests, mut kept, mut handed_over) = (Vec::new(), Vec::new(), 0);
            for i in 0..4000_usize {
                // Runs of each scope, so that a flush finds the last scope's
                // header away from the resource as well as next to it.
                let scope = ["alpha", "beta.scope", "c"][i / 7 % 3];
                let record = Site(0, &attributes[..1 + i % 2]);
                // Small requests (a timer's flush every 10 records) in
                // every other run of 400 records, full ones in between.
                let timer = i / 400 % 2 == 0 && i % 10 == 9;
                let full = encoder.encode_log_record(scope, &record) == Err(EncodeError::BufferFull);
                if full || timer {
                    let before = encoder.out.buf.as_ptr();
                    let request = encoder.flush();
                    handed_over += usize::from(encoder.out.buf.as_ptr() != before);
                    requests.push(request.as_ref().to_vec());
                    // Kept: the block cannot be reclaimed.
                    if keep {
                        kept.push(request);
                    }
                }
                if full {
                    encoder.encode_log_record(scope, &record).expect("fits an empty request");
                }
            }
            requests.push(encoder.flush().as_ref().to_vec());
            (requests, handed_over)
        };
        let (copied, none) = run(false);
        let (own, handed_over) = run(true);
        assert_eq!(none, 0, "a reclaimable block takes every request");
        assert!(handed_over > 10, "{handed_over} requests handed over");
        assert!(copied.len() > handed_over + 3, "small requests ({} in all) are still copied", copied.len());
        assert_eq!(own, copied);
        for request in &own {
            crate::batch::shape(request).expect("a well-formed request");
        }
    }

    #[test]
    fn limits_are_validated() {
        assert!(EncoderLimits::new(64 * 1024, 16_383, 8192).is_ok());
        assert!(EncoderLimits::new(100, 64, 10).is_err());
        assert!(EncoderLimits::new(4096, 4000, 10).is_err());
        assert!(EncoderLimits::new(4096, 1024, 0).is_err());
    }
}
