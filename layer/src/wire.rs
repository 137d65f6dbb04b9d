//! The protobuf wire format, as selftrace reads and writes it: varints, tags,
//! padded length placeholders, a bounds-checked field reader, and the OTLP
//! field numbers.
//!
//! This is the one place protobuf is spoken in selftrace's crates: the
//! encoder ([`StatefulOtlpEncoder`](crate::encoder::StatefulOtlpEncoder))
//! writes with it, the request merger ([`batch`](crate::batch)) and
//! `selftrace-bridge`'s zero-copy decoder and response reader read with it.
//! It is public for those crates; its items follow the
//! [protobuf encoding](https://protobuf.dev/programming-guides/encoding/)
//! and change only with it.
//!
//! # Examples
//!
//! ```
//! use selftrace::wire::{self, Fields, Value, otlp};
//!
//! // A ScopeLogs message: scope { name: "db" }.
//! let mut scope = Vec::new();
//! scope.push(wire::tag(otlp::scope::NAME, wire::LEN));
//! wire::put_varint(&mut scope, 2);
//! scope.extend_from_slice(b"db");
//! let mut scope_logs = vec![wire::tag(otlp::scope_logs::SCOPE, wire::LEN)];
//! wire::put_varint(&mut scope_logs, scope.len() as u64);
//! scope_logs.extend_from_slice(&scope);
//!
//! let field = Fields::new(&scope_logs).next().unwrap().unwrap();
//! assert_eq!(field.number, otlp::scope_logs::SCOPE);
//! let Value::Len(inner) = field.value else { panic!("a message") };
//! assert_eq!(inner.offset, 2); // where the scope's bytes start in `scope_logs`
//! ```

use std::fmt;

use bytes::BufMut;

/// Wire type of varint fields (`int32`, `int64`, `uint*`, `bool`, enums).
pub const VARINT: u8 = 0;
/// Wire type of 8-byte little-endian fields (`fixed64`, `double`).
pub const I64: u8 = 1;
/// Wire type of length-delimited fields (strings, bytes, messages).
pub const LEN: u8 = 2;
/// Wire type of 4-byte little-endian fields (`fixed32`, `float`).
pub const I32: u8 = 5;

/// The key of field `number` with wire type `wire`, for field numbers below
/// 16 (every OTLP logs field): one byte.
pub const fn tag(number: u32, wire: u8) -> u8 {
    assert!(number > 0 && number < 16, "a one-byte tag");
    ((number << 3) as u8) | wire
}

