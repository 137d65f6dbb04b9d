//! A zero-copy reader of OTLP `ExportLogsServiceRequest` bytes.
//!
//! [`LogsRequest`] walks the protobuf wire format in place: resource logs,
//! scope logs and records are views over the input, strings are borrowed
//! `&str`, and each record implements the same
//! `LogRecordView` (`selftrace::view`) the encoder reads, so a record
//! can be re-encoded, printed or emitted into the SDK without building an
//! intermediate message. Nothing is allocated.
//!
//! # Untrusted input
//!
//! The bytes are treated as hostile. A record is checked whole (every field,
//! every nested value, UTF-8 of every string, the lengths of trace and span
//! ids, a nesting depth of at most 32) before it is handed
//! out; a problem gives a [`DecodeError`] with the byte offset where it was
//! found, never a panic. Every step consumes input and recursion is bounded
//! by the depth limit, so time is linear in the input and the stack is
//! bounded. Iterators stop after their first error.
//!
//! # Protobuf rules followed
//!
//! Unknown fields are skipped (newer senders stay readable). For a field
//! that appears more than once, the last occurrence wins, for scalars as for
//! `body` and the `scope` message, as protobuf's merge rules give for oneofs
//! and strings. An `AnyValue` with no value set (OTLP's "empty" value) is not
//! visited: an attribute or array element holding one is skipped, a body
//! holding one is no body. `string_value_strindex` and `key_strindex`
//! (dictionary references used by profiles, never by logs) are skipped the
//! same way. Groups (wire types 3 and 4) are rejected.
//!
//! # How it reads
//!
//! Every reader here is on `selftrace::wire::Cursor` (a key, then the value
//! read as the field's type expects). A key-value or value in the shape
//! every OTLP encoder writes (the key, then one scalar field, lengths of one
//! byte) is read in a few comparisons; any other shape is read field by
//! field, with the same result. The SDK emitter
//! (`selftrace_bridge::sdk::SdkEmitter`) reads each record once,
//! checking it while it builds the SDK record, and emits it only once the
//! record is found whole.

use std::{cell::RefCell, fmt};

use crate::{
    view::{AnyValue, ArrayView, LogRecordView, MapView, RecordVisitor, Severity, TraceContext},
    wire,
};

/// How deeply `AnyValue`s may nest (arrays and maps inside values) before a
/// request is rejected. The selftrace encoder nests at most 16 deep.
#[doc(hidden)]
pub const MAX_NESTING_DEPTH: usize = 32;

// === impl DecodeError ===

/// Why a request could not be read, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError {
    offset: usize,
    kind: DecodeErrorKind,
}

/// What was wrong with the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// A varint, fixed-width value or length-delimited field runs past the
    /// end of the message that contains it.
    Truncated,
    /// A varint longer than 10 bytes, or one that overflows 64 bits.
    VarintTooLong,
    /// A field number of 0 or above 2^29 - 1.
    InvalidFieldNumber,
    /// A wire type protobuf does not define, or a group (3, 4).
    UnsupportedWireType(u8),
    /// A known field with the wrong wire type.
    WrongWireType {
        /// The field, as `Message.field`.
        field: &'static str,
    },
    /// A string field that is not UTF-8.
    InvalidUtf8 {
        /// The field, as `Message.field`.
        field: &'static str,
    },
    /// A trace id that is not 16 bytes, or a span id that is not 8.
    InvalidIdLength {
        /// The field, as `Message.field`.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// Values nested deeper than 32.
    TooDeep,
}

impl DecodeError {
    fn new(offset: usize, kind: DecodeErrorKind) -> Self {
        Self { offset, kind }
    }

    /// The byte offset in the request where the problem was found.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// What the problem is.
    pub fn kind(&self) -> DecodeErrorKind {
        self.kind
    }
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated => f.write_str("field runs past the end of its message"),
            Self::VarintTooLong => f.write_str("varint longer than 64 bits"),
            Self::InvalidFieldNumber => f.write_str("invalid field number"),
            Self::UnsupportedWireType(wire) => write!(f, "unsupported wire type {wire}"),
            Self::WrongWireType { field } => write!(f, "wrong wire type for {field}"),
            Self::InvalidUtf8 { field } => write!(f, "{field} is not UTF-8"),
            Self::InvalidIdLength { field, len } => write!(f, "{field} has {len} bytes"),
            Self::TooDeep => write!(f, "values nested deeper than {MAX_NESTING_DEPTH}"),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed OTLP logs request at byte {}: {}", self.offset, self.kind)
    }
}

impl std::error::Error for DecodeError {}

// === wire format ===

// The reader is `selftrace::wire`'s; what is added here names the field a
// problem is in.

type Msg<'a> = wire::Message<'a>;

use wire::{Cursor, I32, I64, LEN, VARINT, read_varint};

impl From<wire::Error> for DecodeError {
    fn from(error: wire::Error) -> Self {
        let kind = match error.kind {
            wire::ErrorKind::Truncated => DecodeErrorKind::Truncated,
            wire::ErrorKind::VarintTooLong => DecodeErrorKind::VarintTooLong,
            wire::ErrorKind::InvalidFieldNumber => DecodeErrorKind::InvalidFieldNumber,
            wire::ErrorKind::UnsupportedWireType(wire) => DecodeErrorKind::UnsupportedWireType(wire),
        };
        DecodeError::new(error.at, kind)
    }
}

/// A message read as a string field.
#[inline]
fn str_of<'a>(msg: Msg<'a>, field: &'static str) -> Result<&'a str, DecodeError> {
    utf8(msg.bytes).map_err(|e| DecodeError::new(msg.offset + e.valid_up_to(), DecodeErrorKind::InvalidUtf8 { field }))
}

/// `std::str::from_utf8`, with the strings of telemetry (keys, names, most
/// values: short and ASCII) checked inline: the call into `from_utf8` costs
/// more than the check of a short string.
#[inline]
fn utf8(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    if bytes.is_ascii() {
        // SAFETY: every ASCII byte sequence is valid UTF-8; the unit test
        // `utf8_agrees_with_from_utf8` checks the helper against std.
        #[expect(unsafe_code, reason = "ASCII was just checked; from_utf8 would check it again, out of line")]
        return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    std::str::from_utf8(bytes)
}

/// The messages of one repeated field of a message, each parsed; other
/// fields are skipped. Stops after the first error.
#[derive(Clone, Debug)]
struct Repeated<'a> {
    cur: Cursor<'a>,
    done: bool,
}

