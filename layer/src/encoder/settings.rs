//! [`EncoderSettings`]: what every encoder behind a layer, a `NodeLogs` or an
//! exporter shares.

use super::{EncoderLimits, OtlpResource, OtlpResourceBuilder, ResourceValue};

/// The settings of the encoders behind a layer, a `NodeLogs`, an exporter or
/// an engine's whole self telemetry: the resource every request carries
/// (`service.name` defaults to `unknown_service`) and the limits.
///
/// Each builder has the same three setters (`with_service_name`,
/// `with_resource_attribute`, `with_limits`), which change its settings, and
/// `with_encoder_settings` to give them all at once, so an engine describes
/// itself once:
///
/// ```
/// use selftrace::{Destination, NodeLogs, OtlpTracingLayer, encoder::EncoderSettings};
///
/// let settings = EncoderSettings::new().with_service_name("my-engine").with_resource_attribute("host.name", "a");
/// let layer = OtlpTracingLayer::builder(Destination::Console).with_encoder_settings(settings.clone()).build();
/// let nodes = NodeLogs::builder(Destination::Console).with_encoder_settings(settings).build();
/// # drop((layer, nodes));
/// ```
#[derive(Clone, Debug, Default)]
pub struct EncoderSettings {
    resource: OtlpResourceBuilder,
    limits: EncoderLimits,
}

impl EncoderSettings {
    /// The defaults: no resource attribute but `service.name =
    /// unknown_service`, [`EncoderLimits::default`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `service.name` on the resource (default `unknown_service`).
    pub fn with_service_name(self, name: impl Into<String>) -> Self {
        self.with_resource_attribute("service.name", name.into())
    }

    /// Adds a resource attribute; a later value for the same key replaces
    /// the earlier.
    pub fn with_resource_attribute(mut self, key: impl Into<String>, value: impl Into<ResourceValue>) -> Self {
        self.resource = self.resource.with_attribute(key, value);
        self
    }

    /// Sets the limits (buffer capacity, record and value limits).
    pub fn with_limits(mut self, limits: EncoderLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The limits.
    pub fn limits(&self) -> EncoderLimits {
        self.limits
    }

    /// The resource, encoded, with `service.name` defaulted.
    pub fn resource(&self) -> OtlpResource {
        self.resource.clone().build_for_service()
    }
}

/// The setters of every builder that holds an [`EncoderSettings`] in its
/// field `$field` (the layer's, `NodeLogs`', selftrace-bridge's exporter's):
/// written once, here.
#[doc(hidden)]
#[macro_export]
macro_rules! __encoder_settings_setters {
    ($field:ident) => {
        /// Sets `service.name` on the resource (default `unknown_service`).
        pub fn with_service_name(mut self, name: impl ::core::convert::Into<::std::string::String>) -> Self {
            self.$field = self.$field.with_service_name(name);
            self
        }

        /// Adds a resource attribute; a later value for the same key
        /// replaces the earlier.
        pub fn with_resource_attribute(
            mut self,
            key: impl ::core::convert::Into<::std::string::String>,
            value: impl ::core::convert::Into<$crate::encoder::ResourceValue>,
        ) -> Self {
            self.$field = self.$field.with_resource_attribute(key, value);
            self
        }

        /// Sets the encoder limits (buffer capacity, record and value
        /// limits; default [`EncoderLimits::default`]($crate::EncoderLimits)).
        pub fn with_limits(mut self, limits: $crate::EncoderLimits) -> Self {
            self.$field = self.$field.with_limits(limits);
            self
        }

        /// Sets the resource and the limits at once.
        pub fn with_encoder_settings(mut self, settings: $crate::encoder::EncoderSettings) -> Self {
            self.$field = settings;
            self
        }
    };
}