/// The OTLP field numbers selftrace uses, one module per message, from
/// `opentelemetry/proto/{collector/logs/v1/logs_service,logs/v1/logs,
/// common/v1/common,resource/v1/resource}.proto`.
pub mod otlp {
    /// `ExportLogsServiceRequest`.
    pub mod request {
        /// `repeated ResourceLogs resource_logs = 1`
        pub const RESOURCE_LOGS: u32 = 1;
    }
    /// `ExportLogsServiceResponse`.
    pub mod response {
        /// `ExportLogsPartialSuccess partial_success = 1`
        pub const PARTIAL_SUCCESS: u32 = 1;
    }
    /// `ExportLogsPartialSuccess`.
    pub mod partial_success {
        /// `int64 rejected_log_records = 1`
        pub const REJECTED_LOG_RECORDS: u32 = 1;
        /// `string error_message = 2`
        pub const ERROR_MESSAGE: u32 = 2;
    }
    /// `ResourceLogs`.
    pub mod resource_logs {
        /// `Resource resource = 1`
        pub const RESOURCE: u32 = 1;
        /// `repeated ScopeLogs scope_logs = 2`
        pub const SCOPE_LOGS: u32 = 2;
        /// `string schema_url = 3`
        pub const SCHEMA_URL: u32 = 3;
    }
    /// `Resource`.
    pub mod resource {
        /// `repeated KeyValue attributes = 1`
        pub const ATTRIBUTES: u32 = 1;
        /// `uint32 dropped_attributes_count = 2`
        pub const DROPPED_ATTRIBUTES_COUNT: u32 = 2;
    }
    /// `ScopeLogs`.
    pub mod scope_logs {
        /// `InstrumentationScope scope = 1`
        pub const SCOPE: u32 = 1;
        /// `repeated LogRecord log_records = 2`
        pub const LOG_RECORDS: u32 = 2;
        /// `string schema_url = 3`
        pub const SCHEMA_URL: u32 = 3;
    }
    /// `InstrumentationScope`.
    pub mod scope {
        /// `string name = 1`
        pub const NAME: u32 = 1;
        /// `string version = 2`
        pub const VERSION: u32 = 2;
        /// `repeated KeyValue attributes = 3`
        pub const ATTRIBUTES: u32 = 3;
        /// `uint32 dropped_attributes_count = 4`
        pub const DROPPED_ATTRIBUTES_COUNT: u32 = 4;
    }
    /// `LogRecord`.
    pub mod log_record {
        /// `fixed64 time_unix_nano = 1`
        pub const TIME_UNIX_NANO: u32 = 1;
        /// `SeverityNumber severity_number = 2`
        pub const SEVERITY_NUMBER: u32 = 2;
        /// `string severity_text = 3`
        pub const SEVERITY_TEXT: u32 = 3;
        /// `AnyValue body = 5`
        pub const BODY: u32 = 5;
        /// `repeated KeyValue attributes = 6`
        pub const ATTRIBUTES: u32 = 6;
        /// `uint32 dropped_attributes_count = 7`
        pub const DROPPED_ATTRIBUTES_COUNT: u32 = 7;
        /// `fixed32 flags = 8`
        pub const FLAGS: u32 = 8;
        /// `bytes trace_id = 9`
        pub const TRACE_ID: u32 = 9;
        /// `bytes span_id = 10`
        pub const SPAN_ID: u32 = 10;
        /// `fixed64 observed_time_unix_nano = 11`
        pub const OBSERVED_TIME_UNIX_NANO: u32 = 11;
        /// `string event_name = 12`
        pub const EVENT_NAME: u32 = 12;
    }
    /// `Span` (`opentelemetry.proto.trace.v1`; `ExportTraceServiceRequest`,
    /// `ResourceSpans` and `ScopeSpans` use the numbers of their logs
    /// counterparts: `resource_spans = 1`, `resource = 1`,
    /// `scope_spans = 2`, `scope = 1`, `spans = 2`).
    pub mod span {
        /// `bytes trace_id = 1`
        pub const TRACE_ID: u32 = 1;
        /// `bytes span_id = 2`
        pub const SPAN_ID: u32 = 2;
        /// `bytes parent_span_id = 4`
        pub const PARENT_SPAN_ID: u32 = 4;
        /// `string name = 5`
        pub const NAME: u32 = 5;
        /// `SpanKind kind = 6`
        pub const KIND: u32 = 6;
        /// `fixed64 start_time_unix_nano = 7`
        pub const START_TIME_UNIX_NANO: u32 = 7;
        /// `fixed64 end_time_unix_nano = 8`
        pub const END_TIME_UNIX_NANO: u32 = 8;
        /// `repeated KeyValue attributes = 9`
        pub const ATTRIBUTES: u32 = 9;
        /// `uint32 dropped_attributes_count = 10`
        pub const DROPPED_ATTRIBUTES_COUNT: u32 = 10;
        /// `repeated Event events = 11`
        pub const EVENTS: u32 = 11;
        /// `uint32 dropped_events_count = 12`
        pub const DROPPED_EVENTS_COUNT: u32 = 12;
        /// `repeated Link links = 13`
        pub const LINKS: u32 = 13;
        /// `uint32 dropped_links_count = 14`
        pub const DROPPED_LINKS_COUNT: u32 = 14;
        /// `Status status = 15`
        pub const STATUS: u32 = 15;
        /// `fixed32 flags = 16`
        pub const FLAGS: u32 = 16;
    }
    /// `Span.Event`.
    pub mod span_event {
        /// `fixed64 time_unix_nano = 1`
        pub const TIME_UNIX_NANO: u32 = 1;
        /// `string name = 2`
        pub const NAME: u32 = 2;
        /// `repeated KeyValue attributes = 3`
        pub const ATTRIBUTES: u32 = 3;
        /// `uint32 dropped_attributes_count = 4`
        pub const DROPPED_ATTRIBUTES_COUNT: u32 = 4;
    }
    /// `Span.Link`.
    pub mod span_link {
        /// `bytes trace_id = 1`
        pub const TRACE_ID: u32 = 1;
        /// `bytes span_id = 2`
        pub const SPAN_ID: u32 = 2;
        /// `fixed32 flags = 6`
        pub const FLAGS: u32 = 6;
    }
    /// `Status`.
    pub mod status {
        /// `string message = 2`
        pub const MESSAGE: u32 = 2;
        /// `StatusCode code = 3`
        pub const CODE: u32 = 3;
    }
    /// `KeyValue`.
    pub mod key_value {
        /// `string key = 1`
        pub const KEY: u32 = 1;
        /// `AnyValue value = 2`
        pub const VALUE: u32 = 2;
    }
    /// `AnyValue` (a `oneof value`).
    pub mod any_value {
        /// `string string_value = 1`
        pub const STRING: u32 = 1;
        /// `bool bool_value = 2`
        pub const BOOL: u32 = 2;
        /// `int64 int_value = 3`
        pub const INT: u32 = 3;
        /// `double double_value = 4`
        pub const DOUBLE: u32 = 4;
        /// `ArrayValue array_value = 5`
        pub const ARRAY: u32 = 5;
        /// `KeyValueList kvlist_value = 6`
        pub const KVLIST: u32 = 6;
        /// `bytes bytes_value = 7`
        pub const BYTES: u32 = 7;
        /// `int32 string_value_strindex = 8` (profiles only; not a log value)
        pub const STRING_STRINDEX: u32 = 8;
    }
    /// `ArrayValue` and `KeyValueList`.
    pub mod list {
        /// `repeated AnyValue values = 1` / `repeated KeyValue values = 1`
        pub const VALUES: u32 = 1;
    }
}