impl<'a> Repeated<'a> {
    fn new(msg: Msg<'a>) -> Self {
        Self { cur: Cursor::new(msg), done: false }
    }

    /// The next occurrence of field `number`, parsed.
    #[inline(always)]
    fn next<T>(
        &mut self,
        number: u32,
        name: &'static str,
        parse: fn(Msg<'a>) -> Result<T, DecodeError>,
    ) -> Option<Result<T, DecodeError>> {
        if self.done {
            return None;
        }
        let parsed = loop {
            match self.cur.key() {
                Ok(None) => return None,
                Ok(Some((n, LEN))) if n == number => break self.cur.len().map_err(DecodeError::from).and_then(parse),
                Ok(Some((n, wire))) if n == number => break Err(wrong(&mut self.cur, wire, name)),
                Ok(Some((_, wire))) => {
                    if let Err(e) = self.cur.skip(wire) {
                        break Err(e.into());
                    }
                }
                Err(e) => break Err(e.into()),
            }
        };
        self.done = parsed.is_err();
        Some(parsed)
    }
}

// === values ===

/// One decoded `AnyValue`, before it is lent out as a [`selftrace::view::AnyValue`].
#[derive(Clone, Copy, Debug)]
enum Value<'a> {
    Str(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(&'a [u8]),
    Array(Msg<'a>),
    Map(Msg<'a>),
}

/// Checks an `AnyValue` and everything nested in it: every occurrence of
/// every field, not only the one that wins, as a protobuf parser would
/// (prost merges repeated occurrences). Returns the value that wins (the one
/// set last).
fn check_value(msg: Msg<'_>, depth: usize) -> Result<Option<Value<'_>>, DecodeError> {
    read_value(msg, Some(depth))
}

/// Reads an `AnyValue`: with `Some(depth)` everything nested in it is
/// checked too ([`check_value`]); with `None` only this level is read (a
/// value of a record checked before).
#[inline]
fn read_value(msg: Msg<'_>, depth: Option<usize>) -> Result<Option<Value<'_>>, DecodeError> {
    if depth.is_some_and(|depth| depth > MAX_NESTING_DEPTH) {
        return Err(DecodeError::new(msg.offset, DecodeErrorKind::TooDeep));
    }
    match canonical_value(msg.bytes) {
        Some(value) => Ok(value),
        None => read_value_fields(msg, depth),
    }
}

/// [`read_value`] field by field, for any shape.
fn read_value_fields(msg: Msg<'_>, depth: Option<usize>) -> Result<Option<Value<'_>>, DecodeError> {
    let mut cur = Cursor::new(msg);
    let mut value = None;
    while let Some((number, wire)) = cur.key()? {
        let set = match (number, wire) {
            (1, LEN) => Some(Value::Str(str_of(cur.len()?, "AnyValue.string_value")?)),
            (2, VARINT) => Some(Value::Bool(cur.varint()? != 0)),
            (3, VARINT) => Some(Value::Int(cur.varint()? as i64)),
            (4, I64) => Some(Value::Double(f64::from_bits(cur.fixed64()?))),
            (5, LEN) => {
                let array = cur.len()?;
                if let Some(depth) = depth {
                    let mut elements = Cursor::new(array);
                    while let Some((number, wire)) = elements.key()? {
                        match (number, wire) {
                            (1, LEN) => drop(check_value(elements.len()?, depth + 1)?),
                            (1, _) => return Err(wrong(&mut elements, wire, "ArrayValue.values")),
                            _ => elements.skip(wire)?,
                        }
                    }
                }
                Some(Value::Array(array))
            }
            (6, LEN) => {
                let map = cur.len()?;
                if let Some(depth) = depth {
                    check_key_values(map, 1, "KeyValueList.values", depth + 1)?;
                }
                Some(Value::Map(map))
            }
            (7, LEN) => Some(Value::Bytes(cur.len()?.bytes)),
            (8, VARINT) => {
                cur.varint()?;
                None
            }
            (1..=8, _) => {
                return Err(wrong(&mut cur, wire, ANY_VALUE_FIELDS.get(number as usize).copied().unwrap_or_default()));
            }
            _ => {
                cur.skip(wire)?;
                None
            }
        };
        value = set.or(value);
    }
    Ok(value)
}

/// `AnyValue`'s fields by number, for [`DecodeErrorKind::WrongWireType`].
const ANY_VALUE_FIELDS: [&str; 9] = [
    "",
    "AnyValue.string_value",
    "AnyValue.bool_value",
    "AnyValue.int_value",
    "AnyValue.double_value",
    "AnyValue.array_value",
    "AnyValue.kvlist_value",
    "AnyValue.bytes_value",
    "AnyValue.string_value_strindex",
];

/// The error for a known field of the wrong wire type: its value is read
/// first, so a value cut short is reported as such, as `selftrace::wire::Fields` does.
#[cold]
fn wrong(cur: &mut Cursor<'_>, wire: u8, field: &'static str) -> DecodeError {
    match cur.skip(wire) {
        Err(e) => e.into(),
        Ok(()) => DecodeError::new(cur.key_at(), DecodeErrorKind::WrongWireType { field }),
    }
}

/// Checks the repeated `KeyValue` field `number` of `msg`, every field of
/// every entry.
fn check_key_values(msg: Msg<'_>, number: u32, name: &'static str, depth: usize) -> Result<(), DecodeError> {
    let mut cur = Cursor::new(msg);
    while let Some((n, wire)) = cur.key()? {
        match (n == number, wire) {
            (true, LEN) => check_key_value(cur.len()?, depth)?,
            (true, _) => return Err(wrong(&mut cur, wire, name)),
            _ => cur.skip(wire)?,
        }
    }
    Ok(())
}

/// Checks a `KeyValue` message whole.
fn check_key_value(msg: Msg<'_>, depth: usize) -> Result<(), DecodeError> {
    read_key_value(msg, Some(depth)).map(drop)
}

/// Reads a `KeyValue`: its key and the value that wins, checked whole with
/// `Some(depth)`, one level only with `None` (see [`read_value`]).
#[inline]
fn read_key_value(msg: Msg<'_>, depth: Option<usize>) -> Result<(&str, Option<Value<'_>>), DecodeError> {
    match canonical_key_value(msg.bytes) {
        Some(key_value) => Ok(key_value),
        None => read_key_value_fields(msg, depth),
    }
}

/// [`read_key_value`] field by field, for any shape.
fn read_key_value_fields(msg: Msg<'_>, depth: Option<usize>) -> Result<(&str, Option<Value<'_>>), DecodeError> {
    let (mut key, mut value) = ("", None);
    let mut cur = Cursor::new(msg);
    while let Some((number, wire)) = cur.key()? {
        match (number, wire) {
            (1, LEN) => key = str_of(cur.len()?, "KeyValue.key")?,
            // The last value message wins, even an empty one.
            (2, LEN) => value = read_value(cur.len()?, depth)?,
            (3, VARINT) => drop(cur.varint()?),
            (1, _) => return Err(wrong(&mut cur, wire, "KeyValue.key")),
            (2, _) => return Err(wrong(&mut cur, wire, "KeyValue.value")),
            (3, _) => return Err(wrong(&mut cur, wire, "KeyValue.key_strindex")),
            _ => cur.skip(wire)?,
        }
    }
    Ok((key, value))
}

// === canonical shapes ===
//
// Every OTLP encoder writes an attribute the same way: the key, then a value
// holding one scalar field, lengths in one byte. These read exactly that
// shape in a few comparisons, and give up (`None`) on anything else, which
// the general reader above then reads, checks and reports; so they accept
// only what it accepts, with the same result.

/// `KeyValue { key, value }` in its canonical shape, its value a scalar
/// ([`canonical_value`]).
#[inline]
fn canonical_key_value(bytes: &[u8]) -> Option<(&str, Option<Value<'_>>)> {
    let [KV_KEY_TAG, key_len, rest @ ..] = bytes else { return None };
    let (key, rest) = rest.split_at_checked(usize::from(*key_len).min(0x80))?;
    let [KV_VALUE_TAG, value_len, value @ ..] = rest else { return None };
    if *key_len >= 0x80 || usize::from(*value_len) != value.len() {
        return None;
    }
    Some((utf8(key).ok()?, canonical_value(value)?))
}

const KV_KEY_TAG: u8 = 0x0A;
const KV_VALUE_TAG: u8 = 0x12;

/// An `AnyValue` holding exactly one scalar field (or none), lengths in one
/// byte: `Some(value)`; `None` for any other shape.
#[inline]
fn canonical_value(bytes: &[u8]) -> Option<Option<Value<'_>>> {
    Some(Some(match bytes {
        [] => return Some(None),
        // string_value
        [0x0A, len, s @ ..] if usize::from(*len) == s.len() && *len < 0x80 => Value::Str(utf8(s).ok()?),
        // bool_value
        [0x10, b] if *b < 0x80 => Value::Bool(*b != 0),
        // int_value
        [0x18, v @ ..] => match read_varint(v)? {
            (v, []) => Value::Int(v as i64),
            _ => return None,
        },
        // double_value
        [0x21, d @ ..] => Value::Double(f64::from_le_bytes(d.try_into().ok()?)),
        // bytes_value
        [0x3A, len, b @ ..] if usize::from(*len) == b.len() && *len < 0x80 => Value::Bytes(b),
        _ => return None,
    }))
}

/// Calls `f` with a checked `AnyValue`; not at all for an empty one.
fn with_value(msg: Msg<'_>, f: impl FnOnce(AnyValue<'_>)) {
    // Checked before the record was handed out: errors cannot happen here.
    if let Ok(Some(value)) = read_value(msg, None) {
        lend(value, f);
    }
}

/// Calls `f` with `value` as a view.
#[inline]
fn lend(value: Value<'_>, f: impl FnOnce(AnyValue<'_>)) {
    match value {
        Value::Str(s) => f(AnyValue::Str(s)),
        Value::Bool(b) => f(AnyValue::Bool(b)),
        Value::Int(i) => f(AnyValue::Int(i)),
        Value::Double(d) => f(AnyValue::Double(d)),
        Value::Bytes(b) => f(AnyValue::Bytes(b)),
        Value::Array(msg) => f(AnyValue::Array(&ArrayRef(msg))),
        Value::Map(msg) => f(AnyValue::Map(&KeyValues { msg, number: 1 })),
    }
}

/// The elements of a checked `ArrayValue`.
struct ArrayRef<'a>(Msg<'a>);

impl ArrayView for ArrayRef<'_> {
    fn visit_values(&self, visitor: &mut dyn FnMut(AnyValue<'_>)) {
        // Checked before the record was handed out: errors cannot happen here.
        let mut cur = Cursor::new(self.0);
        while let Ok(Some((number, wire))) = cur.key() {
            match (number, wire) {
                (1, LEN) => match cur.len() {
                    Ok(value) => with_value(value, &mut *visitor),
                    Err(_) => return,
                },
                _ if cur.skip(wire).is_err() => return,
                _ => {}
            }
        }
    }
}

/// The repeated `KeyValue` field `number` of a checked message: the entries
/// of a `KeyValueList`, or the attributes of a resource or scope.
#[derive(Clone, Copy, Debug)]
struct KeyValues<'a> {
    msg: Msg<'a>,
    number: u32,
}

impl MapView for KeyValues<'_> {
    fn visit_entries(&self, visitor: &mut dyn FnMut(&str, AnyValue<'_>)) {
        // Checked before the record was handed out: errors cannot happen here.
        let mut cur = Cursor::new(self.msg);
        while let Ok(Some((number, wire))) = cur.key() {
            match (number == self.number, wire) {
                (true, LEN) => match cur.len().map(|kv| read_key_value(kv, None)) {
                    Ok(Ok((key, Some(value)))) => lend(value, |value| visitor(key, value)),
                    Ok(_) => {}
                    Err(_) => return,
                },
                _ if cur.skip(wire).is_err() => return,
                _ => {}
            }
        }
    }
}

// === impl LogsRequest ===

/// A view over the bytes of one `ExportLogsServiceRequest`.
///
/// # Examples
///
/// ```
/// use selftrace::{view::{LogRecordView, Severity}, encoder::StatefulOtlpEncoder};
/// use selftrace::decode::LogsRequest;
///
/// // Bytes as the selftrace layer produces them (here from a hand-made view).
/// # use selftrace::view::{AnyValue, RecordVisitor};
/// # struct Started;
/// # impl LogRecordView for Started {
/// #     fn time_unix_nano(&self) -> Option<u64> { Some(1) }
/// #     fn observed_time_unix_nano(&self) -> Option<u64> { Some(1) }
/// #     fn severity(&self) -> Option<Severity> { Some(Severity::INFO) }
/// #     fn event_name(&self) -> Option<&str> { Some("engine.started") }
/// #     fn visit(&self, v: &mut dyn RecordVisitor) { v.visit_body(AnyValue::Str("up")); }
/// # }
/// let mut encoder = StatefulOtlpEncoder::new();
/// encoder.encode_log_record("engine", &Started)?;
/// let bytes = encoder.flush();
///
/// let request = LogsRequest::new(bytes.as_bytes());
/// let mut seen = Vec::new();
/// let count = request.for_each_record(|scope, record| {
///     seen.push((scope.name().to_owned(), record.event_name().map(str::to_owned), record.severity()));
/// })?;
/// assert_eq!(count, 1);
/// assert_eq!(seen, [("engine".to_owned(), Some("engine.started".to_owned()), Some(Severity::INFO))]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct LogsRequest<'a> {
    msg: Msg<'a>,
}

impl<'a> LogsRequest<'a> {
    /// A view over `bytes`. Nothing is read until it is iterated.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { msg: Msg::new(bytes) }
    }

