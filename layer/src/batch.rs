//! Merging encoded requests into batches without decoding their records.
//!
//! Two `ExportLogsServiceRequest`s concatenated are already one valid
//! request (protobuf appends repeated fields), but every part would keep its
//! own copy of the resource and scope. A [`Batcher`] merges instead: runs of
//! `ResourceLogs` with the same resource and schema URL become one, and
//! inside it runs of `ScopeLogs` with the same scope and schema URL become
//! one. Records are copied as they are, never decoded. A container with a
//! field the merger does not know (or a repeated singular field) is copied
//! whole, unmerged, so nothing is lost or reinterpreted.
//!
//! Lengths of the containers the merger opens are padded varints of a fixed
//! width (valid protobuf), patched when the container closes; the width comes
//! from the largest batch, so a batch never exceeds its byte bound (a single
//! request larger than the bound goes out alone, unchanged).
//!
//! The Internal Telemetry Receiver (`selftrace-itr`) and the OTLP exporter
//! (`selftrace-bridge`) both batch with it.
//!
//! # Examples
//!
//! ```
//! use selftrace::{Destination, OtlpBytesChannel, OtlpTracingLayer, batch::Batcher};
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! // Three one-record requests, as the layer sends them.
//! let channel = OtlpBytesChannel::new(8);
//! let layer = OtlpTracingLayer::new(Destination::Channel(channel.sender()));
//! tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
//!     for i in 0..3_i64 {
//!         tracing::info!(target: "db", i);
//!     }
//! });
//!
//! let mut batcher = Batcher::new(1 << 20, 512);
//! for request in channel.receiver().drain() {
//!     batcher.push(request).unwrap();
//! }
//! let batch = batcher.next_batch(true).unwrap();
//! // One request with one ResourceLogs and one ScopeLogs holding the 3 records.
//! assert_eq!((batch.records, batch.requests), (3, 3));
//! assert!(batcher.is_empty());
//! ```

use std::collections::VecDeque;

use bytes::{BufMut, BytesMut};

use crate::{
    encoder::OtlpBytes,
    wire::{
        self, LEN,
        otlp::{request, resource_logs, scope_logs},
        put_varint, tag, varint_len, write_padded_varint,
    },
};

/// The envelope of a request is not valid protobuf of the shape an
/// `ExportLogsServiceRequest` has; its records cannot be counted or merged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed;

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("malformed ExportLogsServiceRequest envelope")
    }
}

impl std::error::Error for Malformed {}

/// What one request holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    /// Log records.
    pub records: u64,
    /// `ResourceLogs` and `ScopeLogs` containers.
    pub containers: u64,
}

// The two containers the merger reads number their fields alike: the head
// (the resource, the scope), the children, the schema URL.
const HEAD: u32 = resource_logs::RESOURCE;
const CHILDREN: u32 = resource_logs::SCOPE_LOGS;
const SCHEMA_URL: u32 = resource_logs::SCHEMA_URL;
const _: () =
    assert!(HEAD == scope_logs::SCOPE && CHILDREN == scope_logs::LOG_RECORDS && SCHEMA_URL == scope_logs::SCHEMA_URL);

/// One field: its number, wire type, payload (for `LEN`) and whole bytes.
struct Field<'a> {
    number: u32,
    wire: u8,
    payload: &'a [u8],
    whole: &'a [u8],
}

/// The fields of one message, in order (prost's rejections are
/// [`Malformed`]).
fn fields(buf: &[u8]) -> impl Iterator<Item = Result<Field<'_>, Malformed>> {
    wire::Fields::new(buf).map(|field| {
        let field = field.map_err(|_| Malformed)?;
        let payload = match field.value {
            wire::Value::Len(message) => message.bytes,
            _ => &[],
        };
        Ok(Field { number: field.number, wire: field.wire_type(), payload, whole: field.raw })
    })
}

/// The parts of a container (`ResourceLogs` or `ScopeLogs`): field 1 is the
/// resource or scope, 2 the repeated children, 3 the schema URL.
struct Container<'a> {
    head: Option<&'a [u8]>,
    schema_url: Option<&'a [u8]>,
    /// Whether it has a field other than 1, 2 and 3, or 1 or 3 twice: it is
    /// copied whole.
    unusual: bool,
}

