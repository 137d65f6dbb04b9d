//! OTLP bytes from [`selftrace`] into the OpenTelemetry SDK.

mod decode;

pub use decode::{
    DecodeError, DecodeErrorKind, DecodedRecord, LogsRequest, MAX_NESTING_DEPTH, RecordsIter, Resource, ResourceLogs,
    ResourceLogsIter, ScopeLogs, ScopeLogsIter,
};
pub use selftrace::OtlpBytes;