    /// The request's `ResourceLogs`, in order.
    pub fn resource_logs(&self) -> impl Iterator<Item = Result<ResourceLogs<'a>, DecodeError>> + Clone + use<'a> {
        ResourceLogsIter { fields: Repeated::new(self.msg) }
    }

    /// Calls `f` with every record and the scope it belongs to, in order,
    /// and returns how many there were.
    ///
    /// # Errors
    ///
    /// The first problem found; the records before it have been visited.
    pub fn for_each_record(&self, mut f: impl FnMut(&ScopeLogs<'a>, &DecodedRecord<'a>)) -> Result<usize, DecodeError> {
        let mut count = 0;
        for resource_logs in self.resource_logs() {
            for scope_logs in resource_logs?.scope_logs() {
                let scope_logs = scope_logs?;
                for record in scope_logs.records() {
                    f(&scope_logs, &record?);
                    count += 1;
                }
            }
        }
        Ok(count)
    }
}

/// The `ResourceLogs` of a [`LogsRequest`].
#[derive(Clone, Debug)]
struct ResourceLogsIter<'a> {
    fields: Repeated<'a>,
}

impl<'a> Iterator for ResourceLogsIter<'a> {
    type Item = Result<ResourceLogs<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.fields.next(1, "ExportLogsServiceRequest.resource_logs", ResourceLogs::parse)
    }
}

