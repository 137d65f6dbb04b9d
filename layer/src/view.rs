//! The read-only view of one log record that the encoder, the console
//! formatter and the raw logger read.
//!
//! A view hands out borrowed values and visits its body and attributes with a
//! callback, so a live `tracing::Event` (whose fields only exist while they
//! are being visited) and a record decoded from bytes can both implement it
//! without allocating.

use std::{
    fmt::{self, Write as _},
    num::NonZeroUsize,
};

// === impl Severity ===

/// An OTLP severity number (1..=24), with its canonical text.
///
/// `tracing` levels map to the first number of each OTLP range: TRACE 1,
/// DEBUG 5, INFO 9, WARN 13, ERROR 17.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Severity(u8);

const SEVERITY_TEXT: [&str; 25] = [
    "UNSPECIFIED",
    "TRACE",
    "TRACE2",
    "TRACE3",
    "TRACE4",
    "DEBUG",
    "DEBUG2",
    "DEBUG3",
    "DEBUG4",
    "INFO",
    "INFO2",
    "INFO3",
    "INFO4",
    "WARN",
    "WARN2",
    "WARN3",
    "WARN4",
    "ERROR",
    "ERROR2",
    "ERROR3",
    "ERROR4",
    "FATAL",
    "FATAL2",
    "FATAL3",
    "FATAL4",
];

impl Severity {
    /// `TRACE` (1).
    pub const TRACE: Self = Self(1);
    /// `DEBUG` (5).
    pub const DEBUG: Self = Self(5);
    /// `INFO` (9).
    pub const INFO: Self = Self(9);
    /// `WARN` (13).
    pub const WARN: Self = Self(13);
    /// `ERROR` (17).
    pub const ERROR: Self = Self(17);
    /// `FATAL` (21).
    pub const FATAL: Self = Self(21);

    /// The severity with OTLP number `number`, or `None` outside 1..=24.
    pub const fn from_number(number: i32) -> Option<Self> {
        if number >= 1 && number <= 24 { Some(Self(number as u8)) } else { None }
    }

    /// The severity of a `tracing` level.
    pub const fn from_level(level: &tracing_core::Level) -> Self {
        match *level {
            tracing_core::Level::TRACE => Self::TRACE,
            tracing_core::Level::DEBUG => Self::DEBUG,
            tracing_core::Level::INFO => Self::INFO,
            tracing_core::Level::WARN => Self::WARN,
            tracing_core::Level::ERROR => Self::ERROR,
        }
    }

    /// The OTLP severity number.
    pub const fn number(self) -> i32 {
        self.0 as i32
    }

    /// The canonical severity text (`"INFO"`, `"WARN2"`, ...).
    pub const fn text(self) -> &'static str {
        SEVERITY_TEXT[self.0 as usize]
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.text())
    }
}

// === impl TraceContext ===

/// The trace context a record was emitted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceContext {
    /// The 16-byte trace id.
    pub trace_id: [u8; 16],
    /// The 8-byte span id.
    pub span_id: [u8; 8],
    /// W3C trace flags (bit 0: sampled).
    pub flags: u8,
}

// === impl AnyValue ===

