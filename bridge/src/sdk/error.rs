//! [`BridgeError`]: why a bridge did not stop cleanly.

use std::{fmt, sync::Arc};

use opentelemetry_sdk::error::OTelSdkError;

/// Why a bridge did not stop cleanly.
///
/// Two errors are equal when they say the same (the SDK's error is compared
/// by its text: it has no `PartialEq`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum BridgeError {
    /// The provider's `force_flush` or `shutdown` failed (an exporter that
    /// timed out, say). Everything in the channel was still emitted.
    Provider {
        /// `"force_flush"` or `"shutdown"`.
        during: &'static str,
        /// The SDK's error; also the error's [`source`](std::error::Error::source).
        error: Arc<OTelSdkError>,
    },
    /// The consumer panicked (an exporter that panicked on its thread); the
    /// requests still in the channel were not emitted.
    ConsumerPanicked,
}

impl BridgeError {
    pub(super) fn provider(during: &'static str, error: OTelSdkError) -> Self {
        Self::Provider { during, error: Arc::new(error) }
    }
}

impl PartialEq for BridgeError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Provider { during: a, error: x }, Self::Provider { during: b, error: y }) => {
                a == b && x.to_string() == y.to_string()
            }
            (Self::ConsumerPanicked, Self::ConsumerPanicked) => true,
            _ => false,
        }
    }
}

impl Eq for BridgeError {}

impl fmt::Display for BridgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The SDK's error is `source()`: said once.
            Self::Provider { during, .. } => write!(f, "logger provider {during} failed"),
            Self::ConsumerPanicked => f.write_str("the SDK bridge's consumer panicked"),
        }
    }
}

impl std::error::Error for BridgeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Provider { error, .. } => Some(&**error),
            Self::ConsumerPanicked => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn a_provider_error_says_what_the_sdk_said_and_gives_it_as_its_source() {
        let error = BridgeError::provider("shutdown", OTelSdkError::AlreadyShutdown);
        let source = error.source().expect("the SDK's error");
        assert!(source.is::<OTelSdkError>());
        assert_eq!(error.to_string(), "logger provider shutdown failed");
        assert!(!source.to_string().is_empty());
        assert_eq!(error, BridgeError::provider("shutdown", OTelSdkError::AlreadyShutdown));
        assert_ne!(error, BridgeError::provider("force_flush", OTelSdkError::AlreadyShutdown));
        assert!(BridgeError::ConsumerPanicked.source().is_none());
    }
}
