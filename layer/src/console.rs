//! Human-readable lines for log records, written to stderr without
//! allocating.
//!
//! The format follows `tracing-subscriber`'s default one:
//!
//! ```text
//! 2026-11-21T07:44:38.123456Z  INFO bench component.event: message text key1=42 key2="value"
//! ```
//!
//! timestamp (UTC, microseconds), severity, scope, the event name when there
//! is one, the body, then the attributes; string attributes are quoted.
//!
//! One record is one line. Everything in it that comes from the event (the
//! scope, the event name, the body, field names and values, `Debug` output)
//! is escaped the way Rust writes a string literal: a control character, a
//! C1 control, `DEL`, a bidirectional control or a line separator becomes a
//! visible escape such as `\u{1b}` or `\n`, and `\` becomes `\\`, so a
//! line can neither drive the terminal nor forge another line, and reads as
//! it is stored:
//!
//! ```text
//! 2026-11-21T07:44:38.123456Z  INFO app: login from user\u{1b}[2J\nERROR forged user="user\u{1b}[2J\nERROR forged"
//! ```

use std::{
    fmt::{self, Write as _},
    io,
};

use crate::{
    decode::{DecodeError, LogsRequest},
    escape::write_bare,
    view::{AnyValue, LogRecordView, RecordVisitor, write_value},
};

/// Writes one console line for `record` (without the trailing newline).
///
/// # Errors
///
/// Only the errors `out` returns.
///
/// # Examples
///
/// ```
/// use selftrace::{view::{AnyValue, LogRecordView, RecordVisitor, Severity}, console::write_console_line};
///
/// struct Ready;
/// impl LogRecordView for Ready {
///     fn time_unix_nano(&self) -> Option<u64> { Some(0) }
///     fn observed_time_unix_nano(&self) -> Option<u64> { Some(0) }
///     fn severity(&self) -> Option<Severity> { Some(Severity::WARN) }
///     fn event_name(&self) -> Option<&str> { Some("node.ready") }
///     fn visit(&self, v: &mut dyn RecordVisitor) {
///         v.visit_body(AnyValue::Str("ready"));
///         v.visit_attribute("port", AnyValue::Int(4318));
///     }
/// }
///
/// let mut line = String::new();
/// write_console_line(&mut line, "receiver.otlp.0", &Ready)?;
/// assert_eq!(line, "1970-01-01T00:00:00.000000Z  WARN receiver.otlp.0 node.ready: ready port=4318");
/// # Ok::<(), std::fmt::Error>(())
/// ```
pub fn write_console_line(
    out: &mut dyn fmt::Write,
    scope: &str,
    record: &(impl LogRecordView + ?Sized),
) -> fmt::Result {
    match record.time_unix_nano().or(record.observed_time_unix_nano()) {
        Some(t) => write_timestamp(out, t)?,
        None => out.write_str("-")?,
    }
    let severity = record.severity_text().unwrap_or("-");
    write!(out, " {severity:>5} ")?;
    write_bare(out, scope)?;
    // An empty name is no name, as in OTLP (where the two are one encoding).
    if let Some(name) = record.event_name().filter(|name| !name.is_empty()) {
        out.write_char(' ')?;
        write_bare(out, name)?;
    }
    out.write_char(':')?;
    let mut fields = ConsoleFields { out, result: Ok(()) };
    record.visit(&mut fields);
    fields.result
}

/// Prints one console line for `record` to stderr, holding the stderr lock
/// for the whole line so lines from different threads do not interleave.
///
/// Cost: no allocation; one write per 1 KiB of line.
pub fn print_console_line(scope: &str, record: &(impl LogRecordView + ?Sized)) {
    print_line(|line| write_console_line(line, scope, record));
}

/// Prints the line `write` produces to stderr, with a trailing newline,
/// under the stderr lock and without allocating.
pub(crate) fn print_line(write: impl FnOnce(&mut dyn fmt::Write) -> fmt::Result) {
    print_line_to(ConsoleStream::Stderr, write);
}

/// Prints the line `write` produces to `stream`, with a trailing newline,
/// under the stream's lock and without allocating.
pub(crate) fn print_line_to(stream: ConsoleStream, write: impl FnOnce(&mut dyn fmt::Write) -> fmt::Result) {
    fn print<W: io::Write>(out: W, write: impl FnOnce(&mut dyn fmt::Write) -> fmt::Result) {
        let mut line = StackLine { out, buf: [0; 1024], len: 0 };
        // Formatting errors leave a partial line; it is still worth printing.
        let _ = write(&mut line);
        let _ = line.write_str("\n");
        line.flush();
    }
    match stream {
        ConsoleStream::Stderr => print(io::stderr().lock(), write),
        ConsoleStream::Stdout => print(io::stdout().lock(), write),
    }
}

/// The stream console lines go to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ConsoleStream {
    /// Standard error (the default: the text console's stream).
    #[default]
    Stderr,
    /// Standard output (where log agents read OTLP/JSON lines from a
    /// container).
    Stdout,
}

/// How console lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConsoleFormat {
    /// Human-readable text on stderr ([`write_console_line`]).
    #[default]
    Text,
    /// One OTLP/JSON `ExportLogsServiceRequest` per line on the stream (see
    /// [`json`](crate::json)).
    OtlpJson(ConsoleStream),
}