// === writing ===

/// Bytes needed for `value` as a minimal varint.
#[inline]
pub const fn varint_len(value: u64) -> usize {
    // ceil(bits / 7) without a division: (bits * 9 + 64) / 64 for 1..=64 bits.
    let bits = (64 - (value | 1).leading_zeros()) as usize;
    (bits * 9 + 64) >> 6
}

/// Appends `value` as a minimal varint.
#[inline(always)]
pub fn put_varint<B: BufMut + ?Sized>(buf: &mut B, mut value: u64) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

/// Writes `value` as a varint padded to exactly `slot.len()` bytes (its
/// leading bytes carry a continuation bit, which every protobuf decoder
/// accepts): the length placeholder of a message whose size is known only
/// when it closes. `value` must fit in `7 × slot.len()` bits.
#[inline]
pub fn write_padded_varint(slot: &mut [u8], mut value: u64) {
    // The widths the encoder uses, written straight.
    match slot {
        [b0, b1] => {
            (*b0, *b1) = ((value as u8) | 0x80, ((value >> 7) & 0x7F) as u8);
            return;
        }
        [b0, b1, b2] => {
            (*b0, *b1, *b2) = ((value as u8) | 0x80, ((value >> 7) as u8) | 0x80, ((value >> 14) & 0x7F) as u8);
            return;
        }
        _ => {}
    }
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

// === reading ===

/// A message's bytes and where they start in the buffer the reader began
/// with (for error offsets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// The message's bytes.
    pub bytes: &'a [u8],
    /// Offset of `bytes[0]` in the outermost buffer.
    pub offset: usize,
}

impl<'a> Message<'a> {
    /// A whole buffer, at offset 0.
    pub const fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, offset: 0 }
    }

    /// Its fields, in order.
    pub fn fields(self) -> Fields<'a> {
        Fields { cur: Cursor::new(self), done: false }
    }
}

/// One field's value, by wire type.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1, little-endian.
    I64(u64),
    /// Wire type 2: the payload.
    Len(Message<'a>),
    /// Wire type 5, little-endian.
    I32(u32),
}

/// One field of a message.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Field<'a> {
    /// Its field number (1 to 2²⁹ − 1).
    pub number: u32,
    /// Its value.
    pub value: Value<'a>,
    /// Offset of its key in the outermost buffer.
    pub at: usize,
    /// The whole field as written: key, length and payload.
    pub raw: &'a [u8],
}

