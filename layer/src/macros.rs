//! The `otel_*!` macros: node events that go straight to a node's telemetry.

/// Logs a TRACE record through a node's telemetry; see [`otel_info!`](crate::otel_info).
#[macro_export]
macro_rules! otel_trace {
    ($effect:expr, $name:literal $(, $($fields:tt)*)?) => {
        $crate::__otel_event!($effect, $crate::__private::Level::TRACE, $name $(, $($fields)*)?)
    };
}

/// Logs a DEBUG record through a node's telemetry; see [`otel_info!`](crate::otel_info).
#[macro_export]
macro_rules! otel_debug {
    ($effect:expr, $name:literal $(, $($fields:tt)*)?) => {
        $crate::__otel_event!($effect, $crate::__private::Level::DEBUG, $name $(, $($fields)*)?)
    };
}

/// Logs an INFO record through a node's telemetry.
///
/// `otel_info!(effect, "event.name", key = value, ..., "message {}", arg)`:
///
/// * `effect` is anything implementing [`NodeTelemetry`](crate::node::NodeTelemetry)
///   (a [`SharedTelemetry`](crate::SharedTelemetry), a
///   [`LocalTelemetry`](crate::LocalTelemetry), an engine's effect handler);
/// * `"event.name"` becomes the record's `event_name`; an empty name or one
///   with whitespace is a compile error;
/// * fields use `tracing`'s syntax: `key = value`, `key = %value`
///   (`Display`), `key = ?value` (`Debug`), the shorthands `key`, `%key`,
///   `?key`, dotted keys (`http.method = "GET"`), then an optional message
///   with format arguments. At most 32 fields including the message.
///
/// The record is built from a static callsite and handed to the effect's
/// `log_event` directly: the global `tracing` dispatch is never involved, so
/// subscriber filters do not apply; the node logs' and the node's levels
/// do (and `tracing`'s compile-time `max_level_*` features). Field values
/// are evaluated only when the level is enabled.
///
/// # Not `opentelemetry::otel_info!`
///
/// The `opentelemetry` crate has macros of the same names for the
/// OpenTelemetry SDK's own diagnostics: `otel_info!(name: "sdk_start", k =
/// v)`, with no telemetry handle, emitted as a `tracing` event under the
/// crate's target when its `internal-logs` feature is on (so selftrace's
/// layer sees them like any third-party event). These take a node's
/// telemetry first and the event name as a plain literal, and never go
/// through `tracing`. Import one set or the other by path
/// (`selftrace::otel_info!`), not both by name.
///
/// # Examples
///
/// ```
/// use selftrace::{Destination, Node, NodeLogs, otel_info};
///
/// let path = NodeLogs::new(Destination::Console);
/// let effect = path.shared(Node::new("receiver.otlp.0"));
/// let peer = std::net::Ipv4Addr::LOCALHOST;
/// let batch = vec![1, 2, 3];
///
/// otel_info!(effect, "receiver.started");
/// otel_info!(effect, "request.received", peer = %peer, batch = ?batch, http.method = "POST");
/// otel_info!(effect, "request.done", status = 200_i64, "served in {} ms", 3);
/// ```
///
/// A malformed name does not compile. With the same setup, a good name
/// compiles:
///
/// ```
/// # let effect = selftrace::NodeLogs::new(selftrace::Destination::Noop).shared(selftrace::Node::new("n"));
/// selftrace::otel_info!(effect, "receiver.started");
/// ```
///
/// and these do not (`otel event name must not contain whitespace or
/// control characters`, `otel event name must not be empty`):
///
/// ```compile_fail,E0080
/// # let effect = selftrace::NodeLogs::new(selftrace::Destination::Noop).shared(selftrace::Node::new("n"));
/// selftrace::otel_info!(effect, "receiver started");
/// ```
///
/// ```compile_fail,E0080
/// # let effect = selftrace::NodeLogs::new(selftrace::Destination::Noop).shared(selftrace::Node::new("n"));
/// selftrace::otel_info!(effect, "");
/// ```
#[macro_export]
macro_rules! otel_info {
    ($effect:expr, $name:literal $(, $($fields:tt)*)?) => {
        $crate::__otel_event!($effect, $crate::__private::Level::INFO, $name $(, $($fields)*)?)
    };
}

