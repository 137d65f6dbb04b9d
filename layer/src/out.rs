//! The encoder's output as data: the bounded buffer a request is written
//! into ([`Out`]) and the writer of one record's fields ([`FieldWriter`]).
//! They are defined here, below the views, so that a view can name the
//! writer (`LogRecordView::visit_encoder` hands it a record's fields without
//! a dynamic call per field); how they write is the encoder's
//! (`encoder::writer`, and `FieldWriter`'s `RecordVisitor` impl).

/// The buffer plus the two bounds every write is checked against.
#[derive(Debug)]
pub(crate) struct Out {
    /// Never reallocates while a request is encoded: every write is checked
    /// against `request_end`, which is at most its capacity less the
    /// writer's slack.
    pub(crate) buf: Vec<u8>,
    /// Writes may not end past this index (the request capacity).
    pub(crate) request_end: usize,
    /// Writes may not end past this index (the current record's limit).
    pub(crate) record_end: usize,
    /// `min(request_end, record_end)`: the one bound the fast path checks.
    pub(crate) end: usize,
    /// Placeholder width for lengths inside a record.
    pub(crate) record_width: usize,
}

/// Writes the body and attributes a view visits, degrading values that do
/// not fit and remembering a request overflow.
#[allow(missing_debug_implementations)]
pub struct FieldWriter<'o> {
    pub(crate) out: &'o mut Out,
    pub(crate) max_value: usize,
    /// The tag of an attribute: `LogRecord`'s, or `Span`'s.
    pub(crate) attributes: u8,
    pub(crate) dropped: u32,
    pub(crate) abort: bool,
}