impl Field<'_> {
    /// Its wire type.
    pub fn wire_type(&self) -> u8 {
        match self.value {
            Value::Varint(_) => VARINT,
            Value::I64(_) => I64,
            Value::Len(_) => LEN,
            Value::I32(_) => I32,
        }
    }
}

/// What is wrong with the bytes, where prost's decoder rejects them too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input ends inside a varint, a fixed-width value or a payload.
    Truncated,
    /// A varint longer than ten bytes, or one that overflows 64 bits.
    VarintTooLong,
    /// Field number 0, or one above 2²⁹ − 1.
    InvalidFieldNumber,
    /// Wire type 3, 4 (groups, unused by OTLP), 6 or 7.
    UnsupportedWireType(u8),
}

/// A field that cannot be read, and the offset in the outermost buffer where
/// the problem starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    /// Offset of the problem.
    pub at: usize,
    /// The problem.
    pub kind: ErrorKind,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::Truncated => write!(f, "truncated at byte {}", self.at),
            ErrorKind::VarintTooLong => write!(f, "varint too long at byte {}", self.at),
            ErrorKind::InvalidFieldNumber => write!(f, "invalid field number at byte {}", self.at),
            ErrorKind::UnsupportedWireType(w) => write!(f, "unsupported wire type {w} at byte {}", self.at),
        }
    }
}

impl std::error::Error for Error {}

/// The fields of one message, in order, each checked against the bounds of
/// the message; stops after the first error. Nothing is copied.
#[derive(Clone, Debug)]
pub struct Fields<'a> {
    cur: Cursor<'a>,
    done: bool,
}

impl<'a> Fields<'a> {
    /// The fields of a whole buffer.
    pub fn new(bytes: &'a [u8]) -> Self {
        Message::new(bytes).fields()
    }

    /// Reads the next field, or fails at the offset (relative to the message)
    /// where it stops making sense.
    #[inline(always)]
    fn field(&mut self) -> Result<Field<'a>, (usize, ErrorKind)> {
        let cur = &mut self.cur;
        let at = cur.pos;
        let (number, wire) = cur.read_key()?;
        let value = match wire {
            VARINT => Value::Varint(cur.read_varint()?),
            I64 => Value::I64(u64::from_le_bytes(cur.read_fixed::<8>()?)),
            LEN => Value::Len(cur.read_len()?),
            _ => Value::I32(u32::from_le_bytes(cur.read_fixed::<4>()?)),
        };
        let raw = cur.msg.bytes.get(at..cur.pos).unwrap_or_default();
        Ok(Field { number, value, at: cur.msg.offset + at, raw })
    }

    /// Stops the iteration (after an error found by the caller).
    pub fn stop(&mut self) {
        self.done = true;
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, Error>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.cur.pos >= self.cur.msg.bytes.len() {
            return None;
        }
        match self.field() {
            Ok(field) => Some(Ok(field)),
            Err((at, kind)) => {
                self.done = true;
                Some(Err(Error { at: self.cur.msg.offset + at, kind }))
            }
        }
    }
}

/// The lean reader under [`Fields`]: a key, then its value read by the
/// caller as the type it expects, with no [`Field`] built in between. The
/// hot loops of a decoder read this way; the checks and the error offsets
/// are the same as [`Fields`]'.
///
/// ```
/// use selftrace::wire::{Cursor, LEN, Message, VARINT};
///
/// // field 1 = 150 (varint), field 2 = "hi"
/// let mut cursor = Cursor::new(Message::new(&[0x08, 0x96, 0x01, 0x12, 0x02, b'h', b'i']));
/// assert_eq!(cursor.key()?, Some((1, VARINT)));
/// assert_eq!(cursor.varint()?, 150);
/// assert_eq!(cursor.key()?, Some((2, LEN)));
/// assert_eq!(cursor.len()?.bytes, b"hi");
/// assert_eq!(cursor.key()?, None);
/// # Ok::<(), selftrace::wire::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Cursor<'a> {
    msg: Message<'a>,
    pos: usize,
    key_at: usize,
}

impl<'a> Cursor<'a> {
    /// A reader at the start of `msg`.
    #[inline]
    pub fn new(msg: Message<'a>) -> Self {
        Self { msg, pos: 0, key_at: 0 }
    }