// === impl ResourceLogs ===

/// One `ResourceLogs`: a resource and its scope logs.
#[derive(Clone, Copy, Debug)]
pub struct ResourceLogs<'a> {
    msg: Msg<'a>,
    resource: Option<DecodedResource<'a>>,
    schema_url: &'a str,
}

impl<'a> ResourceLogs<'a> {
    fn parse(msg: Msg<'a>) -> Result<Self, DecodeError> {
        let mut this = Self { msg, resource: None, schema_url: "" };
        let mut cur = Cursor::new(msg);
        while let Some((number, wire)) = cur.key()? {
            match (number, wire) {
                (1, LEN) => this.resource = Some(DecodedResource::parse(cur.len()?)?),
                (3, LEN) => this.schema_url = str_of(cur.len()?, "ResourceLogs.schema_url")?,
                (1, _) => return Err(wrong(&mut cur, wire, "ResourceLogs.resource")),
                (3, _) => return Err(wrong(&mut cur, wire, "ResourceLogs.schema_url")),
                _ => cur.skip(wire)?,
            }
        }
        Ok(this)
    }

    /// The resource, when the request has one.
    pub fn resource(&self) -> Option<DecodedResource<'a>> {
        self.resource
    }

    /// The schema URL (empty when not set).
    pub fn schema_url(&self) -> &'a str {
        self.schema_url
    }

    /// The `ScopeLogs`, in order.
    pub fn scope_logs(&self) -> impl Iterator<Item = Result<ScopeLogs<'a>, DecodeError>> + Clone + use<'a> {
        ScopeLogsIter { fields: Repeated::new(self.msg) }
    }
}

/// A `Resource`: its attributes are visited through [`MapView`].
#[derive(Clone, Copy, Debug)]
pub struct DecodedResource<'a> {
    attributes: KeyValues<'a>,
    dropped_attributes_count: u32,
}

thread_local! {
    /// The last resource this thread checked whole and found well formed,
    /// with its dropped count: a producer writes the same resource into
    /// every request, and the same bytes check the same way, so they are
    /// compared instead of checked again.
    static CHECKED_RESOURCE: RefCell<(Vec<u8>, u32)> = const { RefCell::new((Vec::new(), 0)) };
}

/// The largest resource [`CHECKED_RESOURCE`] keeps.
const MAX_REMEMBERED_RESOURCE_BYTES: usize = 2048;

impl<'a> DecodedResource<'a> {
    fn parse(msg: Msg<'a>) -> Result<Self, DecodeError> {
        let attributes = KeyValues { msg, number: 1 };
        let remembered = CHECKED_RESOURCE
            .try_with(|last| last.try_borrow().ok().filter(|last| last.0 == msg.bytes).map(|last| last.1))
            .ok()
            .flatten();
        if let Some(dropped_attributes_count) = remembered {
            return Ok(Self { attributes, dropped_attributes_count });
        }
        let checked = Self::check(msg)?;
        if msg.bytes.len() <= MAX_REMEMBERED_RESOURCE_BYTES {
            let _ = CHECKED_RESOURCE.try_with(|last| {
                if let Ok(mut last) = last.try_borrow_mut() {
                    last.0.clear();
                    last.0.extend_from_slice(msg.bytes);
                    last.1 = checked.dropped_attributes_count;
                }
            });
        }
        Ok(checked)
    }

