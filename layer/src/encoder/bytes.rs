//! [`OtlpBytes`]: one encoded `ExportLogsServiceRequest`.

use std::fmt;

use bytes::Bytes;

// === impl OtlpBytes ===

/// One complete OTLP `ExportLogsServiceRequest` in protobuf bytes.
///
/// It can be POSTed unchanged to an OTLP/HTTP `/v1/logs` endpoint with
/// `Content-Type: application/x-protobuf`. Cloning is cheap (a reference
/// count).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OtlpBytes(pub(super) Bytes);

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