fn container(buf: &[u8]) -> Result<Container<'_>, Malformed> {
    let mut parts = Container { head: None, schema_url: None, unusual: false };
    for field in fields(buf) {
        let field = field?;
        let slot = match field.number {
            HEAD => &mut parts.head,
            SCHEMA_URL => &mut parts.schema_url,
            // The children; prost rejects them with another wire type.
            CHILDREN if field.wire == LEN => continue,
            CHILDREN => return Err(Malformed),
            _ => {
                parts.unusual = true;
                continue;
            }
        };
        if field.wire != LEN || slot.is_some() {
            // A wrong wire type on a known field is what prost rejects.
            if field.wire != LEN {
                return Err(Malformed);
            }
            parts.unusual = true;
        }
        *slot = Some(field.payload);
    }
    Ok(parts)
}

/// Checks the envelope of `request` (down to the records, which are not
/// read) and counts what it holds.
///
/// # Errors
///
/// [`Malformed`] where prost would reject the envelope: truncation, a wrong
/// wire type on a known field, a group.
pub fn shape(request: &[u8]) -> Result<Shape, Malformed> {
    analyze(request).map(|(shape, _)| shape)
}

/// Where the parts of a plain request are, as ranges of it: one
/// `ResourceLogs` holding one `ScopeLogs` whose records are contiguous, no
/// field the merger does not know (what the encoder writes for one event or
/// one node's run). The writer merges such a request without reading it
/// again.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Plan {
    resource: Option<std::ops::Range<usize>>,
    resource_schema: Option<std::ops::Range<usize>>,
    scope: Option<std::ops::Range<usize>>,
    scope_schema: Option<std::ops::Range<usize>>,
    records: std::ops::Range<usize>,
}

/// The range of `part` (a subslice) in `whole`.
fn range_in(whole: &[u8], part: &[u8]) -> std::ops::Range<usize> {
    let start = part.as_ptr() as usize - whole.as_ptr() as usize;
    start..start + part.len()
}

/// One pass over the envelope: its shape (checked as [`shape`] says), and
/// its [`Plan`] when it is plain.
fn analyze(request: &[u8]) -> Result<(Shape, Option<Plan>), Malformed> {
    let mut shape = Shape::default();
    let mut plan = None;
    // Fields other than ResourceLogs at the top, and how many of those.
    let (mut other, mut resource_logs) = (false, 0);
    for field in fields(request) {
        let field = field?;
        if field.number != request::RESOURCE_LOGS {
            other = true;
            continue;
        }
        if field.wire != LEN {
            return Err(Malformed);
        }
        shape.containers += 1;
        resource_logs += 1;
        let (mut head, mut schema_url, mut unusual) = (None, None, false);
        let (mut scopes, mut scope_plan) = (0, None);
        for part in fields(field.payload) {
            let part = part?;
            match (part.number, part.wire) {
                (resource_logs::SCOPE_LOGS, LEN) => {
                    shape.containers += 1;
                    scopes += 1;
                    scope_plan = scope_logs(request, part.payload, &mut shape)?;
                }
                (HEAD | SCHEMA_URL, LEN) => {
                    let slot = if part.number == HEAD { &mut head } else { &mut schema_url };
                    unusual |= slot.is_some();
                    *slot = Some(part.payload);
                }
                (HEAD..=SCHEMA_URL, _) => return Err(Malformed),
                _ => unusual = true,
            }
        }
        if !unusual
            && scopes == 1
            && let Some((scope, scope_schema, records)) = scope_plan
        {
            plan = Some(Plan {
                resource: head.map(|h| range_in(request, h)),
                resource_schema: schema_url.map(|u| range_in(request, u)),
                scope,
                scope_schema,
                records,
            });
        }
    }
    Ok((shape, plan.filter(|_| !other && resource_logs == 1)))
}

type ScopePlan = (Option<std::ops::Range<usize>>, Option<std::ops::Range<usize>>, std::ops::Range<usize>);

