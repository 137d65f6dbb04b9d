//! Range checks of the configuration's capacities, counts and intervals,
//! made while the YAML is read: an out-of-range value is an error at its
//! own key, line and column.
//!
//! Every range is inclusive and written in the configuration reference
//! ([`ServiceConfig`](crate::ServiceConfig)).

use std::time::Duration;

use serde::{Deserialize, Deserializer, de};

/// The largest queue, batch or count the configuration accepts.
pub(crate) const MAX_COUNT: usize = 1_000_000;

/// The largest buffer or byte budget the configuration accepts (256 MiB).
pub(crate) const MAX_BYTES: usize = 256 << 20;

/// The shortest flush interval (1 ms).
pub(crate) const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// The longest flush interval (1 h).
pub(crate) const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// Parses `"250ms"`, `"1s"`, `"1.5s"`, `"2m"`: a number and one of `ns`,
/// `us`, `ms`, `s`, `m`, `h`.
///
/// For an engine reading durations in its own YAML as the configuration
/// does.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use selftrace_itr::receiver::parse_duration;
///
/// assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
/// assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
/// assert!(parse_duration("10 parsecs").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit.trim() {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "" => return Err(format!("`{text}` has no unit (ns, us, ms, s, m or h)")),
        other => return Err(format!("`{other}` is not a unit (ns, us, ms, s, m or h)")),
    };
    let number: f64 = number.parse().map_err(|_| format!("`{text}` is not a duration"))?;
    Duration::try_from_secs_f64(number * scale).map_err(|_| format!("`{text}` is out of range"))
}

pub(crate) fn duration_option<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    Option::<String>::deserialize(deserializer)?
        .map(|text| parse_duration(&text).map_err(de::Error::custom))
        .transpose()
}

fn check<E: de::Error>(value: u64, min: usize, max: usize) -> Result<usize, E> {
    match usize::try_from(value) {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(E::custom(format!("{value} is out of range: {min} to {max}"))),
    }
}

/// A count or size within `MIN..=MAX`.
pub(crate) fn within<'de, D: Deserializer<'de>, const MIN: usize, const MAX: usize>(d: D) -> Result<usize, D::Error> {
    check(u64::deserialize(d)?, MIN, MAX)
}

/// As [`within`], when the key may be left out.
pub(crate) fn within_option<'de, D: Deserializer<'de>, const MIN: usize, const MAX: usize>(
    d: D,
) -> Result<Option<usize>, D::Error> {
    Option::<u64>::deserialize(d)?.map(|v| check(v, MIN, MAX)).transpose()
}

fn check_interval<E: de::Error>(text: &str) -> Result<Duration, E> {
    let interval = parse_duration(text).map_err(E::custom)?;
    if (MIN_INTERVAL..=MAX_INTERVAL).contains(&interval) {
        Ok(interval)
    } else {
        Err(E::custom(format!("{} is out of range: 1ms to 1h", text.trim())))
    }
}

/// A flush interval within [`MIN_INTERVAL`]..=[`MAX_INTERVAL`].
pub(crate) fn interval<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    check_interval(&String::deserialize(d)?)
}

/// The smallest spool the configuration accepts (64 KiB).
pub(crate) const MIN_SPOOL_BYTES: u64 = 64 << 10;

/// The largest spool the configuration accepts (1 TiB).
pub(crate) const MAX_SPOOL_BYTES: u64 = 1 << 40;

/// A spool size within [`MIN_SPOOL_BYTES`]..=[`MAX_SPOOL_BYTES`], when the
/// key may be left out.
pub(crate) fn spool_bytes_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Option::<u64>::deserialize(d)?
        .map(|v| {
            if (MIN_SPOOL_BYTES..=MAX_SPOOL_BYTES).contains(&v) {
                Ok(v)
            } else {
                Err(de::Error::custom(format!("{v} is out of range: {MIN_SPOOL_BYTES} to {MAX_SPOOL_BYTES}")))
            }
        })
        .transpose()
}

/// As [`interval`], when the key may be left out.
pub(crate) fn interval_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Option::<String>::deserialize(d)?.map(|text| check_interval(&text)).transpose()
}
