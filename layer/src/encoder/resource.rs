//! [`OtlpResource`]: the resource every request of an encoder carries,
//! encoded once.

use std::fmt;

use bytes::Bytes;

use super::{tag, writer::Out};
use crate::view::AnyValue;

// === impl OtlpResource ===

/// An OTLP `Resource`, encoded once and copied into every request.
///
/// # Examples
///
/// ```
/// use selftrace::encoder::OtlpResource;
///
/// let resource = OtlpResource::builder()
///     .with_attribute("service.name", "engine")
///     .with_attribute("service.instance.id", 7_i64)
///     .build();
/// assert!(!resource.is_empty());
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OtlpResource {
    encoded: Bytes,
}

impl fmt::Debug for OtlpResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpResource").field("encoded_len", &self.encoded.len()).finish()
    }
}

impl OtlpResource {
    /// A builder for a resource.
    pub fn builder() -> OtlpResourceBuilder {
        OtlpResourceBuilder::default()
    }

    /// Whether the resource has no attribute.
    pub fn is_empty(&self) -> bool {
        self.encoded.is_empty()
    }

    /// The encoded `Resource` message.
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }
}

/// A resource attribute value owned by an [`OtlpResourceBuilder`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ResourceValue {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A double.
    Double(f64),
    /// A boolean.
    Bool(bool),
}

impl From<&str> for ResourceValue {
    fn from(value: &str) -> Self {
        ResourceValue::Str(value.to_owned())
    }
}
impl From<String> for ResourceValue {
    fn from(value: String) -> Self {
        ResourceValue::Str(value)
    }
}
impl From<i64> for ResourceValue {
    fn from(value: i64) -> Self {
        ResourceValue::Int(value)
    }
}
impl From<f64> for ResourceValue {
    fn from(value: f64) -> Self {
        ResourceValue::Double(value)
    }
}
impl From<bool> for ResourceValue {
    fn from(value: bool) -> Self {
        ResourceValue::Bool(value)
    }
}

/// Builds an [`OtlpResource`].
#[derive(Clone, Debug, Default)]
pub struct OtlpResourceBuilder {
    attributes: Vec<(String, ResourceValue)>,
}

impl OtlpResourceBuilder {
    /// Adds an attribute; a later value for the same key replaces the earlier.
    pub fn with_attribute(mut self, key: impl Into<String>, value: impl Into<ResourceValue>) -> Self {
        let key = key.into();
        let value = value.into();
        match self.attributes.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.attributes.push((key, value)),
        }
        self
    }

    /// Whether an attribute with `key` was added.
    pub fn has_attribute(&self, key: &str) -> bool {
        self.attributes.iter().any(|(k, _)| k == key)
    }

    /// Encodes the resource, with `service.name` set to `unknown_service`
    /// when no `service.name` was added (what OpenTelemetry SDKs do).
    pub(crate) fn build_for_service(self) -> OtlpResource {
        if self.has_attribute("service.name") { self } else { self.with_attribute("service.name", "unknown_service") }
            .build()
    }

    /// Encodes the resource.
    pub fn build(self) -> OtlpResource {
        let mut out = Out::unbounded();
        for (key, value) in &self.attributes {
            let value = match value {
                ResourceValue::Str(s) => AnyValue::Str(s),
                ResourceValue::Int(i) => AnyValue::Int(*i),
                ResourceValue::Double(d) => AnyValue::Double(*d),
                ResourceValue::Bool(b) => AnyValue::Bool(*b),
            };
            // An unbounded `Out` with an unbounded value limit cannot overflow.
            let _ = out.put_key_value(tag::RESOURCE_ATTRIBUTES, key, value, usize::MAX, 0);
        }
        OtlpResource { encoded: Bytes::from(out.buf) }
    }
}