/// One pass over a `ScopeLogs`: counts its records into `shape`; its head,
/// schema URL and records range when it is plain.
fn scope_logs(request: &[u8], payload: &[u8], shape: &mut Shape) -> Result<Option<ScopePlan>, Malformed> {
    let (mut head, mut schema_url, mut unusual) = (None, None, false);
    // The records' range; whether another field came after a record, and
    // then a record again (the records are not contiguous).
    let mut records: Option<std::ops::Range<usize>> = None;
    let (mut interrupted, mut gap) = (false, false);
    for part in fields(payload) {
        let part = part?;
        match (part.number, part.wire) {
            (scope_logs::LOG_RECORDS, LEN) => {
                shape.records += 1;
                gap |= interrupted;
                let at = range_in(request, part.whole);
                records = Some(records.map_or(at.clone(), |r| r.start..at.end));
                continue;
            }
            (HEAD | SCHEMA_URL, LEN) => {
                let slot = if part.number == HEAD { &mut head } else { &mut schema_url };
                unusual |= slot.is_some();
                *slot = Some(part.payload);
            }
            (HEAD..=SCHEMA_URL, _) => return Err(Malformed),
            _ => unusual = true,
        }
        interrupted |= records.is_some();
    }
    if unusual || gap {
        return Ok(None);
    }
    let end = range_in(request, payload).end;
    let records = records.unwrap_or(end..end);
    Ok(Some((head.map(|h| range_in(request, h)), schema_url.map(|u| range_in(request, u)), records)))
}

/// An open container: where its length goes, and its key.
struct Open {
    /// Where the padded length placeholder starts.
    at: usize,
    /// The head's payload and the schema URL's, as ranges of the output.
    head: Option<(usize, usize)>,
    schema_url: Option<(usize, usize)>,
}

/// The two containers the writer merges.
#[derive(Clone, Copy)]
enum Level {
    /// `ResourceLogs`, field 1 of the request.
    Resource,
    /// `ScopeLogs`, field 2 of `ResourceLogs`.
    Scope,
}

/// Writes one merged request from several.
struct BatchWriter {
    out: BytesMut,
    /// The width of a length placeholder, from the largest batch.
    width: usize,
    resource: Option<Open>,
    scope: Option<Open>,
}

impl BatchWriter {
    /// A writer of batches of at most `max_bytes`.
    fn new(max_bytes: usize) -> Self {
        Self { out: BytesMut::new(), width: varint_len(max_bytes as u64), resource: None, scope: None }
    }

    /// How many bytes merging a request of `len` bytes holding `shape` can
    /// add at most: each container's length may take `width` bytes where it
    /// took one.
    fn worst_size(&self, len: usize, shape: Shape) -> usize {
        len.saturating_add((shape.containers as usize).saturating_mul(self.width.saturating_sub(1)))
    }

    /// Starts a batch of about `capacity` bytes.
    fn start(&mut self, capacity: usize) {
        self.out.reserve(capacity);
    }

    /// Appends the request (its envelope was checked by [`shape`]).
    fn push(&mut self, request: &[u8]) -> Result<(), Malformed> {
        for field in fields(request) {
            let field = field?;
            if field.number != request::RESOURCE_LOGS {
                // Not a ResourceLogs: kept, at the top level.
                self.close_resource();
                self.out.put_slice(field.whole);
                continue;
            }
            if !self.join(Level::Resource, &field)? {
                continue;
            }
            for scope_logs in fields(field.payload) {
                let scope_logs = scope_logs?;
                if scope_logs.number != resource_logs::SCOPE_LOGS || !self.join(Level::Scope, &scope_logs)? {
                    continue;
                }
                for record in fields(scope_logs.payload) {
                    let record = record?;
                    if record.number == scope_logs::LOG_RECORDS {
                        self.out.put_slice(record.whole);
                    }
                }
            }
        }
        Ok(())
    }

    /// Ends the batch and gives its bytes.
    fn finish(&mut self) -> bytes::Bytes {
        self.close_resource();
        self.out.split().freeze()
    }

    /// Makes the open container at `level` the one `field` merges into, or
    /// copies `field` whole when it is unusual; whether its children are to
    /// be written.
    fn join(&mut self, level: Level, field: &Field<'_>) -> Result<bool, Malformed> {
        let parts = container(field.payload)?;
        if parts.unusual {
            self.close(level);
            self.out.put_slice(field.whole);
            return Ok(false);
        }
        self.enter(level, &parts);
        Ok(true)
    }