/// One borrowed value of a body or an attribute: the OTLP `AnyValue` kinds,
/// plus [`AnyValue::Fmt`] for values that become a string by formatting.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub enum AnyValue<'a> {
    /// A UTF-8 string.
    Str(&'a str),
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A double.
    Double(f64),
    /// Raw bytes.
    Bytes(&'a [u8]),
    /// A value written as a string through its `Debug` implementation (a
    /// `tracing` `?value`, `%value`, message or error), formatted straight
    /// into the destination without an intermediate `String`.
    Fmt(&'a dyn fmt::Debug),
    /// An array of values.
    Array(&'a dyn ArrayView),
    /// A list of key-value pairs.
    Map(&'a dyn MapView),
}

/// The elements of an [`AnyValue::Array`].
pub trait ArrayView {
    /// Calls `visitor` once per element, in order.
    fn visit_values(&self, visitor: &mut dyn FnMut(AnyValue<'_>));
}

/// The entries of an [`AnyValue::Map`].
pub trait MapView {
    /// Calls `visitor` once per entry, in order.
    fn visit_entries(&self, visitor: &mut dyn FnMut(&str, AnyValue<'_>));
}

impl fmt::Debug for AnyValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AnyValue::Str(s) => f.debug_tuple("Str").field(&s).finish(),
            AnyValue::Bool(b) => f.debug_tuple("Bool").field(&b).finish(),
            AnyValue::Int(i) => f.debug_tuple("Int").field(&i).finish(),
            AnyValue::Double(d) => f.debug_tuple("Double").field(&d).finish(),
            AnyValue::Bytes(b) => f.debug_tuple("Bytes").field(&b).finish(),
            AnyValue::Fmt(v) => f.debug_tuple("Fmt").field(v).finish(),
            AnyValue::Array(a) => {
                let mut list = f.debug_list();
                a.visit_values(&mut |v| {
                    list.entry(&v);
                });
                list.finish()
            }
            AnyValue::Map(m) => {
                let mut map = f.debug_map();
                m.visit_entries(&mut |k, v| {
                    map.entry(&k, &v);
                });
                map.finish()
            }
        }
    }
}

/// The value as a person reads it: a string as it is (no quotes), numbers
/// and booleans as Rust writes them, bytes as `0x` and hex, a `Debug` value
/// through `Debug`, arrays as `[a, b]` and maps as `{k=v}` (strings inside
/// them quoted): the console's notation, without its escaping.
///
/// # Examples
///
/// ```
/// use selftrace::view::AnyValue;
///
/// assert_eq!(AnyValue::Str("ready").to_string(), "ready");
/// assert_eq!(AnyValue::Int(4318).to_string(), "4318");
/// assert_eq!(AnyValue::Bytes(&[0xca, 0xfe]).to_string(), "0xcafe");
/// ```
impl fmt::Display for AnyValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_value(f, *self, false, false)
    }
}

/// Writes `value` as text: the one writer of `Display` and of console
/// lines. `quote`: a string between `"` (strings inside arrays and maps are
/// always quoted); `escape`: what comes from the event escaped (see
/// [`escape`](crate::escape)).
pub(crate) fn write_value(out: &mut dyn fmt::Write, value: AnyValue<'_>, quote: bool, escape: bool) -> fmt::Result {
    use crate::escape::{Escaped, write_bare, write_quoted};
    let key = |out: &mut dyn fmt::Write, k: &str| if escape { write_bare(out, k) } else { out.write_str(k) };
    match value {
        AnyValue::Str(s) if quote && escape => write_quoted(out, s),
        AnyValue::Str(s) if quote => write!(out, "{s:?}"),
        AnyValue::Str(s) => key(out, s),
        AnyValue::Bool(b) => write!(out, "{b}"),
        AnyValue::Int(i) => write!(out, "{i}"),
        AnyValue::Double(d) => write!(out, "{d}"),
        AnyValue::Bytes(b) => {
            out.write_str("0x")?;
            b.iter().try_for_each(|byte| write!(out, "{byte:02x}"))
        }
        // A `Debug` implementation writes what it likes: escaped as it goes.
        AnyValue::Fmt(v) if escape => write!(Escaped::bare(out), "{v:?}"),
        AnyValue::Fmt(v) => write!(out, "{v:?}"),
        AnyValue::Array(a) => {
            out.write_char('[')?;
            let mut result = Ok(());
            let mut first = true;
            a.visit_values(&mut |v| {
                if result.is_ok() {
                    result = if first { Ok(()) } else { out.write_str(", ") }
                        .and_then(|()| write_value(out, v, true, escape));
                    first = false;
                }
            });
            result?;
            out.write_char(']')
        }
        AnyValue::Map(m) => {
            out.write_char('{')?;
            let mut result = Ok(());
            let mut first = true;
            m.visit_entries(&mut |k, v| {
                if result.is_ok() {
                    result = if first { Ok(()) } else { out.write_str(", ") }
                        .and_then(|()| key(out, k))
                        .and_then(|()| out.write_char('='))
                        .and_then(|()| write_value(out, v, true, escape));
                    first = false;
                }
            });
            result?;
            out.write_char('}')
        }
    }
}

impl<'a> From<&'a str> for AnyValue<'a> {
    fn from(value: &'a str) -> Self {
        AnyValue::Str(value)
    }
}

impl From<i64> for AnyValue<'_> {
    fn from(value: i64) -> Self {
        AnyValue::Int(value)
    }
}

impl From<f64> for AnyValue<'_> {
    fn from(value: f64) -> Self {
        AnyValue::Double(value)
    }
}

impl From<bool> for AnyValue<'_> {
    fn from(value: bool) -> Self {
        AnyValue::Bool(value)
    }
}

// === impl LogRecordView ===

