//! The demo engine's configuration: `service` (read by selftrace-itr) and
//! `pipelines` (the engine's own), in the shapes of the original configuration design (examples in
//! `tests/configs/seed/`).

use std::{fmt, marker::PhantomData, time::Duration};

use selftrace_itr::{
    ReceiverSettings, ServiceConfig,
    config::{YamlError, from_yaml},
    receiver::parse_duration,
    telemetry::RECEIVER_NAME,
};
use serde::{
    Deserialize, Deserializer,
    de::{self, MapAccess, Visitor},
};

/// A whole configuration: one document with `service` and `pipelines`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// `service`: selftrace's part.
    #[serde(default)]
    pub service: ServiceConfig,
    /// `pipelines`: the engine's graph.
    #[serde(default)]
    pub pipelines: Vec<PipelineConfig>,
}

impl EngineConfig {
    /// Reads one document. Errors name the key path, line and column.
    pub fn from_yaml(source: &str, text: &str) -> Result<Self, YamlError> {
        from_yaml(source, text)
    }
}

/// One pipeline: receivers → processors (in order) → every exporter.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Its name, the first part of its nodes' ids.
    pub name: String,
    /// Where data comes from.
    pub receivers: Vec<ReceiverKind>,
    /// What happens to it, in order.
    #[serde(default)]
    pub processors: Vec<ProcessorKind>,
    /// Where it goes (each gets everything).
    pub exporters: Vec<ExporterKind>,
}

/// A receiver entry: `- generator` or `- generator: { ... }`.
#[derive(Clone, Debug)]
pub enum ReceiverKind {
    /// Synthetic sensor readings.
    Generator(GeneratorConfig),
    /// selftrace's Internal Telemetry Receiver.
    InternalTelemetry(ReceiverSettings),
    /// An OTLP receiver (parsed; not built into the demo engine).
    Otlp(OtlpSettings),
}

/// A processor entry.
#[derive(Clone, Debug)]
pub enum ProcessorKind {
    /// Gathers items into batches.
    Batch(BatchConfig),
    /// Retries failed exports (parsed; not built into the demo engine).
    Retry(RetryConfig),
}

/// An exporter entry.
#[derive(Clone, Debug)]
pub enum ExporterKind {
    /// Prints what it gets.
    Console(ConsoleConfig),
    /// Sends logs over OTLP/HTTP.
    Otlp(OtlpSettings),
}

/// `generator` settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeneratorConfig {
    /// Time between two batches.
    #[serde(deserialize_with = "duration")]
    pub interval: Duration,
    /// Readings per batch.
    pub readings_per_batch: usize,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self { interval: Duration::from_millis(500), readings_per_batch: 4 }
    }
}

/// `batch` settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// A batch leaves after this long.
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    /// Or when it holds this many items.
    pub send_batch_size: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(1), send_batch_size: 100 }
    }
}

/// `retry` settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Attempts before giving up.
    pub max_attempts: u32,
}

/// `otlp` settings (receiver or exporter).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpSettings {
    /// URL.
    pub endpoint: String,
}

/// `console` exporter settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// `detailed` (every record, default) or `basic` (one line a batch).
    pub verbosity: Verbosity,
}

/// How much the console exporter prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verbosity {
    /// Every record.
    #[default]
    Detailed,
    /// One line a batch.
    Basic,
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    parse_duration(&String::deserialize(d)?).map_err(de::Error::custom)
}

/// The entries of a component list: a bare kind (`- otlp`, default
/// settings) or a one-key map (`- otlp: { endpoint: .. }`).
pub(crate) trait Component: Sized {
    const WHAT: &'static str;
    const KINDS: &'static [&'static str];
    fn with_settings<'de, A: MapAccess<'de>>(kind: &str, map: &mut A) -> Result<Self, A::Error>;
    /// The kind as written (one of `KINDS`).
    fn kind(&self) -> &'static str;
}

