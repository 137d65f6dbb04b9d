//! The receiver's configuration, as a host's pipeline configuration gives it.

use std::{fmt, time::Duration};

use selftrace::DEFAULT_CHANNEL_CAPACITY;
use serde::Deserialize;

pub use crate::bounds::parse_duration;
use crate::bounds::{MAX_COUNT, MAX_INTERVAL, MIN_INTERVAL, interval, interval_option, within, within_option};

/// Default [`ReceiverConfig::flush_interval`].
pub(crate) const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Default [`ReceiverConfig::max_batch_bytes`] (512 KiB, well under the
/// 4 MiB an OTLP/gRPC receiver takes by default).
pub(crate) const DEFAULT_MAX_BATCH_BYTES: usize = 512 * 1024;
/// Default [`ReceiverConfig::max_batch_records`].
pub(crate) const DEFAULT_MAX_BATCH_RECORDS: usize = 8192;
/// The smallest [`ReceiverConfig::max_batch_bytes`].
pub(crate) const MIN_MAX_BATCH_BYTES: usize = 1024;
/// The largest [`ReceiverConfig::max_batch_bytes`] (64 MiB).
pub(crate) const MAX_MAX_BATCH_BYTES: usize = 64 * 1024 * 1024;

/// The configuration of one `internal_telemetry` receiver.
///
/// Deserializes from a host's pipeline configuration (unknown keys are
/// rejected; every key is optional), for example in YAML:
///
/// ```yaml
/// flush_interval: 500ms      # ns, us, ms, s, m or h
/// channel_capacity: 1000     # requests the router queues for this receiver
/// max_batch_bytes: 524288    # a batch of several requests stays under this
/// max_batch_records: 8192
/// overflow: drop_newest      # or drop_oldest, when the queue is full
/// logger: noop               # or console, raw: the receiver's pipeline logger
/// ```
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use selftrace_itr::{receiver::Overflow, ReceiverConfig};
///
/// let config = ReceiverConfig { flush_interval: Duration::from_millis(250), ..ReceiverConfig::default() };
/// assert_eq!(config.overflow, Overflow::DropNewest);
/// config.validate().unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReceiverConfig {
    /// How often the receiver flushes the node logs' buffers and sends what
    /// it holds (default 1 s; 1ms to 1h).
    #[serde(deserialize_with = "interval")]
    pub flush_interval: Duration,
    /// How many requests the router queues for this receiver (default 1000;
    /// 1 to 1 000 000).
    #[serde(deserialize_with = "within::<_, 1, MAX_COUNT>")]
    pub channel_capacity: usize,
    /// A batch made of several requests stays under this many bytes (a
    /// single larger request goes out alone, unchanged; 1 KiB to 64 MiB).
    #[serde(deserialize_with = "within::<_, MIN_MAX_BATCH_BYTES, MAX_MAX_BATCH_BYTES>")]
    pub max_batch_bytes: usize,
    /// A batch made of several requests holds at most this many records
    /// (default 8192; 1 to 1 000 000).
    #[serde(deserialize_with = "within::<_, 1, MAX_COUNT>")]
    pub max_batch_records: usize,
    /// What the router drops when this receiver's queue is full.
    pub overflow: Overflow,
    /// The logger of this receiver and of every node downstream of it.
    pub logger: PipelineLogger,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self {
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            channel_capacity: DEFAULT_CHANNEL_CAPACITY,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            max_batch_records: DEFAULT_MAX_BATCH_RECORDS,
            overflow: Overflow::default(),
            logger: PipelineLogger::default(),
        }
    }
}

impl ReceiverConfig {
    /// Checks every value.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first key out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |key, reason: &str| Err(ConfigError { key, reason: reason.into() });
        if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&self.flush_interval) {
            return fail("flush_interval", "must be 1ms to 1h");
        }
        if !(1..=MAX_COUNT).contains(&self.channel_capacity) {
            return fail("channel_capacity", &format!("must be 1 to {MAX_COUNT}"));
        }
        if !(MIN_MAX_BATCH_BYTES..=MAX_MAX_BATCH_BYTES).contains(&self.max_batch_bytes) {
            return fail("max_batch_bytes", &format!("must be {MIN_MAX_BATCH_BYTES} to {MAX_MAX_BATCH_BYTES}"));
        }
        if !(1..=MAX_COUNT).contains(&self.max_batch_records) {
            return fail("max_batch_records", &format!("must be 1 to {MAX_COUNT}"));
        }
        Ok(())
    }
}

/// What the router drops when a receiver's queue is full. Either way the
/// producer never waits and every drop is counted for that receiver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Overflow {
    /// Drop the request being sent (default).
    #[default]
    DropNewest,
    /// Drop the oldest queued request to make room.
    DropOldest,
}