    /// Appends a plain request by its plan: no field is read again.
    fn push_plan(&mut self, request: &[u8], plan: &Plan) {
        let part = |range: &Option<std::ops::Range<usize>>| range.clone().map(|r| &request[r]);
        let resource =
            Container { head: part(&plan.resource), schema_url: part(&plan.resource_schema), unusual: false };
        self.enter(Level::Resource, &resource);
        let scope = Container { head: part(&plan.scope), schema_url: part(&plan.scope_schema), unusual: false };
        self.enter(Level::Scope, &scope);
        self.out.put_slice(&request[plan.records.clone()]);
    }

    /// Makes the open container at `level` one with the head and schema URL
    /// of `parts`, opening a new one unless the open one has them.
    fn enter(&mut self, level: Level, parts: &Container<'_>) {
        let open = match level {
            Level::Resource => self.resource.as_ref(),
            Level::Scope => self.scope.as_ref(),
        };
        if !self.same(open, parts) {
            self.close(level);
            let tag = match level {
                Level::Resource => tag(request::RESOURCE_LOGS, LEN),
                Level::Scope => tag(resource_logs::SCOPE_LOGS, LEN),
            };
            let opened = Some(self.open(tag, parts));
            match level {
                Level::Resource => self.resource = opened,
                Level::Scope => self.scope = opened,
            }
        }
    }

    fn close(&mut self, level: Level) {
        match level {
            Level::Resource => self.close_resource(),
            Level::Scope => self.close_scope(),
        }
    }

    /// Whether `open` has the head and schema URL of `parts`.
    fn same(&self, open: Option<&Open>, parts: &Container<'_>) -> bool {
        let range = |r: Option<(usize, usize)>| r.map(|(start, end)| &self.out[start..end]);
        open.is_some_and(|open| range(open.head) == parts.head && range(open.schema_url) == parts.schema_url)
    }

    /// Opens a container with field `tag`: its placeholder, head and schema
    /// URL (written first; protobuf fields may come in any order).
    fn open(&mut self, key: u8, parts: &Container<'_>) -> Open {
        self.out.put_u8(key);
        let at = self.out.len();
        self.out.put_bytes(0, self.width);
        let head = parts.head.map(|head| self.put_len_field(tag(HEAD, LEN), head));
        let schema_url = parts.schema_url.map(|url| self.put_len_field(tag(SCHEMA_URL, LEN), url));
        Open { at, head, schema_url }
    }

    /// Writes a `LEN` field; returns the range of its payload.
    fn put_len_field(&mut self, tag: u8, payload: &[u8]) -> (usize, usize) {
        self.out.put_u8(tag);
        put_varint(&mut self.out, payload.len() as u64);
        let start = self.out.len();
        self.out.put_slice(payload);
        (start, self.out.len())
    }

    fn close_scope(&mut self) {
        if let Some(open) = self.scope.take() {
            self.patch(open.at);
        }
    }

    fn close_resource(&mut self) {
        self.close_scope();
        if let Some(open) = self.resource.take() {
            self.patch(open.at);
        }
    }

    /// Writes the length of the container whose placeholder is at `at`.
    fn patch(&mut self, at: usize) {
        let len = (self.out.len() - at - self.width) as u64;
        write_padded_varint(&mut self.out[at..at + self.width], len);
    }
}

// === impl Batcher ===

/// Requests waiting to be merged, and the merger.
///
/// [`push`](Self::push) checks a request's envelope and queues it (nothing
/// is copied); [`next_batch`](Self::next_batch) merges the oldest queued
/// requests into one of at most `max_bytes` and `max_records` (a single
/// request over either bound goes out alone, as it is). Memory: the queued
/// requests (shared `Bytes`, not copies) plus the batch being written.
pub struct Batcher {
    requests: VecDeque<(OtlpBytes, Shape, Option<Plan>)>,
    /// Their worst merged size.
    bytes: usize,
    records: u64,
    max_bytes: usize,
    max_records: u64,
    writer: BatchWriter,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("requests", &self.requests.len())
            .field("records", &self.records)
            .field("bytes", &self.bytes)
            .field("max_bytes", &self.max_bytes)
            .field("max_records", &self.max_records)
            .finish()
    }
}