    /// Checks the resource whole.
    fn check(msg: Msg<'a>) -> Result<Self, DecodeError> {
        let mut dropped_attributes_count = 0;
        let mut cur = Cursor::new(msg);
        while let Some((number, wire)) = cur.key()? {
            match (number, wire) {
                (1, LEN) => check_key_value(cur.len()?, 0)?,
                (2, VARINT) => dropped_attributes_count = cur.varint()? as u32,
                (1, _) => return Err(wrong(&mut cur, wire, "Resource.attributes")),
                (2, _) => return Err(wrong(&mut cur, wire, "Resource.dropped_attributes_count")),
                _ => cur.skip(wire)?,
            }
        }
        Ok(Self { attributes: KeyValues { msg, number: 1 }, dropped_attributes_count })
    }

    /// Attributes the sender dropped.
    pub fn dropped_attributes_count(&self) -> u32 {
        self.dropped_attributes_count
    }
}

impl<'a> DecodedResource<'a> {
    /// Reads and checks one encoded `Resource` message (as
    /// [`OtlpResource::encoded`](crate::encoder::OtlpResource::encoded) holds).
    ///
    /// # Errors
    ///
    /// What is wrong with the bytes.
    pub fn new(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        Self::check(Msg::new(bytes))
    }
}

impl MapView for DecodedResource<'_> {
    fn visit_entries(&self, visitor: &mut dyn FnMut(&str, AnyValue<'_>)) {
        self.attributes.visit_entries(visitor);
    }
}

/// The `ScopeLogs` of a [`ResourceLogs`].
#[derive(Clone, Debug)]
struct ScopeLogsIter<'a> {
    fields: Repeated<'a>,
}

impl<'a> Iterator for ScopeLogsIter<'a> {
    type Item = Result<ScopeLogs<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.fields.next(2, "ResourceLogs.scope_logs", ScopeLogs::parse)
    }
}

// === impl ScopeLogs ===

/// One `ScopeLogs`: an instrumentation scope and its records.
#[derive(Clone, Copy, Debug)]
pub struct ScopeLogs<'a> {
    msg: Msg<'a>,
    name: &'a str,
    version: &'a str,
    attributes: Option<KeyValues<'a>>,
    schema_url: &'a str,
}

impl<'a> ScopeLogs<'a> {
    fn parse(msg: Msg<'a>) -> Result<Self, DecodeError> {
        let mut this = Self { msg, name: "", version: "", attributes: None, schema_url: "" };
        let mut cur = Cursor::new(msg);
        while let Some((number, wire)) = cur.key()? {
            match (number, wire) {
                (1, LEN) => {
                    let scope = cur.len()?;
                    (this.name, this.version) = ("", "");
                    let mut fields = Cursor::new(scope);
                    while let Some((number, wire)) = fields.key()? {
                        match (number, wire) {
                            (1, LEN) => this.name = str_of(fields.len()?, "InstrumentationScope.name")?,
                            (2, LEN) => this.version = str_of(fields.len()?, "InstrumentationScope.version")?,
                            (3, LEN) => check_key_value(fields.len()?, 0)?,
                            (4, VARINT) => drop(fields.varint()?),
                            (1..=4, _) => {
                                let name = SCOPE_FIELDS.get(number as usize).copied().unwrap_or_default();
                                return Err(wrong(&mut fields, wire, name));
                            }
                            _ => fields.skip(wire)?,
                        }
                    }
                    this.attributes = Some(KeyValues { msg: scope, number: 3 });
                }
                (3, LEN) => this.schema_url = str_of(cur.len()?, "ScopeLogs.schema_url")?,
                (1, _) => return Err(wrong(&mut cur, wire, "ScopeLogs.scope")),
                (3, _) => return Err(wrong(&mut cur, wire, "ScopeLogs.schema_url")),
                _ => cur.skip(wire)?,
            }
        }
        Ok(this)
    }

    /// The scope name: a node id or a `tracing` target for selftrace's bytes.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The scope version (empty when not set).
    pub fn version(&self) -> &'a str {
        self.version
    }

    /// The schema URL (empty when not set).
    pub fn schema_url(&self) -> &'a str {
        self.schema_url
    }

    /// Calls `visitor` with each scope attribute.
    pub fn visit_attributes(&self, visitor: &mut dyn FnMut(&str, AnyValue<'_>)) {
        if let Some(attributes) = self.attributes {
            attributes.visit_entries(visitor);
        }
    }

    /// The records, in order; each is checked whole before it is returned.
    pub fn records(&self) -> impl Iterator<Item = Result<DecodedRecord<'a>, DecodeError>> + Clone + use<'a> {
        RecordsIter { fields: Repeated::new(self.msg) }
    }

    /// Reads each record once, checking it while `sink` visits it: for each
    /// record `RecordSink::begin`, its attributes and body, then
    /// `RecordSink::end` with the record once it is found whole. A record
    /// found malformed half-way gets no `end`: what the sink built for it
    /// must be discarded.
    ///
    /// # Errors
    ///
    /// The first problem found; the records before it were ended.
    #[doc(hidden)]
    pub fn try_for_each_record(&self, sink: &mut impl RecordSink) -> Result<usize, DecodeError> {
        let mut count = 0;
        let mut cur = Cursor::new(self.msg);
        while let Some((number, wire)) = cur.key()? {
            match (number, wire) {
                (2, LEN) => {
                    sink.begin();
                    let record = DecodedRecord::read(cur.len()?, sink)?;
                    sink.end(&record);
                    count += 1;
                }
                (2, _) => return Err(wrong(&mut cur, wire, "ScopeLogs.log_records")),
                _ => cur.skip(wire)?,
            }
        }
        Ok(count)
    }
}

/// What `ScopeLogs::try_for_each_record` hands each record to (the SDK
/// bridge's emitter): plumbing, outside semver.
#[doc(hidden)]
pub trait RecordSink: RecordVisitor {
    /// A record starts: what was built for a record that did not end is
    /// discarded.
    fn begin(&mut self);
    /// The record was read whole; its attributes and body were visited.
    fn end(&mut self, record: &DecodedRecord<'_>);
}

/// The records of a [`ScopeLogs`].
#[derive(Clone, Debug)]
struct RecordsIter<'a> {
    fields: Repeated<'a>,
}

impl<'a> Iterator for RecordsIter<'a> {
    type Item = Result<DecodedRecord<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.fields.next(2, "ScopeLogs.log_records", DecodedRecord::parse)
    }
}

// === impl DecodedRecord ===

