//! Span fields on log records (opt-in).
//!
//! With [`SpanFields`] set on the layer
//! ([`OtlpTracingLayerBuilder::with_span_fields`](crate::OtlpTracingLayerBuilder::with_span_fields)),
//! each record carries the fields of the spans its event is inside, as
//! attributes after the event's own:
//!
//! ```text
//! info_span!("request", request_id = 7, user = "alice")
//!   └─ info_span!("db", user = "bob")
//!        └─ info!(rows = 3, "query done")
//!
//! attributes: rows = 3, user = "bob", request_id = 7
//! ```
//!
//! * The event's own field wins over any span's; among spans the innermost
//!   wins. A field shadowed so is not written and not counted.
//! * All spans, or only the spans [named](SpanFields::named).
//! * Bounded per record by a count ([`SpanFields::max_fields`]) and a byte
//!   budget ([`SpanFields::max_bytes`], measured on the encoded
//!   attributes): span fields that do not fit are left out and counted in
//!   the record's `dropped_attributes_count`. Once the count is full, the
//!   fields of the remaining outer spans are counted without checking their
//!   names (a deep stack costs one length read per span).
//!
//! # Cost
//!
//! A span's fields are recorded once, when the span is created
//! (`on_new_span`) and when a field is recorded again (`Span::record`): each
//! value is formatted once, cut to the layer's value limit, and encoded as
//! the attribute the encoder writes, kept in the span's extensions (one
//! allocation per span with fields, one per field). An event then copies
//! those bytes: no value is formatted again. Per event: one lookup of the
//! current span in the registry and, per span, one read lock of its
//! extensions. Spans created while no layer asks for span fields cost
//! nothing; events outside spans cost the lookup only.
//!
//! The first layer that records a span's fields keeps them: with two layers
//! asking for span fields, both read the first one's (their value limits
//! may differ). With a span layer (`traces`), a span's fields are recorded
//! once too: a logs layer reads the span layer's recording (only for the
//! spans its [`SpanFields`] name), and a logs layer that came first hands
//! its recording over to the span layer.

use std::{error::Error, fmt, num::NonZeroUsize};

use tracing_core::{
    Event,
    field::{Field, Visit},
    span,
};
use tracing_subscriber::registry::Extensions;

use crate::{
    encoder::{TRUNCATION_MARKER, pre_encode_attribute_into},
    view::{AnyValue, CodeLocation, LogRecordView, PreEncoded, RecordVisitor, Severity, TraceContext},
};

/// Default [`SpanFields::max_fields`].
#[doc(hidden)]
pub const DEFAULT_MAX_SPAN_FIELDS: usize = 32;
/// The largest [`SpanFields::max_fields`] accepted.
#[doc(hidden)]
pub const MAX_SPAN_FIELDS: usize = 64;
/// Default [`SpanFields::max_bytes`].
#[doc(hidden)]
pub const DEFAULT_MAX_SPAN_FIELD_BYTES: usize = 4096;
/// The largest [`SpanFields::max_bytes`] accepted (a record's own limit
/// bounds it too).
#[doc(hidden)]
pub const MAX_SPAN_FIELD_BYTES: usize = 1 << 20;

/// Which spans' fields a record carries, and how many.
///
/// # Examples
///
/// ```
/// use selftrace::{Destination, OtlpBytesChannel, OtlpTracingLayer, spans::SpanFields};
/// use selftrace::decode::LogsRequest;
/// use selftrace::view::{AnyValue, LogRecordView, RecordVisitor};
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let channel = OtlpBytesChannel::new(8);
/// let layer = OtlpTracingLayer::builder(Destination::Channel(channel.sender()))
///     .with_span_fields(Some(SpanFields::all()))
///     .build();
/// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
///     let _request = tracing::info_span!("request", request_id = 7, user = "alice").entered();
///     tracing::info!(rows = 3, "query done");
/// });
///
/// struct Keys(Vec<String>);
/// impl RecordVisitor for Keys {
///     fn visit_body(&mut self, _: AnyValue<'_>) {}
///     fn visit_attribute(&mut self, key: &str, _: AnyValue<'_>) { self.0.push(key.into()) }
/// }
/// let request = channel.receiver().try_recv().unwrap();
/// let mut keys = Keys(Vec::new());
/// LogsRequest::new(request.as_bytes()).for_each_record(|_, record| record.visit(&mut keys))?;
/// assert_eq!(keys.0, ["rows", "request_id", "user"]);
/// # Ok::<(), selftrace::decode::DecodeError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanFields {
    names: Option<Box<[Box<str>]>>,
    max_fields: usize,
    max_bytes: usize,
}