/// The logger of a receiver's pipeline: the receiver and every node
/// downstream of it (the anti-recursion zone). None of them can log into
/// the pipeline; they log nowhere, or synchronously at ERROR only.
///
/// It is a [`NodeLogger`](selftrace::NodeLogger) without `Default` (the one
/// logger that would feed the pipeline), so a zone cannot be configured to
/// loop; [`node_logger`](Self::node_logger) gives the `NodeLogger`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PipelineLogger {
    /// Nothing is logged (default).
    #[default]
    Noop,
    /// ERROR records as console lines on stderr, for debugging.
    Console,
    /// ERROR records on the raw logger (stderr, rate-limited).
    Raw,
}

impl From<PipelineLogger> for selftrace::NodeLogger {
    fn from(logger: PipelineLogger) -> Self {
        logger.node_logger()
    }
}

impl PipelineLogger {
    /// The node logger it stands for.
    pub fn node_logger(self) -> selftrace::NodeLogger {
        match self {
            PipelineLogger::Noop => selftrace::NodeLogger::Noop,
            PipelineLogger::Console => selftrace::NodeLogger::Console,
            PipelineLogger::Raw => selftrace::NodeLogger::Raw,
        }
    }
}

/// A configuration value out of range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    key: &'static str,
    reason: String,
}

impl ConfigError {
    /// The key at fault.
    pub fn key(&self) -> &str {
        self.key
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "internal_telemetry receiver: `{}` {}", self.key, self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// An `internal_telemetry` entry of a pipeline as written, every key
/// optional: keys left out come from the defaults it is
/// [resolved](Self::resolve) against (`internal_collection`'s
/// `flush_interval` and `max_record_count` in a service configuration).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use selftrace_itr::{receiver::Overflow, ReceiverConfig, ReceiverSettings, config::from_yaml};
///
/// let written: ReceiverSettings = from_yaml("pipelines.yaml", "overflow: drop_oldest")?;
/// let defaults = ReceiverConfig { flush_interval: Duration::from_secs(5), ..ReceiverConfig::default() };
/// let config = written.resolve(defaults);
/// assert_eq!((config.overflow, config.flush_interval), (Overflow::DropOldest, Duration::from_secs(5)));
/// # Ok::<(), selftrace_itr::config::YamlError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ReceiverSettings {
    /// [`ReceiverConfig::flush_interval`].
    #[serde(default, deserialize_with = "interval_option")]
    pub flush_interval: Option<Duration>,
    /// [`ReceiverConfig::channel_capacity`].
    #[serde(default, deserialize_with = "within_option::<_, 1, MAX_COUNT>")]
    pub channel_capacity: Option<usize>,
    /// [`ReceiverConfig::max_batch_bytes`].
    #[serde(default, deserialize_with = "within_option::<_, MIN_MAX_BATCH_BYTES, MAX_MAX_BATCH_BYTES>")]
    pub max_batch_bytes: Option<usize>,
    /// [`ReceiverConfig::max_batch_records`].
    #[serde(default, deserialize_with = "within_option::<_, 1, MAX_COUNT>")]
    pub max_batch_records: Option<usize>,
    /// [`ReceiverConfig::overflow`].
    pub overflow: Option<Overflow>,
    /// [`ReceiverConfig::logger`].
    pub logger: Option<PipelineLogger>,
}

impl ReceiverSettings {
    /// The written keys over `defaults`.
    pub fn resolve(&self, defaults: ReceiverConfig) -> ReceiverConfig {
        ReceiverConfig {
            flush_interval: self.flush_interval.unwrap_or(defaults.flush_interval),
            channel_capacity: self.channel_capacity.unwrap_or(defaults.channel_capacity),
            max_batch_bytes: self.max_batch_bytes.unwrap_or(defaults.max_batch_bytes),
            max_batch_records: self.max_batch_records.unwrap_or(defaults.max_batch_records),
            overflow: self.overflow.unwrap_or(defaults.overflow),
            logger: self.logger.unwrap_or(defaults.logger),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration(" 10 us "), Ok(Duration::from_micros(10)));
        assert!(parse_duration("10").unwrap_err().contains("no unit"));
        assert!(parse_duration("10d").unwrap_err().contains("not a unit"));
        assert!(parse_duration("x s").is_err());
        assert!(parse_duration("1e300h").is_err());
    }

    #[test]
    fn validation_names_the_key() {
        let bad = ReceiverConfig { max_batch_bytes: 10, ..ReceiverConfig::default() };
        assert_eq!(bad.validate().unwrap_err().key(), "max_batch_bytes");
        let bad = ReceiverConfig { flush_interval: Duration::ZERO, ..ReceiverConfig::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("flush_interval"));
    }
}
