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
/// Each call compiles a writer of its own fields for the encoder (every
/// field inlined with its key and its value's kind; one dynamic call a
/// record): about half a KiB of code a field, in exchange for about a third
/// of the instructions of a loop over values of any kind.
///
/// Integers, floats, booleans, strings, `%value`, `?value` and the message
/// are handed to the encoder as they are; a message without format
/// arguments is its string, never formatted. Any other `tracing::Value`
/// (`Option`, `Box`, errors, `field::Empty`) is recorded through its
/// visitor. Both ways the record is the one the same event would make
/// through `tracing` inside the node's scope.
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
/// let logs = NodeLogs::new(Destination::Console);
/// let effect = logs.shared(Node::new("receiver.otlp.0"));
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
        $crate::__otel_fields!(($effect, $level, $name) [] $($($fields)*)?)
    }};
}

/// Parses tracing's field syntax into one list of fields, each its name,
/// a binding (an identifier made at its own expansion, so each field has its
/// own) and its value.
#[doc(hidden)]
#[macro_export]
macro_rules! __otel_fields {
    // Done.
    ($cx:tt [$($f:tt)*] $(,)?) => {
        $crate::__otel_emit!($cx [$($f)*])
    };
    // key = ?value
    ($cx:tt [$($f:tt)*] $($k:ident).+ = ?$val:expr $(, $($rest:tt)*)?) => {
        $crate::__otel_fields!($cx [$($f)* (::core::stringify!($($k).+), __value, &$crate::__private::debug(&$val))]
            $($($rest)*)?)
    };
    // key = %value
    ($cx:tt [$($f:tt)*] $($k:ident).+ = %$val:expr $(, $($rest:tt)*)?) => {
        $crate::__otel_fields!($cx [$($f)* (::core::stringify!($($k).+), __value, &$crate::__private::display(&$val))]
            $($($rest)*)?)
    };
    // key = value
    ($cx:tt [$($f:tt)*] $($k:ident).+ = $val:expr $(, $($rest:tt)*)?) => {
        $crate::__otel_fields!($cx [$($f)* (::core::stringify!($($k).+), __value, &$val)] $($($rest)*)?)
    };
    // ?key
    ($cx:tt [$($f:tt)*] ?$($k:ident).+ $(, $($rest:tt)*)?) => {
        $crate::__otel_fields!($cx [$($f)* (::core::stringify!($($k).+), __value, &$crate::__private::debug(&$($k).+))]
            $($($rest)*)?)
    };
    // %key
    ($cx:tt [$($f:tt)*] %$($k:ident).+ $(, $($rest:tt)*)?) => {
        $crate::__otel_fields!($cx [$($f)* (::core::stringify!($($k).+), __value, &$crate::__private::display(&$($k).+))]
            $($($rest)*)?)
    };
    // key
    ($cx:tt [$($f:tt)*] $($k:ident).+ $(, $($rest:tt)*)?) => {
        $crate::__otel_fields!($cx [$($f)* (::core::stringify!($($k).+), __value, &$($k).+)] $($($rest)*)?)
    };
    // The message, last: a format string and its arguments. Like
    // `tracing`, the message is the first field of the event.
    ($cx:tt [$($f:tt)*] $fmt:literal $($args:tt)*) => {
        $crate::__otel_emit!($cx [("message", __value, &::core::format_args!($fmt $($args)*)) $($f)*])
    };
}

/// One field value as an [`Arg`](crate::__private::Arg): the kinds the
/// encoder writes directly (integers, floats, booleans, strings, `%x`, `?x`,
/// the message) without `tracing`'s visitor, anything else through its
/// `tracing::Value` impl (autoref specialization: the first trait whose
/// receiver matches wins).
#[doc(hidden)]
#[macro_export]
macro_rules! __otel_arg {
    ($value:expr) => {
        (&&$crate::__private::Wrap($value)).arg()
    };
}