/// Settings written as `kind:` (null) or `kind: { .. }`.
fn settings<'de, A: MapAccess<'de>, T: Deserialize<'de> + Default>(map: &mut A) -> Result<T, A::Error> {
    Ok(map.next_value::<Option<T>>()?.unwrap_or_default())
}

impl Component for ReceiverKind {
    const WHAT: &'static str = "receiver";
    const KINDS: &'static [&'static str] = &["generator", RECEIVER_NAME, "otlp"];
    fn with_settings<'de, A: MapAccess<'de>>(kind: &str, map: &mut A) -> Result<Self, A::Error> {
        Ok(match kind {
            "generator" => Self::Generator(settings(map)?),
            RECEIVER_NAME => Self::InternalTelemetry(settings(map)?),
            _ => Self::Otlp(settings(map)?),
        })
    }
    fn kind(&self) -> &'static str {
        match self {
            Self::Generator(_) => "generator",
            Self::InternalTelemetry(_) => RECEIVER_NAME,
            Self::Otlp(_) => "otlp",
        }
    }
}

impl Component for ProcessorKind {
    const WHAT: &'static str = "processor";
    const KINDS: &'static [&'static str] = &["batch", "retry"];
    fn with_settings<'de, A: MapAccess<'de>>(kind: &str, map: &mut A) -> Result<Self, A::Error> {
        Ok(match kind {
            "batch" => Self::Batch(settings(map)?),
            _ => Self::Retry(settings(map)?),
        })
    }
    fn kind(&self) -> &'static str {
        match self {
            Self::Batch(_) => "batch",
            Self::Retry(_) => "retry",
        }
    }
}

impl Component for ExporterKind {
    const WHAT: &'static str = "exporter";
    const KINDS: &'static [&'static str] = &["console", "otlp"];
    fn with_settings<'de, A: MapAccess<'de>>(kind: &str, map: &mut A) -> Result<Self, A::Error> {
        Ok(match kind {
            "console" => Self::Console(settings(map)?),
            _ => Self::Otlp(settings(map)?),
        })
    }
    fn kind(&self) -> &'static str {
        match self {
            Self::Console(_) => "console",
            Self::Otlp(_) => "otlp",
        }
    }
}

struct ComponentVisitor<T>(PhantomData<T>);

impl<'de, T: Component> Visitor<'de> for ComponentVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} kind ({}), alone or with its settings", T::WHAT, T::KINDS.join(", "))
    }

    fn visit_str<E: de::Error>(self, kind: &str) -> Result<T, E> {
        // A bare kind: its settings are all defaults.
        struct Empty;
        impl<'de> MapAccess<'de> for Empty {
            type Error = de::value::Error;
            fn next_key_seed<K: de::DeserializeSeed<'de>>(&mut self, _: K) -> Result<Option<K::Value>, Self::Error> {
                Ok(None)
            }
            fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Self::Error> {
                seed.deserialize(de::value::UnitDeserializer::new())
            }
        }
        if !T::KINDS.contains(&kind) {
            return Err(E::unknown_variant(kind, T::KINDS));
        }
        T::with_settings(kind, &mut Empty).map_err(E::custom)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let Some(kind) = map.next_key::<String>()? else {
            return Err(de::Error::invalid_length(0, &self));
        };
        if !T::KINDS.contains(&kind.as_str()) {
            return Err(de::Error::unknown_variant(&kind, T::KINDS));
        }
        let component = T::with_settings(&kind, &mut map)?;
        if let Some(extra) = map.next_key::<String>()? {
            return Err(de::Error::custom(format!(
                "one {} a list entry: `{extra}` follows `{kind}` (start a new entry with `-`)",
                T::WHAT
            )));
        }
        Ok(component)
    }
}

macro_rules! component_deserialize {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(ComponentVisitor(PhantomData))
            }
        }
    )*};
}
component_deserialize!(ReceiverKind, ProcessorKind, ExporterKind);
