//! [`BridgeError`]: why a bridge did not stop cleanly.

use std::fmt;

/// Why a bridge did not stop cleanly.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BridgeError {
    /// The provider's `force_flush` or `shutdown` failed (an exporter that
    /// timed out, say). Everything in the channel was still emitted.
    Provider {
        /// `"force_flush"` or `"shutdown"`.
        during: &'static str,
        /// The SDK's error, as text.
        message: String,
        /// The SDK's error, as [`source`](std::error::Error::source).
        #[doc(hidden)]
        cause: Cause,
    },
    /// The consumer panicked (an exporter that panicked on its thread); the
    /// requests still in the channel were not emitted.
    ConsumerPanicked,
}

/// The error another one wraps, for [`source`](std::error::Error::source).
/// Not compared: two errors are equal when what they say is.
#[derive(Clone)]
pub struct Cause(std::sync::Arc<dyn std::error::Error + Send + Sync>);

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl PartialEq for Cause {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Cause {}

impl BridgeError {
    pub(super) fn provider(during: &'static str, error: opentelemetry_sdk::error::OTelSdkError) -> Self {
        Self::Provider { during, message: error.to_string(), cause: Cause(std::sync::Arc::new(error)) }
    }
}

impl fmt::Display for BridgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Provider { during, message, .. } => write!(f, "logger provider {during} failed: {message}"),
            Self::ConsumerPanicked => f.write_str("the SDK bridge's consumer panicked"),
        }
    }
}

impl std::error::Error for BridgeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Provider { cause, .. } => Some(&*cause.0 as &(dyn std::error::Error + 'static)),
            Self::ConsumerPanicked => None,
        }
    }
}