/// One merged request and what it holds.
#[derive(Debug)]
pub struct Batch {
    /// The merged `ExportLogsServiceRequest`.
    pub bytes: OtlpBytes,
    /// Log records in it.
    pub records: u64,
    /// Requests merged into it.
    pub requests: usize,
    /// The sum of those requests' lengths (what a producer handed over,
    /// for accounting in bytes).
    pub request_bytes: usize,
}

impl Batcher {
    /// Batches of at most `max_bytes` (at least 1) and `max_records` (at
    /// least 1).
    pub fn new(max_bytes: usize, max_records: u64) -> Self {
        let max_bytes = max_bytes.max(1);
        Self {
            requests: VecDeque::new(),
            bytes: 0,
            records: 0,
            max_bytes,
            max_records: max_records.max(1),
            writer: BatchWriter::new(max_bytes),
        }
    }

    /// Queues `request`; returns its shape.
    ///
    /// # Errors
    ///
    /// [`Malformed`] (see [`shape`]): the request is not queued.
    pub fn push(&mut self, request: OtlpBytes) -> Result<Shape, Malformed> {
        let (shape, plan) = analyze(request.as_bytes())?;
        self.bytes = self.bytes.saturating_add(self.writer.worst_size(request.len(), shape));
        self.records += shape.records;
        self.requests.push_back((request, shape, plan));
        Ok(shape)
    }