/// Why a [`SpanFields`] bound was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanFieldsError(String);

impl fmt::Display for SpanFieldsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for SpanFieldsError {}

impl SpanFields {
    /// The fields of every span, within the default bounds.
    pub fn all() -> Self {
        Self { names: None, max_fields: DEFAULT_MAX_SPAN_FIELDS, max_bytes: DEFAULT_MAX_SPAN_FIELD_BYTES }
    }

    /// The fields of the spans named `names` only (a span's name is its
    /// `info_span!("name", ...)`), within the default bounds.
    pub fn named<I: IntoIterator<Item = S>, S: Into<String>>(names: I) -> Self {
        let names = names.into_iter().map(|n| n.into().into_boxed_str()).collect();
        Self { names: Some(names), ..Self::all() }
    }

    /// At most `max_fields` span fields (1..=64) and
    /// `max_bytes` of them encoded (1..=1 MiB) per
    /// record.
    ///
    /// # Errors
    ///
    /// A bound outside its range.
    pub fn with_bounds(mut self, max_fields: usize, max_bytes: usize) -> Result<Self, SpanFieldsError> {
        if !(1..=MAX_SPAN_FIELDS).contains(&max_fields) {
            return Err(SpanFieldsError(format!(
                "span fields: max_fields must be 1..={MAX_SPAN_FIELDS}, got {max_fields}"
            )));
        }
        if !(1..=MAX_SPAN_FIELD_BYTES).contains(&max_bytes) {
            return Err(SpanFieldsError(format!(
                "span fields: max_bytes must be 1..={MAX_SPAN_FIELD_BYTES}, got {max_bytes}"
            )));
        }
        self.max_fields = max_fields;
        self.max_bytes = max_bytes;
        Ok(self)
    }

    /// The most span fields a record carries.
    pub fn max_fields(&self) -> usize {
        self.max_fields
    }

    /// The most bytes of encoded span fields a record carries.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The span names whose fields are kept; `None` for all spans.
    pub fn names(&self) -> Option<&[Box<str>]> {
        self.names.as_deref()
    }

    /// Whether the fields of a span named `name` are kept.
    pub(crate) fn wants(&self, name: &str) -> bool {
        self.names.as_ref().is_none_or(|names| names.iter().any(|n| &**n == name))
    }
}

// === impl Recorded ===

/// The fields of one span, each encoded once: kept in the span's extensions.
///
/// Every field's `KeyValue` is encoded into one buffer, one after the other;
/// a string or bytes value is read back from its encoding (its bytes end
/// it). Two allocations per span with fields, whatever their number.
#[derive(Debug, Default)]
pub(crate) struct Recorded {
    bytes: Vec<u8>,
    fields: Vec<RecordedField>,
    /// A field is named `otel.*` (what steers a span rather than
    /// describes it): until one is, the span layer looks none up.
    steering: bool,
    /// Made by a span layer, for every span it traces: a logs layer reads
    /// it only for the spans its [`SpanFields`] want.
    by_span_layer: bool,
}