/// One checked OTLP `LogRecord`, borrowed from the request's bytes.
///
/// Implements [`LogRecordView`]: the body and attributes are read from the
/// bytes while they are visited.
#[derive(Clone, Copy, Debug)]
pub struct DecodedRecord<'a> {
    msg: Msg<'a>,
    time_unix_nano: u64,
    observed_time_unix_nano: u64,
    severity_number: i32,
    severity_text: &'a str,
    event_name: &'a str,
    body: Option<Msg<'a>>,
    dropped_attributes_count: u32,
    flags: u32,
    trace_id: &'a [u8],
    span_id: &'a [u8],
}

impl<'a> DecodedRecord<'a> {
    /// Reads and checks the record whole; its body and attributes are
    /// visited later, from the bytes.
    fn parse(msg: Msg<'a>) -> Result<Self, DecodeError> {
        /// Checks without visiting.
        struct Skip;
        impl RecordVisitor for Skip {
            fn visit_body(&mut self, _: AnyValue<'_>) {}
            fn visit_attribute(&mut self, _: &str, _: AnyValue<'_>) {}
        }
        Self::read(msg, &mut Skip)
    }

    /// Reads and checks the record in one pass, visiting its attributes as
    /// they come and its body (the last one, as protobuf merges) at the end.
    /// On an error, what was visited belongs to a rejected record.
    fn read(msg: Msg<'a>, visitor: &mut impl RecordVisitor) -> Result<Self, DecodeError> {
        let mut this = Self {
            msg,
            time_unix_nano: 0,
            observed_time_unix_nano: 0,
            severity_number: 0,
            severity_text: "",
            event_name: "",
            body: None,
            dropped_attributes_count: 0,
            flags: 0,
            trace_id: &[],
            span_id: &[],
        };
        let mut body = None;
        let mut cur = Cursor::new(msg);
        while let Some((number, wire)) = cur.key()? {
            match (number, wire) {
                (1, I64) => this.time_unix_nano = cur.fixed64()?,
                (2, VARINT) => this.severity_number = cur.varint()? as i32,
                (3, LEN) => this.severity_text = str_of(cur.len()?, "LogRecord.severity_text")?,
                (5, LEN) => {
                    let msg = cur.len()?;
                    body = check_value(msg, 0)?;
                    this.body = Some(msg);
                }
                (6, LEN) => {
                    if let (key, Some(value)) = read_key_value(cur.len()?, Some(0))? {
                        lend(value, |value| visitor.visit_attribute(key, value));
                    }
                }
                (7, VARINT) => this.dropped_attributes_count = cur.varint()? as u32,
                (8, I32) => this.flags = cur.fixed32()?,
                (9, LEN) => this.trace_id = checked_id(cur.key_at(), cur.len()?, "LogRecord.trace_id", 16)?,
                (10, LEN) => this.span_id = checked_id(cur.key_at(), cur.len()?, "LogRecord.span_id", 8)?,
                (11, I64) => this.observed_time_unix_nano = cur.fixed64()?,
                (12, LEN) => this.event_name = str_of(cur.len()?, "LogRecord.event_name")?,
                (1..=3 | 5..=12, _) => {
                    return Err(wrong(
                        &mut cur,
                        wire,
                        LOG_RECORD_FIELDS.get(number as usize).copied().unwrap_or_default(),
                    ));
                }
                _ => cur.skip(wire)?,
            }
        }
        if let Some(body) = body {
            lend(body, |value| visitor.visit_body(value));
        }
        Ok(this)
    }

    /// The body when it is a string (zero-copy), the common case: `None`
    /// for no body or a body of another kind (see
    /// [`with_body`](Self::with_body)).
    ///
    /// # Examples
    ///
    /// ```
    /// use selftrace::{decode::LogsRequest, view::LogRecordView, Destination, OtlpBytesChannel, OtlpTracingLayer};
    /// use tracing_subscriber::layer::SubscriberExt;
    ///
    /// let channel = OtlpBytesChannel::new(8);
    /// let layer = OtlpTracingLayer::new(Destination::Channel(channel.sender()));
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///     tracing::info!(target: "db", pool = 16_i64, "connected");
    /// });
    /// let bytes = channel.receiver().try_recv().expect("a request");
    ///
    /// LogsRequest::new(bytes.as_bytes()).for_each_record(|scope, record| {
    ///     assert_eq!(scope.name(), "db");
    ///     assert_eq!(record.body_str(), Some("connected"));
    ///     assert_eq!(record.severity_text(), Some("INFO"));
    ///     let mut attributes = Vec::new();
    ///     record.for_each_attribute(|key, value| attributes.push(format!("{key}={value}")));
    ///     assert_eq!(attributes, ["pool=16"]);
    /// })?;
    /// # Ok::<(), selftrace::decode::DecodeError>(())
    /// ```
    pub fn body_str(&self) -> Option<&'a str> {
        let mut cur = Cursor::new(self.body?);
        while let Ok(Some((number, wire))) = cur.key() {
            match (number, wire) {
                (1, LEN) => return cur.len().ok().and_then(|m| std::str::from_utf8(m.bytes).ok()),
                _ => cur.skip(wire).ok()?,
            }
        }
        None
    }

    /// Calls `f` with the body, whatever its kind; `None` without a body.
    pub fn with_body<R>(&self, f: impl FnOnce(AnyValue<'_>) -> R) -> Option<R> {
        struct Body<F, R>(Option<F>, Option<R>);
        impl<F: FnOnce(AnyValue<'_>) -> R, R> RecordVisitor for Body<F, R> {
            fn visit_body(&mut self, value: AnyValue<'_>) {
                if let Some(f) = self.0.take() {
                    self.1 = Some(f(value));
                }
            }
            fn visit_attribute(&mut self, _: &str, _: AnyValue<'_>) {}
        }
        let mut body = Body(Some(f), None);
        self.visit(&mut body);
        body.1
    }

    /// Calls `f` with each attribute, in order.
    pub fn for_each_attribute(&self, mut f: impl FnMut(&str, AnyValue<'_>)) {
        struct Attributes<F>(F);
        impl<F: FnMut(&str, AnyValue<'_>)> RecordVisitor for Attributes<F> {
            fn visit_body(&mut self, _: AnyValue<'_>) {}
            fn visit_attribute(&mut self, key: &str, value: AnyValue<'_>) {
                (self.0)(key, value);
            }
        }
        self.visit(&mut Attributes(&mut f));
    }

    /// The `severity_text` field as it is (empty when not set).
    pub fn severity_text_field(&self) -> &'a str {
        self.severity_text
    }

    /// The `trace_id` field as it is (empty or 16 bytes).
    pub fn trace_id(&self) -> &'a [u8] {
        self.trace_id
    }

    /// The `span_id` field as it is (empty or 8 bytes).
    pub fn span_id(&self) -> &'a [u8] {
        self.span_id
    }

    /// The raw `severity_number`, also outside OTLP's 1..=24.
    pub fn severity_number(&self) -> i32 {
        self.severity_number
    }

    /// The record's `flags` field (W3C trace flags in the low byte).
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// The record's bytes in the request: `(offset, length)`.
    pub fn span_in_request(&self) -> (usize, usize) {
        (self.msg.offset, self.msg.bytes.len())
    }
}

/// The payload of the id field whose key is at `at`: empty or `len` bytes.
fn checked_id<'a>(at: usize, msg: Msg<'a>, name: &'static str, len: usize) -> Result<&'a [u8], DecodeError> {
    if msg.bytes.is_empty() || msg.bytes.len() == len {
        Ok(msg.bytes)
    } else {
        Err(DecodeError::new(at, DecodeErrorKind::InvalidIdLength { field: name, len: msg.bytes.len() }))
    }
}

/// `InstrumentationScope`'s fields by number, for
/// [`DecodeErrorKind::WrongWireType`].
const SCOPE_FIELDS: [&str; 5] = [
    "",
    "InstrumentationScope.name",
    "InstrumentationScope.version",
    "InstrumentationScope.attributes",
    "InstrumentationScope.dropped_attributes_count",
];

/// `LogRecord`'s fields by number, for [`DecodeErrorKind::WrongWireType`].
const LOG_RECORD_FIELDS: [&str; 13] = [
    "",
    "LogRecord.time_unix_nano",
    "LogRecord.severity_number",
    "LogRecord.severity_text",
    "",
    "LogRecord.body",
    "LogRecord.attributes",
    "LogRecord.dropped_attributes_count",
    "LogRecord.flags",
    "LogRecord.trace_id",
    "LogRecord.span_id",
    "LogRecord.observed_time_unix_nano",
    "LogRecord.event_name",
];

fn non_zero(value: u64) -> Option<u64> {
    (value != 0).then_some(value)
}

fn non_empty(value: &str) -> Option<&str> {
    (!value.is_empty()).then_some(value)
}

impl LogRecordView for DecodedRecord<'_> {
    fn time_unix_nano(&self) -> Option<u64> {
        non_zero(self.time_unix_nano)
    }

    fn observed_time_unix_nano(&self) -> Option<u64> {
        non_zero(self.observed_time_unix_nano)
    }

    fn severity(&self) -> Option<Severity> {
        Severity::from_number(self.severity_number)
    }

    /// The record's `severity_text`, or the canonical text of its number
    /// when the text is not set.
    fn severity_text(&self) -> Option<&str> {
        non_empty(self.severity_text).or_else(|| self.severity().map(Severity::text))
    }

    fn event_name(&self) -> Option<&str> {
        non_empty(self.event_name)
    }

    /// Set when the record has a trace id; a missing span id reads as zeros.
    fn trace_context(&self) -> Option<TraceContext> {
        let trace_id: [u8; 16] = self.trace_id.try_into().ok()?;
        let span_id: [u8; 8] = self.span_id.try_into().unwrap_or_default();
        Some(TraceContext { trace_id, span_id, flags: (self.flags & 0xff) as u8 })
    }

    fn dropped_attributes_count(&self) -> u32 {
        self.dropped_attributes_count
    }

    fn visit(&self, visitor: &mut dyn RecordVisitor) {
        if let Some(body) = self.body {
            with_value(body, |value| visitor.visit_body(value));
        }
        KeyValues { msg: self.msg, number: 6 }.visit_entries(&mut |key, value| visitor.visit_attribute(key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(bytes: &[u8]) -> Option<(usize, DecodeErrorKind)> {
        LogsRequest::new(bytes).for_each_record(|_, _| {}).err().map(|e| (e.offset(), e.kind()))
    }

    use proptest::prelude::*;

    /// Small inputs around the canonical shapes: tags, lengths and payloads
    /// drawn from the bytes that matter.
    fn shaped_bytes() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![
            Just(0x0A_u8),
            Just(0x12),
            Just(0x10),
            Just(0x18),
            Just(0x21),
            Just(0x3A),
            Just(0x80),
            Just(0xFF),
            0_u8..12,
            any::<u8>()
        ];
        let free = prop::collection::vec(byte, 0..24);
        // Key-values built in the canonical shape, then perhaps one byte
        // changed: both sides of every check.
        let value = prop_oneof![
            prop::collection::vec(any::<u8>(), 0..6).prop_map(|s| [vec![0x0A, s.len() as u8], s].concat()),
            any::<u8>().prop_map(|b| vec![0x10, b]),
            prop::collection::vec(any::<u8>(), 1..11).prop_map(|v| [vec![0x18], v].concat()),
            prop::collection::vec(any::<u8>(), 7..10).prop_map(|d| [vec![0x21], d].concat()),
            Just(vec![]),
        ];
        let built = (prop::collection::vec(any::<u8>(), 0..5), value, any::<Option<(prop::sample::Index, u8)>>())
            .prop_map(|(key, value, flip)| {
                let mut kv = [vec![0x0A, key.len() as u8], key, vec![0x12, value.len() as u8], value].concat();
                if let Some((at, byte)) = flip {
                    let i = at.index(kv.len());
                    kv[i] = byte;
                }
                kv
            });
        prop_oneof![free, built]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// The canonical shapes give exactly what the field-by-field
        /// readers give, whenever they do not give up.
        #[test]
        fn canonical_shapes_read_as_the_fields_do(bytes in shaped_bytes()) {
            // A value alone is the tail of a key-value.
            let value_part = bytes.get(2 + usize::from(*bytes.get(1).unwrap_or(&0)) + 2..).unwrap_or_default();
            for value_bytes in [&bytes[..], value_part] {
                if let Some(value) = canonical_value(value_bytes) {
                    let general = read_value_fields(Msg::new(value_bytes), Some(0));
                    prop_assert_eq!(format!("{:?}", Ok::<_, DecodeError>(value)), format!("{general:?}"));
                }
            }
            if let Some(value) = canonical_value(&bytes) {
                let general = read_value_fields(Msg::new(&bytes), Some(0));
                prop_assert_eq!(format!("{:?}", Ok::<_, DecodeError>(value)), format!("{general:?}"));
            }
            if let Some(key_value) = canonical_key_value(&bytes) {
                let general = read_key_value_fields(Msg::new(&bytes), Some(0));
                prop_assert_eq!(format!("{:?}", Ok::<_, DecodeError>(key_value)), format!("{general:?}"));
            }
        }
    }

    /// A remembered resource spares the check only to the very same bytes:
    /// a resource that differs by one byte is checked (and rejected) again.
    #[test]
    fn a_remembered_resource_is_only_the_same_bytes() {
        let request = |key: &[u8]| {
            let kv = [&[0x0A, key.len() as u8][..], key, &[0x12, 3, 0x0A, 1, b'v']].concat();
            let resource = [&[0x0A, kv.len() as u8][..], &kv, &[0x10, 3]].concat();
            let resource_logs = [&[0x0A, resource.len() as u8][..], &resource].concat();
            [&[0x0A, resource_logs.len() as u8][..], &resource_logs].concat()
        };
        let dropped = |bytes: &[u8]| {
            LogsRequest::new(bytes)
                .resource_logs()
                .map(|r| r.map(|r| r.resource().map(|r| r.dropped_attributes_count())))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.kind())
        };
        let (good, bad) = (request(b"k"), request(&[0xFF]));
        for _ in 0..2 {
            assert_eq!(dropped(&good), Ok(vec![Some(3)]));
            assert_eq!(
                dropped(&bad),
                Err(DecodeErrorKind::InvalidUtf8 { field: "KeyValue.key" }),
                "checked, not remembered"
            );
        }
        assert_eq!(dropped(&good), Ok(vec![Some(3)]));
    }

    #[test]
    fn canonical_shapes_are_taken_for_what_encoders_write() {
        // key "k" = int 42; = "v"; = true; = 1.5; an empty value.
        assert!(canonical_key_value(&[0x0A, 1, b'k', 0x12, 2, 0x18, 42]).is_some());
        assert!(canonical_key_value(&[0x0A, 1, b'k', 0x12, 3, 0x0A, 1, b'v']).is_some());
        assert!(canonical_value(&[0x10, 1]).is_some());
        assert!(canonical_value(&[0x21, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F]).is_some());
        assert_eq!(canonical_value(&[]).map(|v| v.is_none()), Some(true));
        // Two values, a non-UTF-8 key, a truncated double: field by field.
        assert!(canonical_value(&[0x10, 1, 0x18, 2]).is_none());
        assert!(canonical_key_value(&[0x0A, 1, 0xFF, 0x12, 0]).is_none());
        assert!(canonical_value(&[0x21, 0, 0]).is_none());
    }

    #[test]
    fn utf8_agrees_with_from_utf8() {
        let samples: [&[u8]; 8] =
            [b"", b"key1", b"service.name", "h\u{e9}llo".as_bytes(), &[0xff], &[b'a', 0xc3], &[0x7f; 40], &[0x80; 3]];
        for bytes in samples {
            assert_eq!(utf8(bytes), std::str::from_utf8(bytes), "{bytes:?}");
        }
        // Every two-byte sequence, ASCII or not.
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                assert_eq!(utf8(&[a, b]), std::str::from_utf8(&[a, b]));
            }
        }
    }