/// Receives the body and the attributes of a record from
/// [`LogRecordView::visit`].
pub trait RecordVisitor {
    /// The record's body; called at most once.
    fn visit_body(&mut self, body: AnyValue<'_>);
    /// One attribute; called once per attribute, in order.
    fn visit_attribute(&mut self, key: &str, value: AnyValue<'_>);
    /// One attribute that selftrace already encoded (a span's field, recorded
    /// once per span): `encoded` is the same attribute as the encoder writes
    /// it, which the encoder copies as it is. By default, the same as
    /// [`visit_attribute`](Self::visit_attribute).
    fn visit_pre_encoded_attribute(&mut self, key: &str, value: AnyValue<'_>, encoded: PreEncoded<'_>) {
        let _ = encoded;
        self.visit_attribute(key, value);
    }
    /// Whether [`visit_pre_encoded_attribute`](Self::visit_pre_encoded_attribute)
    /// reads its `value` (true by default). selftrace's encoder copies the
    /// bytes only: its views then skip reading the value back (an empty
    /// string stands for it). Asked once per record.
    #[doc(hidden)]
    fn reads_pre_encoded_values(&self) -> bool {
        true
    }
    /// `count` attributes the view left out while visiting (span fields past
    /// their budget); added to the record's `dropped_attributes_count` by the
    /// encoder. By default ignored.
    fn visit_dropped_attributes(&mut self, count: u32) {
        let _ = count;
    }

    /// The event's `internal_log_rate_limit` field
    /// ([`flood::OPT_OUT_FIELD`](crate::flood::OPT_OUT_FIELD)): an
    /// instruction to selftrace's flood control, not data, so it is not an
    /// attribute. By default ignored.
    fn visit_rate_limit(&mut self, enabled: bool) {
        let _ = enabled;
    }
}

/// An attribute encoded by selftrace as one OTLP `LogRecord.attributes`
/// field (its tag, its length and the `KeyValue`), handed to
/// [`RecordVisitor::visit_pre_encoded_attribute`]. Only selftrace makes
/// them, so their bytes are always well formed.
#[derive(Clone, Copy, Debug)]
pub struct PreEncoded<'a>(&'a [u8]);

impl<'a> PreEncoded<'a> {
    /// Bytes written by selftrace's encoder as one attribute field.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }

    /// The encoded field.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
}

/// Where in the source a record was emitted: the OpenTelemetry semantic
/// conventions' `code.file.path`, `code.line.number`, and the Rust module
/// path as `code.module.name` (as `tracing-opentelemetry` writes it; a
/// `tracing` callsite knows no function name).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CodeLocation<'a> {
    /// The source file (`code.file.path`).
    pub file: Option<&'a str>,
    /// The line in it (`code.line.number`).
    pub line: Option<u32>,
    /// The module path (`code.module.name`).
    pub module: Option<&'a str>,
}

impl CodeLocation<'_> {
    /// Visits the location as attributes, in the order the encoder writes
    /// them.
    pub fn visit(&self, visitor: &mut dyn RecordVisitor) {
        if let Some(file) = self.file {
            visitor.visit_attribute(CODE_FILE_PATH, AnyValue::Str(file));
        }
        if let Some(line) = self.line {
            visitor.visit_attribute(CODE_LINE_NUMBER, AnyValue::Int(i64::from(line)));
        }
        if let Some(module) = self.module {
            visitor.visit_attribute(CODE_MODULE_NAME, AnyValue::Str(module));
        }
    }
}

/// The attribute key of the source file.
pub(crate) const CODE_FILE_PATH: &str = "code.file.path";
/// The attribute key of the line.
pub(crate) const CODE_LINE_NUMBER: &str = "code.line.number";
/// The attribute key of the module path.
pub(crate) const CODE_MODULE_NAME: &str = "code.module.name";

/// A read-only view of one log record, shaped after the OTLP `LogRecord`.
///
/// Implemented by [`TracingLogRecord`](crate::record::TracingLogRecord) over a live
/// `tracing::Event`, and by decoders over encoded bytes. Every method borrows;
/// none allocates.
///
/// # Examples
///
/// ```
/// use selftrace::view::{AnyValue, LogRecordView, RecordVisitor, Severity};
///
/// struct Started;
///
/// impl LogRecordView for Started {
///     fn time_unix_nano(&self) -> Option<u64> { Some(1_700_000_000_000_000_000) }
///     fn observed_time_unix_nano(&self) -> Option<u64> { self.time_unix_nano() }
///     fn severity(&self) -> Option<Severity> { Some(Severity::INFO) }
///     fn event_name(&self) -> Option<&str> { Some("engine.started") }
///     fn visit(&self, visitor: &mut dyn RecordVisitor) {
///         visitor.visit_body(AnyValue::Str("engine started"));
///         visitor.visit_attribute("threads", AnyValue::Int(4));
///     }
/// }
///
/// assert_eq!(Started.severity_text(), Some("INFO"));
/// ```
pub trait LogRecordView {
    /// When the event happened, in nanoseconds since the Unix epoch.
    fn time_unix_nano(&self) -> Option<u64>;

