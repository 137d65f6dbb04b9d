//! OTLP/JSON lines: one `ExportLogsServiceRequest` per line, as the
//! OpenTelemetry Collector's file exporter writes them and its
//! `otlpjsonfile` receiver reads them.
//!
//! The encoding is the OTLP/JSON one of the OpenTelemetry protocol
//! specification (protobuf's JSON mapping, with OTLP's exceptions):
//!
//! * field names in lowerCamelCase (`resourceLogs`, `timeUnixNano`);
//! * 64-bit integers as decimal strings (`"timeUnixNano":"1700000000000000000"`,
//!   `{"intValue":"42"}`), 32-bit ones as numbers;
//! * enum values as numbers (`"severityNumber":9`);
//! * `traceId` and `spanId` as lowercase hex, not base64; other bytes as
//!   base64 (`bytesValue`);
//! * doubles as JSON numbers, `"NaN"`, `"Infinity"` or `"-Infinity"`;
//! * fields at their default value (0, empty) left out;
//! * strings escaped per RFC 8259: `"`, `\` and every control character
//!   (`\n`, `\t`, `\u0000`, ...); the rest is UTF-8 as it is.
//!
//! Lines are written straight from the encoded bytes, through the
//! zero-copy decoder, without an intermediate message. There is one writer:
//! every OTLP/JSON line selftrace prints (the layer's
//! [`Destination::OtlpJson`](crate::Destination::OtlpJson), node logs
//! printing in [`ConsoleFormat::OtlpJson`](crate::console::ConsoleFormat::OtlpJson),
//! [`JsonLines`]) is a request encoded with its owner's resource and
//! limits, then written by [`write_request`], so a record reads the same
//! whichever way it went.

use std::fmt::{self, Write as _};

use base64::Engine as _;

use crate::{
    console::{ConsoleStream, print_line_to},
    decode::{DecodeError, DecodedRecord, DecodedResource, LogsRequest},
    view::{AnyValue, LogRecordView, MapView, RecordVisitor},
};

/// Writes `bytes` (one `ExportLogsServiceRequest`) as one OTLP/JSON line,
/// without the trailing newline; returns how many records it holds.
///
/// The bytes are checked whole first: on an error nothing is written.
///
/// # Errors
///
/// What is wrong with the bytes. Errors of `out` stop the writing and are
/// reported as `Ok` (a console cannot do better; a `String` never fails).
///
/// # Examples
///
/// ```
/// use selftrace::{encoder::StatefulOtlpEncoder, view::{AnyValue, LogRecordView, RecordVisitor, Severity}};
///
/// struct Ready;
/// impl LogRecordView for Ready {
///     fn time_unix_nano(&self) -> Option<u64> { Some(1_700_000_000_000_000_000) }
///     fn observed_time_unix_nano(&self) -> Option<u64> { self.time_unix_nano() }
///     fn severity(&self) -> Option<Severity> { Some(Severity::WARN) }
///     fn event_name(&self) -> Option<&str> { Some("node.ready") }
///     fn visit(&self, v: &mut dyn RecordVisitor) {
///         v.visit_body(AnyValue::Str("say \"hi\"\n"));
///         v.visit_attribute("port", AnyValue::Int(4318));
///     }
/// }
/// let mut encoder = StatefulOtlpEncoder::new();
/// encoder.encode_log_record("receiver.otlp.0", &Ready)?;
/// let bytes = encoder.flush();
///
/// let mut line = String::new();
/// selftrace::json::write_request(&mut line, bytes.as_bytes())?;
/// assert_eq!(
///     line,
///     r#"{"resourceLogs":[{"resource":{},"scopeLogs":[{"scope":{"name":"receiver.otlp.0"},"logRecords":[{"#.to_owned()
///         + r#""timeUnixNano":"1700000000000000000","observedTimeUnixNano":"1700000000000000000","#
///         + r#""severityNumber":13,"severityText":"WARN","eventName":"node.ready","#
///         + r#""body":{"stringValue":"say \"hi\"\n"},"attributes":[{"key":"port","value":{"intValue":"4318"}}]}]}]}]}"#
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_request(out: &mut dyn fmt::Write, bytes: &[u8]) -> Result<usize, DecodeError> {
    let request = LogsRequest::new(bytes);
    let count = request.for_each_record(|_, _| {})?;
    // Checked: the errors below cannot happen.
    let _ = write_checked(out, &request);
    Ok(count)
}