    #[test]
    fn empty_input_is_an_empty_request() {
        assert_eq!(LogsRequest::new(&[]).for_each_record(|_, _| {}), Ok(0));
    }

    #[test]
    fn errors_name_the_offset_and_the_problem() {
        // resource_logs claims 5 bytes, 1 follows.
        assert_eq!(kind(&[0x0a, 0x05, 0x00]), Some((1, DecodeErrorKind::Truncated)));
        // field number 0
        assert_eq!(kind(&[0x00]), Some((0, DecodeErrorKind::InvalidFieldNumber)));
        // group start
        assert_eq!(kind(&[0x0b]), Some((0, DecodeErrorKind::UnsupportedWireType(3))));
        // an 11-byte varint
        assert_eq!(
            kind(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).map(|k| k.1),
            Some(DecodeErrorKind::VarintTooLong)
        );
        // resource_logs as a varint
        assert_eq!(
            kind(&[0x08, 0x01]),
            Some((0, DecodeErrorKind::WrongWireType { field: "ExportLogsServiceRequest.resource_logs" }))
        );
        // a scope name that is not UTF-8: request{ resource_logs{ scope_logs{ scope{ name: ff } } } }
        let bad = [0x0a, 0x07, 0x12, 0x05, 0x0a, 0x03, 0x0a, 0x01, 0xff];
        assert_eq!(kind(&bad), Some((8, DecodeErrorKind::InvalidUtf8 { field: "InstrumentationScope.name" })));
    }