/// Builds the static callsite, evaluates the field values once, in order,
/// and hands the event to the effect with the callsite's own writer of its
/// fields: each field a call the compiler sees whole (its key, its value's
/// kind), not a loop over values of any kind.
#[doc(hidden)]
#[macro_export]
macro_rules! __otel_emit {
    (($effect:expr, $level:expr, $name:literal) [$(($n:expr, $b:ident, $v:expr))*]) => {{
        if $level <= $crate::__private::STATIC_MAX_LEVEL && $crate::__private::NodeTelemetry::enabled(&($effect), $level) {
            #[allow(unused_imports)]
            use $crate::__private::{FastArg as _, SlowArg as _};
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
            const _: () = ::core::assert!(<[&str]>::len(&[$($n),*]) <= 32, "otel events take at most 32 fields, the message included");
            // A match, not `let`s: the values' temporaries live until the
            // record is logged.
            match ($($v,)*) {
                ($($b,)*) => $crate::__private::emit(
                    &($effect),
                    &__META,
                    &$crate::__private::Fields::new(
                        |__writer| { $($crate::__private::encode_field(__writer, &__META, $n, $crate::__otel_arg!($b));)* },
                        |__visitor| { $($crate::__private::visit_arg(__visitor, &__META, $n, $crate::__otel_arg!($b));)* },
                    ),
                ),
            }
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

    pub use crate::{node::NodeTelemetry, out::FieldWriter};
    use crate::{
        record::{FieldVisitor, visit_field},
        view::{AnyValue, LogRecordView, RecordVisitor, Severity},
    };
    use std::{fmt, num::NonZeroUsize};
    use tracing_core::field::{DebugValue, DisplayValue};

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

    /// Builds the record of `meta` with its `fields` and hands it to
    /// `effect`.
    #[inline]
    pub fn emit<E: NodeTelemetry + ?Sized>(effect: &E, meta: &'static Metadata<'static>, fields: &dyn MacroFields) {
        effect.log_event(&MacroRecord { meta, time: now_unix_nanos(), fields });
    }

    /// The fields of one `otel_*!` call, as the macro wrote them out: one
    /// writer for the encoder (each field inlined with its key and its
    /// value's kind), one for any other visitor.
    pub trait MacroFields {
        /// Writes the fields into the encoder.
        fn encode(&self, writer: &mut FieldWriter<'_>);
        /// Hands the fields to `visitor`.
        fn visit(&self, visitor: &mut dyn RecordVisitor);
    }

    /// The two writers of a callsite's fields (see [`MacroFields`]).
    #[allow(missing_debug_implementations)]
    pub struct Fields<E, G>(E, G);

    impl<E: Fn(&mut FieldWriter<'_>), G: Fn(&mut dyn RecordVisitor)> Fields<E, G> {
        /// The fields, written by `encode` into the encoder and by `visit`
        /// to any other visitor.
        #[inline(always)]
        pub fn new(encode: E, visit: G) -> Self {
            Self(encode, visit)
        }
    }

    impl<E: Fn(&mut FieldWriter<'_>), G: Fn(&mut dyn RecordVisitor)> MacroFields for Fields<E, G> {
        fn encode(&self, writer: &mut FieldWriter<'_>) {
            (self.0)(writer);
        }
        fn visit(&self, visitor: &mut dyn RecordVisitor) {
            (self.1)(visitor);
        }
    }

    /// Writes one field into the encoder: inlined, so that the compiler
    /// sees the key and the value's kind (`arg` is made right here).
    #[inline(always)]
    pub fn encode_field(
        writer: &mut FieldWriter<'_>,
        meta: &'static Metadata<'static>,
        name: &'static str,
        arg: Arg<'_>,
    ) {
        match arg {
            // A formatted message: called (a literal one is written here).
            Arg::Any(value @ AnyValue::Fmt(_)) if name == "message" => encode_body(writer, value),
            Arg::Any(value) => visit_field(writer, name, value),
            Arg::Value(value) => record_value(writer, meta, name, value),
        }
    }

    /// Writes a formatted body into the encoder: one copy of the formatting
    /// code, not one in every callsite's writer.
    #[inline(never)]
    fn encode_body(writer: &mut FieldWriter<'_>, value: AnyValue<'_>) {
        writer.visit_body(value);
    }

    /// Hands one field to any visitor.
    #[inline(never)]
    pub fn visit_arg(
        visitor: &mut dyn RecordVisitor,
        meta: &'static Metadata<'static>,
        name: &'static str,
        arg: Arg<'_>,
    ) {
        match arg {
            Arg::Any(value) => visit_field(visitor, name, value),
            Arg::Value(value) => record_value(visitor, meta, name, value),
        }
    }

    /// A value of any other kind, through its `tracing::Value` impl (which
    /// wants the callsite's field of that name).
    #[inline(never)]
    fn record_value<V: RecordVisitor + ?Sized>(
        visitor: &mut V,
        meta: &'static Metadata<'static>,
        name: &str,
        value: &dyn Value,
    ) {
        if let Some(field) = meta.fields().field(name) {
            value.record(&field, &mut FieldVisitor::<_, false> { visitor });
        }
    }

    /// One field value of an `otel_*!` record.
    #[derive(Clone, Copy)]
    #[allow(missing_debug_implementations)]
    pub enum Arg<'a> {
        /// A value the encoder writes as it is.
        Any(AnyValue<'a>),
        /// Any other `tracing` value: recorded through its visitor.
        Value(&'a dyn Value),
    }

    /// The receiver of [`FastArg`] and [`SlowArg`].
    #[allow(missing_debug_implementations)]
    pub struct Wrap<'a, T>(pub &'a T);

    /// The field kinds written without `tracing`'s visitor, mapped exactly
    /// as [`TracingLogRecord`](crate::record::TracingLogRecord) maps them.
    pub trait FastArg<'a> {
        /// The value.
        fn arg(self) -> Arg<'a>;
    }

    /// Any other `tracing::Value`.
    pub trait SlowArg<'a> {
        /// The value.
        fn arg(self) -> Arg<'a>;
    }

    impl<'a, T: Value> SlowArg<'a> for &Wrap<'a, T> {
        #[inline(always)]
        fn arg(self) -> Arg<'a> {
            Arg::Value(self.0)
        }
    }

    macro_rules! fast_arg {
        ($($ty:ty => |$v:ident| $value:expr;)*) => {$(
            impl<'a> FastArg<'a> for &&Wrap<'a, $ty> {
                #[inline(always)]
                fn arg(self) -> Arg<'a> {
                    let $v: &'a $ty = self.0;
                    Arg::Any($value)
                }
            }
        )*};
    }

    // As `tracing`'s `Value` impls record them, then as `FieldVisitor` maps
    // what it is given: unsigned and 128-bit integers past `i64` become
    // their decimal string.
    fast_arg! {
        i8 => |v| AnyValue::Int(i64::from(*v));
        i16 => |v| AnyValue::Int(i64::from(*v));
        i32 => |v| AnyValue::Int(i64::from(*v));
        i64 => |v| AnyValue::Int(*v);
        isize => |v| AnyValue::Int(*v as i64);
        u8 => |v| AnyValue::Int(i64::from(*v));
        u16 => |v| AnyValue::Int(i64::from(*v));
        u32 => |v| AnyValue::Int(i64::from(*v));
        u64 => |v| i64::try_from(*v).map_or(AnyValue::Fmt(v), AnyValue::Int);
        usize => |v| i64::try_from(*v).map_or(AnyValue::Fmt(v), AnyValue::Int);
        i128 => |v| i64::try_from(*v).map_or(AnyValue::Fmt(v), AnyValue::Int);
        u128 => |v| i64::try_from(*v).map_or(AnyValue::Fmt(v), AnyValue::Int);
        f32 => |v| AnyValue::Double(f64::from(*v));
        f64 => |v| AnyValue::Double(*v);
        bool => |v| AnyValue::Bool(*v);
        String => |v| AnyValue::Str(v);
    }

    impl<'a> FastArg<'a> for &&Wrap<'a, &str> {
        #[inline(always)]
        fn arg(self) -> Arg<'a> {
            Arg::Any(AnyValue::Str(self.0))
        }
    }

    impl<'a, T: fmt::Debug> FastArg<'a> for &&Wrap<'a, DebugValue<T>> {
        #[inline(always)]
        fn arg(self) -> Arg<'a> {
            Arg::Any(AnyValue::Fmt(self.0))
        }
    }

    impl<'a, T: fmt::Display> FastArg<'a> for &&Wrap<'a, DisplayValue<T>> {
        #[inline(always)]
        fn arg(self) -> Arg<'a> {
            Arg::Any(AnyValue::Fmt(self.0))
        }
    }

    /// The message: a format string without arguments is the string itself.
    impl<'a> FastArg<'a> for &&Wrap<'a, fmt::Arguments<'_>> {
        #[inline(always)]
        fn arg(self) -> Arg<'a> {
            Arg::Any(match self.0.as_str() {
                Some(text) => AnyValue::Str(text),
                None => AnyValue::Fmt(self.0),
            })
        }
    }

    /// The record of an `otel_*!` call: its static callsite and its fields.
    struct MacroRecord<'a> {
        meta: &'static Metadata<'static>,
        time: u64,
        fields: &'a dyn MacroFields,
    }

    impl LogRecordView for MacroRecord<'_> {
        fn time_unix_nano(&self) -> Option<u64> {
            Some(self.time)
        }

        fn observed_time_unix_nano(&self) -> Option<u64> {
            Some(self.time)
        }

        fn severity(&self) -> Option<Severity> {
            Some(Severity::from_level(self.meta.level()))
        }

        /// The macro's name literal, checked at compile time.
        fn event_name(&self) -> Option<&str> {
            Some(self.meta.name())
        }

        #[inline]
        fn visit(&self, visitor: &mut dyn RecordVisitor) {
            self.fields.visit(visitor);
        }

        #[inline]
        fn visit_encoder(&self, fields: &mut FieldWriter<'_>) {
            self.fields.encode(fields);
        }

        /// The callsite's metadata, as for the same event through `tracing`.
        fn callsite_id(&self) -> Option<NonZeroUsize> {
            NonZeroUsize::new(std::ptr::from_ref(self.meta).addr())
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