fn write_checked(out: &mut dyn fmt::Write, request: &LogsRequest<'_>) -> Result<(), Stop> {
    out.write_str("{\"resourceLogs\":[")?;
    for (i, resource_logs) in request.resource_logs().enumerate() {
        let resource_logs = resource_logs?;
        comma(out, i)?;
        out.write_str("{\"resource\":")?;
        match resource_logs.resource() {
            Some(resource) => write_resource(out, &resource)?,
            None => out.write_str("{}")?,
        }
        out.write_str(",\"scopeLogs\":[")?;
        for (j, scope_logs) in resource_logs.scope_logs().enumerate() {
            let scope_logs = scope_logs?;
            comma(out, j)?;
            out.write_str("{\"scope\":{")?;
            let mut first = true;
            if !scope_logs.name().is_empty() {
                key(out, &mut first, "name")?;
                string(out, scope_logs.name())?;
            }
            if !scope_logs.version().is_empty() {
                key(out, &mut first, "version")?;
                string(out, scope_logs.version())?;
            }
            let mut attributes = Attributes::new(out, !first);
            scope_logs.visit_attributes(&mut |k, v| attributes.entry(k, v));
            attributes.finish()?;
            out.write_str("},\"logRecords\":[")?;
            for (n, record) in scope_logs.records().enumerate() {
                comma(out, n)?;
                write_decoded(out, &record?)?;
            }
            out.write_char(']')?;
            if !scope_logs.schema_url().is_empty() {
                out.write_str(",\"schemaUrl\":")?;
                string(out, scope_logs.schema_url())?;
            }
            out.write_char('}')?;
        }
        out.write_char(']')?;
        if !resource_logs.schema_url().is_empty() {
            out.write_str(",\"schemaUrl\":")?;
            string(out, resource_logs.schema_url())?;
        }
        out.write_char('}')?;
    }
    out.write_str("]}")?;
    Ok(())
}

/// Prints `bytes` as one OTLP/JSON line on `stream` (under its lock, one
/// write per 1 KiB, no allocation); returns how many records it holds.
///
/// # Errors
///
/// What is wrong with the bytes; nothing is printed then.
pub fn print_request(bytes: &[u8], stream: ConsoleStream) -> Result<usize, DecodeError> {
    let request = LogsRequest::new(bytes);
    let count = request.for_each_record(|_, _| {})?;
    print_line_to(stream, |out| write_checked(out, &request).map_err(|_| fmt::Error));
    Ok(count)
}

/// Prints a request selftrace's encoder wrote (it always decodes: no check
/// first) as one OTLP/JSON line on `stream`.
pub(crate) fn print_encoded(bytes: &crate::OtlpBytes, stream: ConsoleStream) {
    let request = LogsRequest::new(bytes.as_bytes());
    print_line_to(stream, |out| write_checked(out, &request).map_err(|_| fmt::Error));
}

/// A sink that prints each request as one OTLP/JSON line on a stream: a
/// [`Destination::OtlpJson`](crate::Destination::OtlpJson) where a sender
/// is needed (a fan-out of several exporters). It takes every request
/// (printing is synchronous); one that does not decode is refused as
/// closed, never printed in part.
///
/// ```
/// use selftrace::{OtlpBytesSender, console::ConsoleStream, json::JsonLines};
///
/// let sender = OtlpBytesSender::from_sink(std::sync::Arc::new(JsonLines(ConsoleStream::Stdout)));
/// assert!(!sender.is_closed());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JsonLines(pub ConsoleStream);