/// Whether a logs layer with span fields was ever made: until one is, a
/// span layer looks for no recording to take over (one load per span).
static SPAN_FIELDS_LAYERS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Notes that a logs layer with span fields exists.
pub(crate) fn span_fields_layer_made() {
    SPAN_FIELDS_LAYERS.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Whether a logs layer with span fields was ever made.
#[cfg(feature = "traces")]
#[inline]
pub(crate) fn any_span_fields_layer() -> bool {
    SPAN_FIELDS_LAYERS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Where a span layer keeps a span's fields, given by the span layer when
/// it is made (this module does not depend on it).
#[cfg(feature = "traces")]
pub(crate) type SpanLayerFields = for<'e, 'a> fn(&'e Extensions<'a>) -> Option<&'e Recorded>;

#[cfg(feature = "traces")]
static SPAN_LAYER_FIELDS: std::sync::OnceLock<SpanLayerFields> = std::sync::OnceLock::new();

/// Called by the first span layer made.
#[cfg(feature = "traces")]
pub(crate) fn set_span_layer_fields(fields: SpanLayerFields) {
    let _ = SPAN_LAYER_FIELDS.set(fields);
}

/// Whether a span layer was ever made.
#[cfg(feature = "traces")]
#[inline]
pub(crate) fn span_layer_made() -> bool {
    SPAN_LAYER_FIELDS.get().is_some()
}

/// The recorded fields of a span: a logs layer's, else those a span layer
/// keeps with the span's ids (recorded once, read by both).
#[inline]
pub(crate) fn span_fields<'e>(extensions: &'e Extensions<'_>) -> Option<&'e Recorded> {
    let own = extensions.get::<Recorded>();
    #[cfg(feature = "traces")]
    let own = own.or_else(|| SPAN_LAYER_FIELDS.get().and_then(|fields| fields(extensions)));
    own
}

/// Whether a span's fields are recorded already (see [`span_fields`]).
pub(crate) fn fields_recorded(extensions: &Extensions<'_>) -> bool {
    span_fields(extensions).is_some()
}

#[derive(Debug)]
struct RecordedField {
    name: &'static str,
    /// [`key_hash`] of the name: what outer spans' fields are checked
    /// against.
    hash: u64,
    value: Stored,
    /// Where its `KeyValue` is in the buffer.
    encoded: (u32, u32),
    /// The value was cut to the value limit.
    cut: bool,
}

/// A field's value as it was recorded (values formatted once): a string or
/// bytes value as where it is in the buffer.
#[derive(Clone, Copy, Debug)]
enum Stored {
    Str(u32, u32),
    Int(i64),
    Bool(bool),
    Double(f64),
    Bytes(u32, u32),
}

/// The prefix of the fields that steer a span (`otel.name`, `otel.kind`,
/// `otel.status_code`, ...).
pub(crate) const STEERING: &str = "otel.";

/// Average bytes of one encoded field, for the buffer's first capacity.
const FIELD_BYTES_GUESS: usize = 32;

impl Recorded {
    /// Records the values of a new span.
    pub(crate) fn new(values: &span::Attributes<'_>, max_value: usize) -> Self {
        let declared = values.metadata().fields().len();
        let mut this = Self {
            bytes: Vec::with_capacity(declared * FIELD_BYTES_GUESS),
            fields: Vec::with_capacity(declared),
            steering: false,
            by_span_layer: false,
        };
        values.record(&mut Recorder { recorded: &mut this, max_value });
        this
    }

    /// Records the fields of an event (a span event's attributes).
    #[cfg(feature = "traces")]
    pub(crate) fn from_event(event: &Event<'_>, max_value: usize) -> Self {
        let mut this = Self::default();
        event.record(&mut Recorder { recorded: &mut this, max_value });
        this
    }

    /// Records values given after the span was created.
    pub(crate) fn record(&mut self, values: &span::Record<'_>, max_value: usize) {
        values.record(&mut Recorder { recorded: self, max_value });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Marks it as a span layer's (see `by_span_layer`).
    #[cfg(feature = "traces")]
    pub(crate) fn mark_span_layers(&mut self) {
        self.by_span_layer = true;
    }

    /// Whether a span layer made it.
    pub(crate) fn is_span_layers(&self) -> bool {
        self.by_span_layer
    }

    fn slice(&self, (start, end): (u32, u32)) -> &[u8] {
        self.bytes.get(start as usize..end as usize).unwrap_or_default()
    }

    /// A field's value, read where it is.
    fn value(&self, field: &RecordedField) -> AnyValue<'_> {
        match field.value {
            // Written from a `&str`: always UTF-8.
            Stored::Str(start, end) => AnyValue::Str(std::str::from_utf8(self.slice((start, end))).unwrap_or_default()),
            Stored::Int(i) => AnyValue::Int(i),
            Stored::Bool(b) => AnyValue::Bool(b),
            Stored::Double(d) => AnyValue::Double(d),
            Stored::Bytes(start, end) => AnyValue::Bytes(self.slice((start, end))),
        }
    }

    /// Whether a field is named `otel.*`.
    #[cfg(feature = "traces")]
    pub(crate) fn has_steering(&self) -> bool {
        self.steering
    }

    /// The value of the string field `name`, if it was recorded as one.
    #[cfg(feature = "traces")]
    pub(crate) fn str_field(&self, name: &str) -> Option<&str> {
        if !self.steering && name.starts_with(STEERING) {
            return None;
        }
        match self.fields.iter().find(|f| f.name == name).map(|f| self.value(f)) {
            Some(AnyValue::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// Each field: its name, its value (an empty string unless `values`),
    /// its encoding, whether it was cut.
    #[cfg(feature = "traces")]
    pub(crate) fn for_each<'s>(
        &'s self,
        values: bool,
        mut f: impl FnMut(&'static str, AnyValue<'s>, PreEncoded<'s>, bool),
    ) {
        for field in &self.fields {
            let value = if values { self.value(field) } else { AnyValue::Str("") };
            f(field.name, value, PreEncoded::new(self.slice(field.encoded)), field.cut);
        }
    }

    /// Sets `name` to `value`; `long`: the value was longer than what
    /// `value` holds. A string longer than `max_value` is cut here.
    fn set(&mut self, name: &'static str, value: AnyValue<'_>, max_value: usize, long: bool) {
        let mut cut_copy = None;
        let (value, cut) = match value {
            AnyValue::Str(s) if s.len() > max_value || (long && !s.ends_with(TRUNCATION_MARKER)) => {
                (AnyValue::Str(cut_copy.insert(cut_to(s, max_value))), true)
            }
            value => (value, long),
        };
        // A field recorded again keeps its place; its old bytes go, the
        // later ones move up.
        // Hashes first: names of one length rarely share one.
        let hash = key_hash(name);
        let again = self.fields.iter().position(|f| f.hash == hash && f.name == name);
        if let Some(index) = again {
            let (start, end) = self.fields[index].encoded;
            self.bytes.drain(start as usize..end as usize);
            let gone = end - start;
            for field in &mut self.fields {
                let shift = |at: &mut u32| {
                    if *at >= end {
                        *at -= gone;
                    }
                };
                shift(&mut field.encoded.0);
                shift(&mut field.encoded.1);
                if let Stored::Str(a, b) | Stored::Bytes(a, b) = &mut field.value {
                    shift(a);
                    shift(b);
                }
            }
        }
        let start = self.bytes.len();
        let cut_again = pre_encode_attribute_into(&mut self.bytes, name, value, max_value);
        let end = self.bytes.len();
        // A string or bytes value ends its encoding (it is at most
        // `max_value` long here, so written whole).
        let tail = |len: usize| (end.saturating_sub(len).max(start) as u32, end as u32);
        let stored = match value {
            AnyValue::Str(s) => {
                let (a, b) = tail(s.len());
                Stored::Str(a, b)
            }
            AnyValue::Bytes(bytes) => {
                let (a, b) = tail(bytes.len().min(max_value));
                Stored::Bytes(a, b)
            }
            AnyValue::Int(i) => Stored::Int(i),
            AnyValue::Bool(b) => Stored::Bool(b),
            AnyValue::Double(d) => Stored::Double(d),
            // Not recorded as such (`Recorder` formats everything else).
            _ => Stored::Str(end as u32, end as u32),
        };
        let field =
            RecordedField { name, hash, value: stored, encoded: (start as u32, end as u32), cut: cut || cut_again };
        self.steering |= name.starts_with(STEERING);
        match again.and_then(|index| self.fields.get_mut(index)) {
            Some(old) => *old = field,
            None => self.fields.push(field),
        }
    }
}

/// `s` cut at a character boundary to end with [`TRUNCATION_MARKER`] within
/// `max` bytes (without it when `max` cannot hold it).
fn cut_to(s: &str, max: usize) -> Box<str> {
    let marker = if max >= TRUNCATION_MARKER.len() { TRUNCATION_MARKER } else { "" };
    let mut keep = (max - marker.len()).min(s.len());
    while !s.is_char_boundary(keep) {
        keep -= 1;
    }
    let mut cut = String::with_capacity(keep + marker.len());
    cut.push_str(&s[..keep]);
    cut.push_str(marker);
    cut.into_boxed_str()
}

/// Formats into a string of at most `cap` bytes, then refuses more.
struct Bounded {
    out: String,
    cap: usize,
    long: bool,
}

impl fmt::Write for Bounded {
    fn write_str(&mut self, piece: &str) -> fmt::Result {
        let room = self.cap - self.out.len();
        if piece.len() <= room {
            self.out.push_str(piece);
            return Ok(());
        }
        let mut keep = room;
        while !piece.is_char_boundary(keep) {
            keep -= 1;
        }
        self.out.push_str(&piece[..keep]);
        self.long = true;
        Err(fmt::Error)
    }
}

/// Adapts `tracing`'s visitor to [`Recorded::set`].
struct Recorder<'r> {
    recorded: &'r mut Recorded,
    max_value: usize,
}

impl Recorder<'_> {
    /// Formats `value` once, at most to the value limit.
    fn formatted(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut out = Bounded { out: String::new(), cap: self.max_value, long: false };
        // An error is the limit reached (or the value's own `Debug` failing:
        // what it wrote is kept).
        let _ = fmt::write(&mut out, format_args!("{value:?}"));
        self.recorded.set(field.name(), AnyValue::Str(&out.out), self.max_value, out.long);
    }
}

impl Visit for Recorder<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.recorded.set(field.name(), AnyValue::Double(value), self.max_value, false);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.recorded.set(field.name(), AnyValue::Int(value), self.max_value, false);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match i64::try_from(value) {
            Ok(v) => self.record_i64(field, v),
            Err(_) => self.formatted(field, &value),
        }
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        match i64::try_from(value) {
            Ok(v) => self.record_i64(field, v),
            Err(_) => self.formatted(field, &value),
        }
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        match i64::try_from(value) {
            Ok(v) => self.record_i64(field, v),
            Err(_) => self.formatted(field, &value),
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.recorded.set(field.name(), AnyValue::Bool(value), self.max_value, false);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        // A long value is cut (with the marker) as it is set.
        self.recorded.set(field.name(), AnyValue::Str(value), self.max_value, false);
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        let long = value.len() > self.max_value;
        let kept = value.get(..self.max_value).unwrap_or(value);
        self.recorded.set(field.name(), AnyValue::Bytes(kept), self.max_value, long);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        struct Shown<'e>(&'e (dyn Error + 'static));
        impl fmt::Debug for Shown<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self.0, f)
            }
        }
        self.formatted(field, &Shown(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.formatted(field, value);
    }
}

// === impl EventSpans ===

/// Walks the spans an event is inside, innermost first, handing each one's
/// recorded fields (those without any are skipped).
pub(crate) trait SpanSource {
    /// Hands each span's name and recorded fields.
    fn for_each_span(&self, f: &mut dyn FnMut(&str, &Recorded));
}

/// The spans of one event and the bounds their fields are written within.
#[derive(Clone, Copy)]
pub(crate) struct EventSpans<'a> {
    pub(crate) fields: &'a SpanFields,
    pub(crate) source: &'a dyn SpanSource,
}

impl fmt::Debug for EventSpans<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSpans").field("fields", self.fields).finish_non_exhaustive()
    }
}