    #[inline(always)]
    fn error(&self, (at, kind): (usize, ErrorKind)) -> Error {
        Error { at: self.msg.offset + at, kind }
    }

    /// The next field's number and wire type (a supported one: 0, 1, 2 or
    /// 5), or `None` at the end of the message. Its value must be read or
    /// [skipped](Self::skip) before the next key.
    ///
    /// # Errors
    ///
    /// A key cut short, field number 0 or above 2²⁹ − 1, or an unsupported
    /// wire type, at the key's offset.
    #[inline(always)]
    pub fn key(&mut self) -> Result<Option<(u32, u8)>, Error> {
        if self.pos >= self.msg.bytes.len() {
            return Ok(None);
        }
        self.key_at = self.pos;
        self.read_key().map(Some).map_err(|e| self.error(e))
    }

    /// Offset in the outermost buffer of the key [`key`](Self::key) read last.
    #[inline]
    pub fn key_at(&self) -> usize {
        self.msg.offset + self.key_at
    }

    /// A varint value.
    ///
    /// # Errors
    ///
    /// Cut short or longer than ten bytes.
    #[inline(always)]
    pub fn varint(&mut self) -> Result<u64, Error> {
        self.read_varint().map_err(|e| self.error(e))
    }

    /// A fixed 64-bit value (wire type 1).
    ///
    /// # Errors
    ///
    /// Fewer than 8 bytes left.
    #[inline(always)]
    pub fn fixed64(&mut self) -> Result<u64, Error> {
        self.read_fixed::<8>().map(u64::from_le_bytes).map_err(|e| self.error(e))
    }

    /// A fixed 32-bit value (wire type 5).
    ///
    /// # Errors
    ///
    /// Fewer than 4 bytes left.
    #[inline(always)]
    pub fn fixed32(&mut self) -> Result<u32, Error> {
        self.read_fixed::<4>().map(u32::from_le_bytes).map_err(|e| self.error(e))
    }

    /// A length-delimited payload (wire type 2).
    ///
    /// # Errors
    ///
    /// A length that runs past the message, at the length's offset.
    #[inline(always)]
    pub fn len(&mut self) -> Result<Message<'a>, Error> {
        self.read_len().map_err(|e| self.error(e))
    }

    /// Skips a value of wire type `wire` (as [`key`](Self::key) returned it).
    ///
    /// # Errors
    ///
    /// As reading the value would fail.
    #[inline]
    pub fn skip(&mut self, wire: u8) -> Result<(), Error> {
        match wire {
            VARINT => self.varint().map(drop),
            I64 => self.fixed64().map(drop),
            LEN => self.len().map(drop),
            _ => self.fixed32().map(drop),
        }
    }

    #[inline(always)]
    fn read_key(&mut self) -> Result<(u32, u8), (usize, ErrorKind)> {
        let at = self.pos;
        let key = self.read_varint()?;
        let number = u32::try_from(key >> 3).map_err(|_| (at, ErrorKind::InvalidFieldNumber))?;
        if number == 0 || number > (1 << 29) - 1 {
            return Err((at, ErrorKind::InvalidFieldNumber));
        }
        match (key & 7) as u8 {
            wire @ (VARINT | I64 | LEN | I32) => Ok((number, wire)),
            wire => Err((at, ErrorKind::UnsupportedWireType(wire))),
        }
    }

    #[inline(always)]
    fn read_len(&mut self) -> Result<Message<'a>, (usize, ErrorKind)> {
        let len_at = self.pos;
        let len = self.read_varint()?;
        let start = self.pos;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| start.checked_add(len))
            .filter(|&end| end <= self.msg.bytes.len())
            .ok_or((len_at, ErrorKind::Truncated))?;
        self.pos = end;
        let bytes = self.msg.bytes.get(start..end).ok_or((len_at, ErrorKind::Truncated))?;
        Ok(Message { bytes, offset: self.msg.offset + start })
    }

    #[inline(always)]
    fn read_varint(&mut self) -> Result<u64, (usize, ErrorKind)> {
        // One byte: keys, small lengths and most values (also the last byte
        // of a message); two bytes: the lengths of most records; three: the
        // lengths of containers (requests up to 2 MiB).
        let (bytes, at) = (self.msg.bytes, self.pos);
        if let Some(&b0) = bytes.get(at) {
            if b0 < 0x80 {
                self.pos = at + 1;
                return Ok(u64::from(b0));
            }
            if let Some(&b1) = bytes.get(at + 1) {
                let low = u64::from(b0 & 0x7f) | (u64::from(b1 & 0x7f) << 7);
                if b1 < 0x80 {
                    self.pos = at + 2;
                    return Ok(low);
                }
                if let Some(&b2) = bytes.get(at + 2)
                    && b2 < 0x80
                {
                    self.pos = at + 3;
                    return Ok(low | (u64::from(b2) << 14));
                }
            }
        }
        self.long_varint()
    }

    fn long_varint(&mut self) -> Result<u64, (usize, ErrorKind)> {
        let start = self.pos;
        let mut value = 0_u64;
        let mut shift = 0;
        while shift < 70 {
            let Some(&byte) = self.msg.bytes.get(self.pos) else {
                return Err((start, ErrorKind::Truncated));
            };
            self.pos += 1;
            // The tenth byte may only carry the top bit of a u64.
            if shift == 63 && byte > 1 {
                return Err((start, ErrorKind::VarintTooLong));
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
            shift += 7;
        }
        Err((start, ErrorKind::VarintTooLong))
    }

    #[inline(always)]
    fn read_fixed<const N: usize>(&mut self) -> Result<[u8; N], (usize, ErrorKind)> {
        let start = self.pos;
        let bytes = self.msg.bytes.get(start..start + N).ok_or((start, ErrorKind::Truncated))?;
        self.pos += N;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }
}