impl crate::channel::OtlpSink for JsonLines {
    fn try_send(&self, bytes: crate::OtlpBytes) -> Result<(), crate::TrySendError> {
        match print_request(bytes.as_bytes(), self.0) {
            Ok(_) => Ok(()),
            Err(_) => Err(crate::TrySendError::Closed(bytes)),
        }
    }

    fn capacity(&self) -> usize {
        usize::MAX
    }

    fn queued(&self) -> usize {
        0
    }

    fn is_closed(&self) -> bool {
        false
    }
}

/// Why writing stopped: the output failed, or (never, after the check)
/// the bytes.
enum Stop {
    Write,
    Decode,
}

impl From<fmt::Error> for Stop {
    fn from(_: fmt::Error) -> Self {
        Stop::Write
    }
}

impl From<DecodeError> for Stop {
    fn from(_: DecodeError) -> Self {
        Stop::Decode
    }
}

fn comma(out: &mut dyn fmt::Write, i: usize) -> fmt::Result {
    if i > 0 { out.write_char(',') } else { Ok(()) }
}

/// `"name":`, after a comma unless it is the object's first key.
fn key(out: &mut dyn fmt::Write, first: &mut bool, name: &str) -> fmt::Result {
    if !std::mem::take(first) {
        out.write_char(',')?;
    }
    out.write_char('"')?;
    out.write_str(name)?;
    out.write_str("\":")
}

fn write_resource(out: &mut dyn fmt::Write, resource: &DecodedResource<'_>) -> Result<(), Stop> {
    out.write_char('{')?;
    let mut attributes = Attributes::new(out, false);
    resource.visit_entries(&mut |k, v| attributes.entry(k, v));
    let empty = attributes.finish()?;
    if resource.dropped_attributes_count() > 0 {
        if !empty {
            out.write_char(',')?;
        }
        write!(out, "\"droppedAttributesCount\":{}", resource.dropped_attributes_count())?;
    }
    out.write_char('}')?;
    Ok(())
}

fn write_decoded(out: &mut dyn fmt::Write, record: &DecodedRecord<'_>) -> Result<(), Stop> {
    out.write_char('{')?;
    let mut first = true;
    let time = record.time_unix_nano().unwrap_or(0);
    if time != 0 {
        key(out, &mut first, "timeUnixNano")?;
        write!(out, "\"{time}\"")?;
    }
    let observed = record.observed_time_unix_nano().unwrap_or(0);
    if observed != 0 {
        key(out, &mut first, "observedTimeUnixNano")?;
        write!(out, "\"{observed}\"")?;
    }
    if record.severity_number() != 0 {
        key(out, &mut first, "severityNumber")?;
        write!(out, "{}", record.severity_number())?;
    }
    if !record.severity_text_field().is_empty() {
        key(out, &mut first, "severityText")?;
        string(out, record.severity_text_field())?;
    }
    if let Some(name) = record.event_name().filter(|name| !name.is_empty()) {
        key(out, &mut first, "eventName")?;
        string(out, name)?;
    }
    // The body first (the record may hold it after attributes), then the
    // attributes: two visits.
    let mut body = Body { out: &mut *out, first: &mut first, result: Ok(()) };
    record.visit(&mut body);
    body.result?;
    let mut attributes = Attributes::new(out, !first);
    record.visit(&mut attributes);
    if !attributes.finish()? {
        first = false;
    }
    if record.dropped_attributes_count() != 0 {
        key(out, &mut first, "droppedAttributesCount")?;
        write!(out, "{}", record.dropped_attributes_count())?;
    }
    if record.flags() != 0 {
        key(out, &mut first, "flags")?;
        write!(out, "{}", record.flags())?;
    }
    if !record.trace_id().is_empty() {
        key(out, &mut first, "traceId")?;
        hex(out, record.trace_id())?;
    }
    if !record.span_id().is_empty() {
        key(out, &mut first, "spanId")?;
        hex(out, record.span_id())?;
    }
    out.write_char('}')?;
    Ok(())
}