    #[test]
    fn unknown_fields_are_skipped() {
        // field 15 (varint), field 16 (fixed32), field 17 (fixed64) at the top level.
        let bytes = [0x78, 0x01, 0x85, 0x01, 0, 0, 0, 0, 0x89, 0x01, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(LogsRequest::new(&bytes).for_each_record(|_, _| {}), Ok(0));
    }

    #[test]
    fn nesting_is_bounded() {
        // An AnyValue of arrays nested 40 deep, as the body of one record.
        let mut value = vec![0x18, 0x01]; // int_value: 1
        for _ in 0..40 {
            let mut array = vec![0x0a];
            push_len(&mut array, &value);
            let mut any = vec![0x2a];
            push_len(&mut any, &array);
            value = any;
        }
        let mut record = vec![0x2a];
        push_len(&mut record, &value);
        let mut scope_logs = vec![0x12];
        push_len(&mut scope_logs, &record);
        let mut resource_logs = vec![0x12];
        push_len(&mut resource_logs, &scope_logs);
        let mut request = vec![0x0a];
        push_len(&mut request, &resource_logs);
        assert_eq!(kind(&request).map(|k| k.1), Some(DecodeErrorKind::TooDeep));
    }

    fn push_len(out: &mut Vec<u8>, bytes: &[u8]) {
        let mut len = bytes.len();
        while len >= 0x80 {
            out.push((len as u8) | 0x80);
            len >>= 7;
        }
        out.push(len as u8);
        out.extend_from_slice(bytes);
    }
}