    /// Whether a full batch is queued (by bytes or by records).
    pub fn is_full(&self) -> bool {
        self.bytes >= self.max_bytes || self.records >= self.max_records
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// Records queued.
    pub fn pending_records(&self) -> u64 {
        self.records
    }

    /// The worst merged size of what is queued, in bytes.
    pub fn pending_bytes(&self) -> usize {
        self.bytes
    }

    /// Merges the oldest queued requests into one batch, if a full batch is
    /// queued, or if anything is and `all`.
    pub fn next_batch(&mut self, all: bool) -> Option<Batch> {
        if self.requests.is_empty() || !(all || self.is_full()) {
            return None;
        }
        let (mut bytes, mut records, mut count, mut request_bytes) = (0usize, 0u64, 0usize, 0usize);
        for (request, shape, _) in &self.requests {
            let size = self.writer.worst_size(request.len(), *shape);
            if count > 0 && (bytes.saturating_add(size) > self.max_bytes || records + shape.records > self.max_records)
            {
                break;
            }
            bytes = bytes.saturating_add(size);
            records += shape.records;
            count += 1;
            request_bytes += request.len();
        }
        let merged = if count == 1 {
            // Alone: sent as it is, without a copy.
            self.requests.pop_front().map(|(request, ..)| request)?
        } else {
            self.writer.start(bytes);
            for (request, _, plan) in self.requests.drain(..count) {
                match plan {
                    Some(plan) => self.writer.push_plan(request.as_bytes(), &plan),
                    // Checked when pushed; a failure here cannot happen, and
                    // would only cut this request short.
                    None => {
                        let _ = self.writer.push(request.as_bytes());
                    }
                }
            }
            OtlpBytes::from_bytes(self.writer.finish())
        };
        self.bytes = self.bytes.saturating_sub(bytes);
        self.records -= records;
        Some(Batch { bytes: merged, records, requests: count, request_bytes })
    }

    /// Drops everything queued; returns how many records that was.
    pub fn clear(&mut self) -> u64 {
        let records = self.records;
        self.requests.clear();
        self.bytes = 0;
        self.records = 0;
        records
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn malformed_envelopes_are_errors() {
        assert_eq!(shape(&[0x0a, 0x05, 0x00]), Err(Malformed)); // truncated
        assert_eq!(shape(&[0x08, 0x01]), Err(Malformed)); // ResourceLogs as a varint
        assert_eq!(shape(&[0x0b]), Err(Malformed)); // a group
        assert_eq!(shape(&[0x00]), Err(Malformed)); // field 0
        assert_eq!(shape(&[]), Ok(Shape::default()));
        // A ScopeLogs whose record is a varint, and whose scope is.
        assert_eq!(shape(&[0x0a, 0x04, 0x12, 0x02, 0x10, 0x01]), Err(Malformed));
        assert_eq!(shape(&[0x0a, 0x04, 0x12, 0x02, 0x08, 0x01]), Err(Malformed));
    }

    /// A `LEN` field.
    fn len_field(number: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![(number << 3) | 2];
        let mut len = payload.len();
        while len >= 0x80 {
            out.push(len as u8 | 0x80);
            len >>= 7;
        }
        out.push(len as u8);
        out.extend_from_slice(payload);
        out
    }

    /// A `ScopeLogs`: scope `scope`, `records` (each one byte of payload),
    /// an unknown field (15) before the record at `interrupt`, a schema URL
    /// before the record at `schema` (after them all past the last).
    fn scope_logs(scope: u8, records: &[u8], interrupt: Option<usize>, schema: Option<usize>) -> Vec<u8> {
        let mut out = len_field(1, &len_field(1, &[b's', scope]));
        for (i, record) in records.iter().enumerate() {
            if interrupt == Some(i) {
                out.extend([0x78, 0x01]);
            }
            if schema == Some(i) {
                out.extend(len_field(3, b"https://schema"));
            }
            out.extend(len_field(2, &[0x08, *record]));
        }
        if schema.is_some_and(|i| i >= records.len()) {
            out.extend(len_field(3, b"https://schema"));
        }
        out
    }

    type Scope = (u8, Vec<u8>, Option<usize>, Option<usize>);

    fn requests() -> impl proptest::strategy::Strategy<Value = Vec<(u8, Vec<Scope>, bool)>> {
        use proptest::prelude::*;
        let scope = (
            0..2u8,
            prop::collection::vec(any::<u8>(), 0..4),
            prop::option::of(0..4usize),
            prop::option::of(0..4usize),
        );
        prop::collection::vec((0..2u8, prop::collection::vec(scope, 0..3), any::<bool>()), 1..10)
    }

    proptest::proptest! {
        /// The plan (no second read) and the generic writer merge every
        /// request, plain or not, into the same bytes; the plan is only
        /// taken for plain requests.
        #[test]
        fn plans_merge_as_the_generic_writer_does(requests in requests()) {
            let encoded: Vec<Vec<u8>> = requests
                .iter()
                .map(|(resource, scopes, extra)| {
                    let mut rl = len_field(1, &[0x0a, 0x02, b'r', *resource]);
                    for (scope, records, interrupt, schema) in scopes {
                        rl.extend(len_field(2, &scope_logs(*scope, records, *interrupt, *schema)));
                    }
                    let mut request = len_field(1, &rl);
                    if *extra {
                        request.extend([0x10, 0x01]); // an unknown top-level field
                    }
                    request
                })
                .collect();
            let mut generic = BatchWriter::new(1 << 20);
            let mut batcher = Batcher::new(1 << 20, u64::MAX);
            for ((_, scopes, extra), request) in requests.iter().zip(&encoded) {
                let (shape, plan) = analyze(request).unwrap();
                let plain = !extra
                    && scopes.len() == 1
                    // An unknown field (written only before an existing
                    // record) makes its ScopeLogs unusual: copied whole.
                    && scopes[0].2.is_none_or(|i| i >= scopes[0].1.len())
                    // A schema URL between two records: not contiguous.
                    && scopes[0].3.is_none_or(|i| i == 0 || i >= scopes[0].1.len());
                proptest::prop_assert_eq!(plan.is_some(), plain, "{:?}", request);
                proptest::prop_assert_eq!(shape.records, scopes.iter().map(|s| s.1.len() as u64).sum::<u64>());
                generic.push(request).unwrap();
                batcher.push(OtlpBytes::from_bytes(bytes::Bytes::from(request.clone()))).unwrap();
            }
            let expected = generic.finish();
            let batch = batcher.next_batch(true).unwrap();
            proptest::prop_assert_eq!(batch.requests, encoded.len());
            if batch.requests > 1 {
                // (A single request goes out as it is.)
                proptest::prop_assert_eq!(batch.bytes.into_bytes(), expected);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod merging {
    use crate::{
        EncoderLimits,
        encoder::{OtlpResource, StatefulOtlpEncoder},
        view::{AnyValue, LogRecordView, RecordVisitor, Severity},
    };
    use opentelemetry_proto::tonic::{collector::logs::v1::ExportLogsServiceRequest, common::v1::any_value};
    use proptest::prelude::*;
    use prost::Message;

    use super::*;

    struct Rec(i64);

    impl LogRecordView for Rec {
        fn time_unix_nano(&self) -> Option<u64> {
            Some(1)
        }
        fn observed_time_unix_nano(&self) -> Option<u64> {
            Some(2)
        }
        fn severity(&self) -> Option<Severity> {
            Severity::from_number(9)
        }
        fn event_name(&self) -> Option<&str> {
            Some("e")
        }
        fn visit(&self, visitor: &mut dyn RecordVisitor) {
            visitor.visit_body(AnyValue::Str("body"));
            visitor.visit_attribute("seq", AnyValue::Int(self.0));
        }
    }

    /// (service, scope, seq) of every record.
    fn flatten(bytes: &[u8]) -> Vec<(String, String, i64)> {
        let request = ExportLogsServiceRequest::decode(bytes).unwrap();
        let mut out = Vec::new();
        for rl in request.resource_logs {
            let service = rl
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    any_value::Value::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for sl in rl.scope_logs {
                let scope = sl.scope.map(|s| s.name).unwrap_or_default();
                for record in sl.log_records {
                    let seq = match record.attributes[0].value.as_ref().unwrap().value.as_ref().unwrap() {
                        any_value::Value::IntValue(i) => *i,
                        other => panic!("{other:?}"),
                    };
                    out.push((service.clone(), scope.clone(), seq));
                }
            }
        }
        out
    }

    /// Requests of `(resource, [(scope, records)])`.
    fn requests() -> impl Strategy<Value = Vec<(u8, Vec<(u8, u8)>)>> {
        prop::collection::vec((0..2u8, prop::collection::vec((0..3u8, 1..4u8), 1..4)), 1..12)
    }

    proptest! {
        #[test]
        fn merged_batches_hold_the_same_records_in_the_same_order(requests in requests(), unusual in any::<bool>()) {
            let mut seq = 0;
            let mut encoded = Vec::new();
            for (resource, groups) in &requests {
                let resource = OtlpResource::builder().with_attribute("service.name", format!("svc{resource}")).build();
                let mut encoder = StatefulOtlpEncoder::with_limits(EncoderLimits::default(), resource);
                for (scope, records) in groups {
                    for _ in 0..*records {
                        encoder.encode_log_record(&format!("scope{scope}"), &Rec(seq)).unwrap();
                        seq += 1;
                    }
                }
                encoded.push(encoder.flush().into_bytes().to_vec());
            }
            if unusual {
                // A ResourceLogs with a field this writer does not know
                // (15 = 1): copied whole, after the others.
                encoded.push(vec![0x0a, 0x02, 0x78, 0x01]);
            }
            let expected: Vec<_> = encoded.iter().flat_map(|r| flatten(r)).collect();
            let mut writer = BatchWriter::new(1 << 20);
            let mut worst = 0;
            for request in &encoded {
                let shape = shape(request).unwrap();
                worst += writer.worst_size(request.len(), shape);
                writer.push(request).unwrap();
            }
            let merged = writer.finish();
            prop_assert!(merged.len() <= worst, "{} > {}", merged.len(), worst);
            prop_assert_eq!(&flatten(&merged), &expected);
            let records: u64 = encoded.iter().map(|r| shape(r).unwrap().records).sum();
            prop_assert_eq!(shape(&merged).unwrap().records, records);
            // Runs of one resource became one ResourceLogs.
            let runs = 1 + requests.windows(2).filter(|w| w[0].0 != w[1].0).count() + usize::from(unusual);
            let decoded = ExportLogsServiceRequest::decode(&merged[..]).unwrap();
            prop_assert_eq!(decoded.resource_logs.len(), runs);
            // Runs of one node (scope) within a resource became one ScopeLogs.
            let scope_runs = 1 + expected.windows(2).filter(|w| (&w[0].0, &w[0].1) != (&w[1].0, &w[1].1)).count();
            let scope_logs: usize = decoded.resource_logs.iter().map(|rl| rl.scope_logs.len()).sum();
            prop_assert_eq!(scope_logs, scope_runs);
        }
    }
}