fn hex(out: &mut dyn fmt::Write, bytes: &[u8]) -> fmt::Result {
    out.write_char('"')?;
    for b in bytes {
        write!(out, "{b:02x}")?;
    }
    out.write_char('"')
}

/// Writes the body only.
struct Body<'o> {
    out: &'o mut dyn fmt::Write,
    first: &'o mut bool,
    result: fmt::Result,
}

impl RecordVisitor for Body<'_> {
    fn visit_body(&mut self, body: AnyValue<'_>) {
        if self.result.is_ok() {
            self.result = key(self.out, self.first, "body").and_then(|()| any_value(self.out, body));
        }
    }
    fn visit_attribute(&mut self, _: &str, _: AnyValue<'_>) {}
}

/// Writes `"attributes":[...]` when there is at least one.
struct Attributes<'o> {
    out: &'o mut dyn fmt::Write,
    count: usize,
    result: fmt::Result,
    /// Whether the key must be preceded by a comma.
    after: bool,
}

impl<'o> Attributes<'o> {
    fn new(out: &'o mut dyn fmt::Write, after: bool) -> Self {
        Self { out, count: 0, result: Ok(()), after }
    }

    fn entry(&mut self, key: &str, value: AnyValue<'_>) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            if self.count == 0 {
                if self.after {
                    self.out.write_char(',')?;
                }
                self.out.write_str("\"attributes\":[")?;
            } else {
                self.out.write_char(',')?;
            }
            key_value(self.out, key, value)
        })();
        self.count += 1;
    }

    /// Closes the array; returns whether there was none.
    fn finish(self) -> Result<bool, fmt::Error> {
        self.result?;
        if self.count > 0 {
            self.out.write_char(']')?;
        }
        Ok(self.count == 0)
    }
}

impl RecordVisitor for Attributes<'_> {
    fn visit_body(&mut self, _: AnyValue<'_>) {}
    fn visit_attribute(&mut self, key: &str, value: AnyValue<'_>) {
        self.entry(key, value);
    }
}

fn key_value(out: &mut dyn fmt::Write, key: &str, value: AnyValue<'_>) -> fmt::Result {
    out.write_str("{\"key\":")?;
    string(out, key)?;
    out.write_str(",\"value\":")?;
    any_value(out, value)?;
    out.write_char('}')
}

fn any_value(out: &mut dyn fmt::Write, value: AnyValue<'_>) -> fmt::Result {
    match value {
        AnyValue::Str(s) => {
            out.write_str("{\"stringValue\":")?;
            string(out, s)?;
        }
        AnyValue::Bool(b) => write!(out, "{{\"boolValue\":{b}")?,
        AnyValue::Int(i) => write!(out, "{{\"intValue\":\"{i}\"")?,
        AnyValue::Double(d) => {
            out.write_str("{\"doubleValue\":")?;
            if d.is_nan() {
                out.write_str("\"NaN\"")?;
            } else if d.is_infinite() {
                out.write_str(if d > 0.0 { "\"Infinity\"" } else { "\"-Infinity\"" })?;
            } else {
                // Shortest round-trip form: `1.0`, `1e300`: JSON numbers.
                write!(out, "{d:?}")?;
            }
        }
        AnyValue::Bytes(b) => {
            out.write_str("{\"bytesValue\":\"")?;
            let mut chunk = [0_u8; 1024];
            for piece in b.chunks(768) {
                let n = base64::engine::general_purpose::STANDARD
                    .encode_slice(piece, &mut chunk)
                    .map_err(|_| fmt::Error)?;
                // Base64 is ASCII.
                out.write_str(std::str::from_utf8(&chunk[..n]).map_err(|_| fmt::Error)?)?;
            }
            out.write_char('"')?;
        }
        AnyValue::Fmt(v) => {
            out.write_str("{\"stringValue\":\"")?;
            write!(Escaped(out), "{v:?}")?;
            out.write_char('"')?;
        }
        AnyValue::Array(a) => {
            out.write_str("{\"arrayValue\":{")?;
            let (mut n, mut result) = (0, Ok(()));
            a.visit_values(&mut |v| {
                if result.is_ok() {
                    result = if n == 0 { out.write_str("\"values\":[") } else { out.write_char(',') }
                        .and_then(|()| any_value(out, v));
                }
                n += 1;
            });
            result?;
            if n > 0 {
                out.write_char(']')?;
            }
            out.write_char('}')?;
        }
        AnyValue::Map(m) => {
            out.write_str("{\"kvlistValue\":{")?;
            let (mut n, mut result) = (0, Ok(()));
            m.visit_entries(&mut |k, v| {
                if result.is_ok() {
                    result = if n == 0 { out.write_str("\"values\":[") } else { out.write_char(',') }
                        .and_then(|()| key_value(out, k, v));
                }
                n += 1;
            });
            result?;
            if n > 0 {
                out.write_char(']')?;
            }
            out.write_char('}')?;
        }
    }
    out.write_char('}')
}

