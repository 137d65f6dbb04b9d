//! Human-readable lines for the records of OTLP bytes.

use std::fmt;

use selftrace::console::{print_console_line, write_console_line};

use crate::decode::{DecodeError, LogsRequest};

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
/// selftrace_bridge::console::write_request(&mut out, bytes.as_bytes())?;
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