impl EventSpans<'_> {
    /// Visits the span fields `event` carries (see the module docs), then
    /// the count of those left out.
    pub(crate) fn visit(&self, event: &Event<'_>, visitor: &mut dyn RecordVisitor) {
        let own = event.metadata().fields();
        // Most names differ in length: rejected before their bytes are
        // compared.
        let is_own = |name: &str| {
            own.iter().any(|f| {
                let own = f.name();
                own.len() == name.len() && own.as_bytes().first() == name.as_bytes().first() && own == name
            })
        };
        visit_span_fields(self.fields, self.source, &is_own, visitor);
    }
}

/// Visits the fields of the spans `source` walks that `own` does not name,
/// within the bounds of `fields`, then the count of those left out.
fn visit_span_fields(
    fields: &SpanFields,
    source: &dyn SpanSource,
    own: &dyn Fn(&str) -> bool,
    visitor: &mut dyn RecordVisitor,
) {
    let (max_fields, max_bytes) = (fields.max_fields, fields.max_bytes);
    let values = visitor.reads_pre_encoded_values();
    // The names written so far (hashed): made at the first span with fields,
    // checked from the second on (a span's own names are unique).
    let mut written: Option<[u64; MAX_SPAN_FIELDS]> = None;
    let (mut count, mut bytes, mut dropped) = (0_usize, 0_usize, 0_u32);
    source.for_each_span(&mut |name, span| {
        // A span layer records every span it traces; these bounds want
        // some of them.
        if span.is_span_layers() && !fields.wants(name) {
            return;
        }
        if count == max_fields {
            dropped = dropped.saturating_add(u32::try_from(span.fields.len()).unwrap_or(u32::MAX));
            return;
        }
        let first = written.is_none();
        let names = written.get_or_insert([0; MAX_SPAN_FIELDS]);
        for field in &span.fields {
            if own(field.name) || (!first && names[..count].contains(&field.hash)) {
                continue;
            }
            let encoded = span.slice(field.encoded);
            if count == max_fields || bytes + encoded.len() > max_bytes {
                dropped = dropped.saturating_add(1);
                continue;
            }
            let value = if values { span.value(field) } else { AnyValue::Str("") };
            visitor.visit_pre_encoded_attribute(field.name, value, PreEncoded::new(encoded));
            if field.cut {
                dropped = dropped.saturating_add(1);
            }
            names[count] = field.hash;
            count += 1;
            bytes += encoded.len();
        }
    });
    if dropped > 0 {
        visitor.visit_dropped_attributes(dropped);
    }
}