/// A JSON string, quoted and escaped.
fn string(out: &mut dyn fmt::Write, s: &str) -> fmt::Result {
    out.write_char('"')?;
    Escaped(out).write_str(s)?;
    out.write_char('"')
}

/// Escapes what it is given per RFC 8259: `"`, `\` and the control
/// characters U+0000..U+001F; everything else passes as it is.
struct Escaped<'o>(&'o mut dyn fmt::Write);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(at) = rest.bytes().position(|b| b < 0x20 || b == b'"' || b == b'\\') {
            let (plain, tail) = rest.split_at(at);
            self.0.write_str(plain)?;
            let b = tail.as_bytes()[0];
            match b {
                b'"' => self.0.write_str("\\\"")?,
                b'\\' => self.0.write_str("\\\\")?,
                b'\n' => self.0.write_str("\\n")?,
                b'\r' => self.0.write_str("\\r")?,
                b'\t' => self.0.write_str("\\t")?,
                0x08 => self.0.write_str("\\b")?,
                0x0c => self.0.write_str("\\f")?,
                _ => write!(self.0, "\\u{b:04x}")?,
            }
            rest = &tail[1..];
        }
        self.0.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_quotes_backslashes_and_control_characters() {
        let mut s = String::new();
        string(&mut s, "a\"b\\c\nd\u{0}e\u{1f}f\u{7f}é😀").unwrap_or_default();
        assert_eq!(s, r#""a\"b\\c\nd\u0000e\u001ff"#.to_owned() + "\u{7f}é😀\"");
    }

    #[test]
    fn doubles_are_numbers_or_the_three_names() {
        for (d, want) in [
            (1.0, "1.0"),
            (-0.5, "-0.5"),
            (1e300, "1e300"),
            (f64::NAN, "\"NaN\""),
            (f64::INFINITY, "\"Infinity\""),
            (f64::NEG_INFINITY, "\"-Infinity\""),
        ] {
            let mut s = String::new();
            any_value(&mut s, AnyValue::Double(d)).unwrap_or_default();
            assert_eq!(s, format!("{{\"doubleValue\":{want}}}"));
        }
    }

    #[test]
    fn bytes_are_base64() {
        let mut s = String::new();
        any_value(&mut s, AnyValue::Bytes(&[0, 1, 2, 250, 251, 252, 253])).unwrap_or_default();
        assert_eq!(s, r#"{"bytesValue":"AAEC+vv8/Q=="}"#);
        let long = vec![7_u8; 5000];
        let mut s = String::new();
        any_value(&mut s, AnyValue::Bytes(&long)).unwrap_or_default();
        let expected = base64::engine::general_purpose::STANDARD.encode(&long);
        assert_eq!(s, format!("{{\"bytesValue\":\"{expected}\"}}"));
    }
}