/// Reads one varint from the front of `bytes`: the value and the rest, or
/// `None` when it is cut short or longer than ten bytes.
#[inline]
pub fn read_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut cursor = Cursor::new(Message::new(bytes));
    let value = cursor.read_varint().ok()?;
    Some((value, bytes.get(cursor.pos..).unwrap_or_default()))
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

    /// The short varint paths read what the general loop reads: value,
    /// bytes taken and error, for every one- and two-byte start, with and
    /// without a third byte, at the end of a message or not.
    #[test]
    fn short_varints_read_as_the_general_loop_does() {
        let read = |bytes: &[u8], general: bool| {
            let mut cursor = Cursor::new(Message::new(bytes));
            let value = if general { cursor.long_varint() } else { cursor.read_varint() };
            (value, cursor.pos)
        };
        for b0 in 0..=255_u8 {
            assert_eq!(read(&[b0], false), read(&[b0], true), "{b0:#x}");
            for b1 in 0..=255_u8 {
                for tail in [&[][..], &[0], &[0x7f], &[0x80], &[0xff, 0x01], &[0x80, 0x80]] {
                    let bytes = [&[b0, b1][..], tail].concat();
                    assert_eq!(read(&bytes, false), read(&bytes, true), "{bytes:x?}");
                }
            }
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
    fn malformed_fields_are_errors_at_their_offset() {
        let kind = |bytes: &[u8]| Fields::new(bytes).find_map(Result::err).map(|e| (e.at, e.kind));
        assert_eq!(kind(&[0x0A, 0x05, 1]), Some((1, ErrorKind::Truncated)));
        assert_eq!(kind(&[0x08, 0x96, 0x01, 0x00]), Some((3, ErrorKind::InvalidFieldNumber)));
        assert_eq!(kind(&[0x0B]), Some((0, ErrorKind::UnsupportedWireType(3))));
        assert_eq!(
            kind(&[0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02]),
            Some((1, ErrorKind::VarintTooLong))
        );
        assert_eq!(kind(&[0x09, 1, 2, 3]), Some((1, ErrorKind::Truncated)));
        // A field's raw bytes and its payload's offset.
        let field = Fields::new(&[0x08, 0x01, 0x12, 0x01, 0x07]).nth(1).expect("two fields").expect("well formed");
        assert_eq!((field.at, field.raw), (2, &[0x12, 0x01, 0x07][..]));
        assert_eq!(field.value, Value::Len(Message { bytes: &[7], offset: 4 }));
    }
}