// === impl CurrentSpans ===

/// A record logged straight to a node (`otel_*!`, `log_event`) with the
/// fields of the spans current on this thread, as a layer with span fields
/// recorded them in the default subscriber's `tracing_subscriber::Registry`
/// (none with another subscriber).
pub(crate) struct CurrentSpans<'r, R: ?Sized> {
    pub(crate) inner: &'r R,
    pub(crate) fields: &'r SpanFields,
}

/// The spans current on this thread, from the default dispatcher's registry.
struct RegistrySpans;

impl SpanSource for RegistrySpans {
    fn for_each_span(&self, f: &mut dyn FnMut(&str, &Recorded)) {
        use tracing_subscriber::registry::LookupSpan as _;
        tracing::dispatcher::get_default(|dispatch| {
            let Some(registry) = dispatch.downcast_ref::<tracing_subscriber::Registry>() else { return };
            let current = dispatch.current_span();
            let Some(span) = current.id().and_then(|id| registry.span(id)) else { return };
            for span in span.scope() {
                if let Some(recorded) = span_fields(&span.extensions()) {
                    f(span.name(), recorded);
                }
            }
        });
    }
}

/// Remembers the keys a record's own attributes use (hashed, at most
/// [`OWN_KEYS`]), passing everything on.
struct OwnKeys<'v> {
    visitor: &'v mut dyn RecordVisitor,
    keys: [u64; OWN_KEYS],
    count: usize,
}