/// Logs a WARN record through a node's telemetry; see [`otel_info!`](crate::otel_info).
#[macro_export]
macro_rules! otel_warn {
    ($effect:expr, $name:literal $(, $($fields:tt)*)?) => {
        $crate::__otel_event!($effect, $crate::__private::Level::WARN, $name $(, $($fields)*)?)
    };
}

/// Logs an ERROR record through a node's telemetry; see [`otel_info!`](crate::otel_info).
#[macro_export]
macro_rules! otel_error {
    ($effect:expr, $name:literal $(, $($fields:tt)*)?) => {
        $crate::__otel_event!($effect, $crate::__private::Level::ERROR, $name $(, $($fields)*)?)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __otel_event {
    ($effect:expr, $level:expr, $name:literal $(, $($fields:tt)*)?) => {{
        const _: () = $crate::__private::check_event_name($name);
        $crate::__otel_fields!(($effect, $level, $name) [] [] $($($fields)*)?)
    }};
}

/// Parses tracing's field syntax into a list of names and a list of values.
#[doc(hidden)]
#[macro_export]
macro_rules! __otel_fields {
    // Done.
    ($cx:tt [$($n:expr),*] [$($v:expr),*] $(,)?) => {
        $crate::__otel_emit!($cx [$($n),*] [$($v),*])
    };
    // key = ?value
    ($cx:tt [$($n:expr),*] [$($v:expr),*] $($k:ident).+ = ?$val:expr $(, $($rest:tt)*)?) => {
        $crate::__otel_fields!($cx [$($n,)* ::core::stringify!($($k).+)]
            [$($v,)* &$crate::__private::debug(&$val) as &dyn $crate::__private::Value] $($($rest)*)?)
    };
    // key = %value
    ($cx:tt [$($n:expr),*] [$($v:expr),*] $($k:ident).+ = %$val:expr $(, $($rest:tt)*)?) => {
        $crate::__otel_fields!($cx [$($n,)* ::core::stringify!($($k).+)]
            [$($v,)* &$crate::__private::display(&$val) as &dyn $crate::__private::Value] $($($rest)*)?)
    };
    // key = value
    ($cx:tt [$($n:expr),*] [$($v:expr),*] $($k:ident).+ = $val:expr $(, $($rest:tt)*)?) => {
        $crate::__otel_fields!($cx [$($n,)* ::core::stringify!($($k).+)]
            [$($v,)* &$val as &dyn $crate::__private::Value] $($($rest)*)?)
    };
    // ?key
    ($cx:tt [$($n:expr),*] [$($v:expr),*] ?$($k:ident).+ $(, $($rest:tt)*)?) => {
        $crate::__otel_fields!($cx [$($n,)* ::core::stringify!($($k).+)]
            [$($v,)* &$crate::__private::debug(&$($k).+) as &dyn $crate::__private::Value] $($($rest)*)?)
    };
    // %key
    ($cx:tt [$($n:expr),*] [$($v:expr),*] %$($k:ident).+ $(, $($rest:tt)*)?) => {
        $crate::__otel_fields!($cx [$($n,)* ::core::stringify!($($k).+)]
            [$($v,)* &$crate::__private::display(&$($k).+) as &dyn $crate::__private::Value] $($($rest)*)?)
    };
    // key
    ($cx:tt [$($n:expr),*] [$($v:expr),*] $($k:ident).+ $(, $($rest:tt)*)?) => {
        $crate::__otel_fields!($cx [$($n,)* ::core::stringify!($($k).+)]
            [$($v,)* &$($k).+ as &dyn $crate::__private::Value] $($($rest)*)?)
    };
    // The message, last: a format string and its arguments. Like
    // `tracing`, the message is the first field of the event.
    ($cx:tt [$($n:expr),*] [$($v:expr),*] $fmt:literal $($args:tt)*) => {
        $crate::__otel_emit!($cx ["message" $(, $n)*]
            [&::core::format_args!($fmt $($args)*) as &dyn $crate::__private::Value $(, $v)*])
    };
}

/// Builds the static callsite and the value set, then hands the event to
/// the effect.
#[doc(hidden)]
#[macro_export]
macro_rules! __otel_emit {
    (($effect:expr, $level:expr, $name:literal) [$($n:expr),*] [$($v:expr),*]) => {{
        if $level <= $crate::__private::STATIC_MAX_LEVEL && $crate::__private::NodeTelemetry::enabled(&($effect), $level) {
            static __CALLSITE: $crate::__private::DefaultCallsite = $crate::__private::DefaultCallsite::new(&__META);
            static __META: $crate::__private::Metadata<'static> = $crate::__private::Metadata::new(
                $name,
                ::core::module_path!(),
                $level,
                ::core::option::Option::Some(::core::file!()),
                ::core::option::Option::Some(::core::line!()),
                ::core::option::Option::Some(::core::module_path!()),
                $crate::__private::FieldSet::new(&[$($n),*], $crate::__private::identify_callsite!(&__CALLSITE)),
                $crate::__private::Kind::EVENT,
            );
            $crate::__private::emit(&($effect), &__META, [$(::core::option::Option::Some($v)),*]);
        }
    }};
}

/// What the macros expand to; not public API.
#[doc(hidden)]
pub mod __private {
    pub use tracing::level_filters::STATIC_MAX_LEVEL;
    pub use tracing_core::{
        Level, Metadata,
        callsite::DefaultCallsite,
        field::{FieldSet, Value, debug, display},
        identify_callsite,
        metadata::Kind,
    };

    pub use crate::node::NodeTelemetry;
    use crate::record::TracingLogRecord;
    use tracing_core::{Event, field::Field};

    /// The record clock (for the clock bench).
    #[inline]
    pub fn now_unix_nanos() -> u64 {
        crate::clock::now_unix_nanos()
    }

    /// Fails compilation (in a `const`) for an empty event name or one with
    /// whitespace or control characters.
    pub const fn check_event_name(name: &str) {
        let bytes = name.as_bytes();
        assert!(!bytes.is_empty(), "otel event name must not be empty");
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            assert!(
                !(b.is_ascii_whitespace() || b.is_ascii_control()),
                "otel event name must not contain whitespace or control characters"
            );
            i += 1;
        }
    }

    /// Builds the event of `meta` with `values` (one per field, in order)
    /// and hands it to `effect`.
    pub fn emit<E: NodeTelemetry + ?Sized, const N: usize>(
        effect: &E,
        meta: &'static Metadata<'static>,
        values: [Option<&dyn Value>; N],
    ) {
        let fields = meta.fields();
        let time = now_unix_nanos();
        match fields.iter().next() {
            Some(first) => {
                // The macro declares exactly these fields, in this order.
                let mut names = fields.iter();
                let keyed: [(Field, Option<&dyn Value>); N] =
                    values.map(|value| (names.next().unwrap_or_else(|| first.clone()), value));
                let keyed = keyed.each_ref().map(|(field, value)| (field, *value));
                let values = fields.value_set(&keyed);
                effect.log_event(&TracingLogRecord::new(&Event::new(meta, &values), time));
            }
            None => {
                let none: [(&Field, Option<&dyn Value>); 0] = [];
                let values = fields.value_set(&none);
                effect.log_event(&TracingLogRecord::new(&Event::new(meta, &values), time));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::__private::check_event_name;

    fn rejection(name: &str) -> Option<String> {
        std::panic::catch_unwind(|| check_event_name(name))
            .err()
            .map(|panic| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()).unwrap_or_default())
    }

    #[test]
    fn event_names_are_checked() {
        for good in ["a", "receiver.started", "http.request_done", "ünïcode"] {
            assert_eq!(rejection(good), None, "{good:?}");
        }
        assert_eq!(rejection("").as_deref(), Some("otel event name must not be empty"));
        for bad in ["has space", " lead", "trail\t", "new\nline", "nul\0"] {
            assert_eq!(
                rejection(bad).as_deref(),
                Some("otel event name must not contain whitespace or control characters"),
                "{bad:?}"
            );
        }
    }
}