/// A line buffered on the stack and written out in 1 KiB chunks.
struct StackLine<W: io::Write> {
    out: W,
    buf: [u8; 1024],
    len: usize,
}

impl<W: io::Write> StackLine<W> {
    fn flush(&mut self) {
        // Nothing useful can be done about a failing stderr.
        let _ = self.out.write_all(self.buf.get(..self.len).unwrap_or_default());
        self.len = 0;
    }
}

impl<W: io::Write> fmt::Write for StackLine<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Chunks may split a character; the bytes still reach stderr in order.
        let mut bytes = s.as_bytes();
        while !bytes.is_empty() {
            if self.len == self.buf.len() {
                self.flush();
            }
            let take = bytes.len().min(self.buf.len() - self.len);
            let (head, tail) = bytes.split_at(take);
            if let Some(dst) = self.buf.get_mut(self.len..self.len + take) {
                dst.copy_from_slice(head);
            }
            self.len += take;
            bytes = tail;
        }
        Ok(())
    }
}

struct ConsoleFields<'o> {
    out: &'o mut dyn fmt::Write,
    result: fmt::Result,
}

impl RecordVisitor for ConsoleFields<'_> {
    fn visit_body(&mut self, body: AnyValue<'_>) {
        if self.result.is_ok() {
            self.result = self.out.write_char(' ').and_then(|()| write_value(self.out, body, false, true));
        }
    }

    fn visit_attribute(&mut self, key: &str, value: AnyValue<'_>) {
        if self.result.is_ok() {
            self.result = self
                .out
                .write_char(' ')
                .and_then(|()| write_bare(self.out, key))
                .and_then(|()| self.out.write_char('='))
                .and_then(|()| write_value(self.out, value, true, true));
        }
    }
}

/// RFC 3339 UTC with microseconds, from nanoseconds since the Unix epoch.
fn write_timestamp(out: &mut dyn fmt::Write, unix_nanos: u64) -> fmt::Result {
    let secs = unix_nanos / 1_000_000_000;
    let micros = (unix_nanos % 1_000_000_000) / 1_000;
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    write!(out, "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Writes one console line per record of `bytes`, each followed by a
/// newline: the same lines selftrace's `Console` destination prints.
///
/// Returns how many records the bytes hold: all of them were written
/// unless `out` failed (see below).
///
/// # Errors
///
/// A problem in the bytes; the lines of the records before it were written.
/// Errors of `out` stop the writing and are reported as `Ok` with the records
/// written so far (a console cannot do better).
///
/// # Examples
///
/// ```
/// use selftrace::{view::{AnyValue, LogRecordView, RecordVisitor, Severity}, encoder::StatefulOtlpEncoder};
///
/// # struct Ready;
/// # impl LogRecordView for Ready {
/// #     fn time_unix_nano(&self) -> Option<u64> { Some(1_700_000_000_000_000_000) }
/// #     fn observed_time_unix_nano(&self) -> Option<u64> { self.time_unix_nano() }
/// #     fn severity(&self) -> Option<Severity> { Some(Severity::WARN) }
/// #     fn event_name(&self) -> Option<&str> { Some("node.ready") }
/// #     fn visit(&self, v: &mut dyn RecordVisitor) {
/// #         v.visit_body(AnyValue::Str("ready"));
/// #         v.visit_attribute("port", AnyValue::Int(4318));
/// #     }
/// # }
/// let mut encoder = StatefulOtlpEncoder::new();
/// encoder.encode_log_record("receiver.otlp.0", &Ready)?;
/// let bytes = encoder.flush();
///
/// let mut out = String::new();
/// selftrace::console::write_request(&mut out, bytes.as_bytes())?;
/// assert_eq!(out, "2023-11-14T22:13:20.000000Z  WARN receiver.otlp.0 node.ready: ready port=4318\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_request(out: &mut dyn fmt::Write, bytes: &[u8]) -> Result<usize, DecodeError> {
    let mut failed = false;
    let count = LogsRequest::new(bytes).for_each_record(|scope, record| {
        if !failed {
            failed = write_console_line(out, scope.name(), record).and_then(|()| out.write_char('\n')).is_err();
        }
    })?;
    Ok(count)
}

/// Prints one console line per record of `bytes` to stderr (each under the
/// stderr lock, without allocating) and returns how many there were.
///
/// # Errors
///
/// A problem in the bytes; the records before it were printed.
pub fn print_request(bytes: &[u8]) -> Result<usize, DecodeError> {
    LogsRequest::new(bytes).for_each_record(|scope, record| print_console_line(scope.name(), record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_rfc3339() {
        let mut s = String::new();
        write_timestamp(&mut s, 1_763_711_078_123_456_789).unwrap_or_default();
        assert_eq!(s, "2025-11-21T07:44:38.123456Z");
        s.clear();
        write_timestamp(&mut s, 951_782_400_000_000_000).unwrap_or_default(); // leap day
        assert_eq!(s, "2000-02-29T00:00:00.000000Z");
    }

    #[test]
    fn long_lines_are_written_whole() {
        let mut sink = Vec::new();
        {
            let mut line = StackLine { out: &mut sink, buf: [0; 1024], len: 0 };
            let long = "é".repeat(1000);
            line.write_str(&long).unwrap_or_default();
            line.flush();
        }
        assert_eq!(String::from_utf8(sink).ok(), Some("é".repeat(1000)));
    }
}