/// The own attributes a [`CurrentSpans`] record checks span fields against
/// (an `otel_*!` record has at most 32 fields).
const OWN_KEYS: usize = 64;

fn key_hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

impl RecordVisitor for OwnKeys<'_> {
    fn reads_pre_encoded_values(&self) -> bool {
        self.visitor.reads_pre_encoded_values()
    }
    fn visit_body(&mut self, body: AnyValue<'_>) {
        self.visitor.visit_body(body);
    }
    fn visit_attribute(&mut self, key: &str, value: AnyValue<'_>) {
        if let Some(slot) = self.keys.get_mut(self.count) {
            *slot = key_hash(key);
            self.count += 1;
        }
        self.visitor.visit_attribute(key, value);
    }
    fn visit_pre_encoded_attribute(&mut self, key: &str, value: AnyValue<'_>, encoded: PreEncoded<'_>) {
        self.visitor.visit_pre_encoded_attribute(key, value, encoded);
    }
    fn visit_dropped_attributes(&mut self, count: u32) {
        self.visitor.visit_dropped_attributes(count);
    }
}

impl<R: LogRecordView + ?Sized> LogRecordView for CurrentSpans<'_, R> {
    fn time_unix_nano(&self) -> Option<u64> {
        self.inner.time_unix_nano()
    }
    fn observed_time_unix_nano(&self) -> Option<u64> {
        self.inner.observed_time_unix_nano()
    }
    fn severity(&self) -> Option<Severity> {
        self.inner.severity()
    }
    fn severity_text(&self) -> Option<&str> {
        self.inner.severity_text()
    }
    fn event_name(&self) -> Option<&str> {
        self.inner.event_name()
    }
    fn trace_context(&self) -> Option<TraceContext> {
        self.inner.trace_context()
    }
    fn dropped_attributes_count(&self) -> u32 {
        self.inner.dropped_attributes_count()
    }
    fn visit(&self, visitor: &mut dyn RecordVisitor) {
        let mut own = OwnKeys { visitor, keys: [0; OWN_KEYS], count: 0 };
        self.inner.visit(&mut own);
        let OwnKeys { visitor, keys, count } = own;
        let keys = &keys[..count];
        visit_span_fields(self.fields, &RegistrySpans, &|name| keys.contains(&key_hash(name)), visitor);
    }
    fn callsite_id(&self) -> Option<NonZeroUsize> {
        self.inner.callsite_id()
    }
    fn code_location(&self) -> Option<CodeLocation<'_>> {
        self.inner.code_location()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked() {
        assert!(SpanFields::all().with_bounds(1, 1).is_ok());
        assert_eq!(
            SpanFields::all().with_bounds(0, 10).expect_err("out of range").to_string(),
            "span fields: max_fields must be 1..=64, got 0"
        );
        assert_eq!(
            SpanFields::all().with_bounds(10, MAX_SPAN_FIELD_BYTES + 1).expect_err("out of range").to_string(),
            "span fields: max_bytes must be 1..=1048576, got 1048577"
        );
    }

    #[test]
    fn cut_values_end_with_the_marker_within_the_limit() {
        let cut = cut_to(&"é".repeat(100), 31);
        assert!(cut.len() <= 31, "{}", cut.len());
        assert!(cut.ends_with(TRUNCATION_MARKER));
        assert_eq!(&*cut_to("abc", 2), "ab");
    }
}