    /// When the event was observed by the collection system.
    fn observed_time_unix_nano(&self) -> Option<u64>;

    /// The severity.
    fn severity(&self) -> Option<Severity>;

    /// The severity text; by default the canonical text of [`severity`](Self::severity).
    fn severity_text(&self) -> Option<&str> {
        self.severity().map(Severity::text)
    }

    /// The event name (OTLP `event_name`).
    fn event_name(&self) -> Option<&str>;

    /// The trace context, if the record was emitted inside a sampled or
    /// recorded span.
    fn trace_context(&self) -> Option<TraceContext> {
        None
    }

    /// Attributes dropped before the record reached this view.
    fn dropped_attributes_count(&self) -> u32 {
        0
    }

    /// Visits the body (at most once) and every attribute.
    fn visit(&self, visitor: &mut dyn RecordVisitor);

    /// [`visit`](Self::visit) into selftrace's own encoder: a view may call
    /// the writer without a dynamic call per field. By default `visit`.
    #[doc(hidden)]
    #[inline]
    fn visit_encoder(&self, fields: &mut crate::out::FieldWriter<'_>) {
        self.visit(fields);
    }

    /// An identity shared by every record whose [`severity_text`] and
    /// [`event_name`] are always the same (a `tracing` callsite), or `None`
    /// (the default). The encoder reads and encodes those two once per
    /// identity and copies them after (a bounded cache, see
    /// 512):
    /// records with the same identity and different texts would be encoded
    /// with the first one's.
    ///
    /// [`severity_text`]: Self::severity_text
    /// [`event_name`]: Self::event_name
    fn callsite_id(&self) -> Option<NonZeroUsize> {
        None
    }

    /// Where the record was emitted, written as its first attributes; `None`
    /// (the default) writes none. Like the severity text and the event
    /// name, it is encoded once per [`callsite_id`](Self::callsite_id).
    fn code_location(&self) -> Option<CodeLocation<'_>> {
        None
    }
}

impl<T: LogRecordView + ?Sized> LogRecordView for &T {
    fn time_unix_nano(&self) -> Option<u64> {
        (**self).time_unix_nano()
    }
    fn observed_time_unix_nano(&self) -> Option<u64> {
        (**self).observed_time_unix_nano()
    }
    fn severity(&self) -> Option<Severity> {
        (**self).severity()
    }
    fn severity_text(&self) -> Option<&str> {
        (**self).severity_text()
    }
    fn event_name(&self) -> Option<&str> {
        (**self).event_name()
    }
    fn trace_context(&self) -> Option<TraceContext> {
        (**self).trace_context()
    }
    fn dropped_attributes_count(&self) -> u32 {
        (**self).dropped_attributes_count()
    }
    fn visit(&self, visitor: &mut dyn RecordVisitor) {
        (**self).visit(visitor)
    }
    #[inline]
    fn visit_encoder(&self, fields: &mut crate::out::FieldWriter<'_>) {
        (**self).visit_encoder(fields)
    }
    fn callsite_id(&self) -> Option<NonZeroUsize> {
        (**self).callsite_id()
    }
    fn code_location(&self) -> Option<CodeLocation<'_>> {
        (**self).code_location()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_numbers_and_text_follow_otlp() {
        assert_eq!(Severity::from_level(&tracing_core::Level::TRACE).number(), 1);
        assert_eq!(Severity::from_level(&tracing_core::Level::DEBUG).number(), 5);
        assert_eq!(Severity::from_level(&tracing_core::Level::INFO).number(), 9);
        assert_eq!(Severity::from_level(&tracing_core::Level::WARN).number(), 13);
        assert_eq!(Severity::from_level(&tracing_core::Level::ERROR).number(), 17);
        assert_eq!(Severity::from_number(24).map(Severity::text), Some("FATAL4"));
        assert_eq!(Severity::from_number(0), None);
        assert_eq!(Severity::from_number(25), None);
    }
}
