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

use crate::OtlpBytes;

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

const LEN: u8 = 2;

/// One field: its number, wire type, payload (for `LEN`) and whole bytes.
struct Field<'a> {
    number: u64,
    wire: u8,
    payload: &'a [u8],
    whole: &'a [u8],
}

fn varint(buf: &mut &[u8]) -> Result<u64, Malformed> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = buf.split_first().ok_or(Malformed)?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok(value);
        }
    }
    Err(Malformed)
}

/// The fields of one message, in order.
struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let start = self.rest;
        let field = (|| {
            let key = varint(&mut self.rest)?;
            let (number, wire) = (key >> 3, (key & 7) as u8);
            if number == 0 {
                return Err(Malformed);
            }
            let payload = match wire {
                0 => {
                    varint(&mut self.rest)?;
                    &[][..]
                }
                1 | 5 => {
                    let width = if wire == 1 { 8 } else { 4 };
                    let (_, rest) = self.rest.split_at_checked(width).ok_or(Malformed)?;
                    self.rest = rest;
                    &[][..]
                }
                LEN => {
                    let len = usize::try_from(varint(&mut self.rest)?).map_err(|_| Malformed)?;
                    let (payload, rest) = self.rest.split_at_checked(len).ok_or(Malformed)?;
                    self.rest = rest;
                    payload
                }
                // Groups (3, 4) are not used by OTLP; 6 and 7 do not exist.
                _ => return Err(Malformed),
            };
            let whole = &start[..start.len() - self.rest.len()];
            Ok(Field { number, wire, payload, whole })
        })();
        if field.is_err() {
            self.rest = &[];
        }
        Some(field)
    }
}

fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { rest: buf }
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
            1 => &mut parts.head,
            3 => &mut parts.schema_url,
            // The children; prost rejects them with another wire type.
            2 if field.wire == LEN => continue,
            2 => return Err(Malformed),
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
    let mut shape = Shape::default();
    for field in fields(request) {
        let field = field?;
        if field.number != 1 {
            continue;
        }
        if field.wire != LEN {
            return Err(Malformed);
        }
        shape.containers += 1;
        container(field.payload)?;
        for scope_logs in fields(field.payload) {
            let scope_logs = scope_logs?;
            if scope_logs.number != 2 {
                continue;
            }
            shape.containers += 1;
            container(scope_logs.payload)?;
            for record in fields(scope_logs.payload) {
                let record = record?;
                if record.number == 2 {
                    shape.records += 1;
                }
            }
        }
    }
    Ok(shape)
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

/// Bytes a varint of `value` takes.
fn varint_len(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
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
            if field.number != 1 {
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
                if scope_logs.number != 2 || !self.join(Level::Scope, &scope_logs)? {
                    continue;
                }
                for record in fields(scope_logs.payload) {
                    let record = record?;
                    if record.number == 2 {
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
        let open = match level {
            Level::Resource => self.resource.as_ref(),
            Level::Scope => self.scope.as_ref(),
        };
        if !self.same(open, &parts) {
            self.close(level);
            let tag = match level {
                Level::Resource => 0x0a,
                Level::Scope => 0x12,
            };
            let opened = Some(self.open(tag, &parts));
            match level {
                Level::Resource => self.resource = opened,
                Level::Scope => self.scope = opened,
            }
        }
        Ok(true)
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
    fn open(&mut self, tag: u8, parts: &Container<'_>) -> Open {
        self.out.put_u8(tag);
        let at = self.out.len();
        self.out.put_bytes(0, self.width);
        let head = parts.head.map(|head| self.put_len_field(0x0a, head));
        let schema_url = parts.schema_url.map(|url| self.put_len_field(0x1a, url));
        Open { at, head, schema_url }
    }

    /// Writes a `LEN` field; returns the range of its payload.
    fn put_len_field(&mut self, tag: u8, payload: &[u8]) -> (usize, usize) {
        self.out.put_u8(tag);
        let mut len = payload.len() as u64;
        while len >= 0x80 {
            self.out.put_u8(len as u8 | 0x80);
            len >>= 7;
        }
        self.out.put_u8(len as u8);
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
        let mut len = (self.out.len() - at - self.width) as u64;
        let last = self.width - 1;
        for (i, byte) in self.out[at..at + self.width].iter_mut().enumerate() {
            *byte = (len & 0x7f) as u8 | if i < last { 0x80 } else { 0 };
            len >>= 7;
        }
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
    requests: VecDeque<(OtlpBytes, Shape)>,
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
        let shape = shape(request.as_bytes())?;
        self.bytes = self.bytes.saturating_add(self.writer.worst_size(request.len(), shape));
        self.records += shape.records;
        self.requests.push_back((request, shape));
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
        let (mut bytes, mut records, mut count) = (0usize, 0u64, 0usize);
        for (request, shape) in &self.requests {
            let size = self.writer.worst_size(request.len(), *shape);
            if count > 0 && (bytes.saturating_add(size) > self.max_bytes || records + shape.records > self.max_records)
            {
                break;
            }
            bytes = bytes.saturating_add(size);
            records += shape.records;
            count += 1;
        }
        let merged = if count == 1 {
            // Alone: sent as it is, without a copy.
            self.requests.pop_front().map(|(request, _)| request)?
        } else {
            self.writer.start(bytes);
            for (request, _) in self.requests.drain(..count) {
                // Checked when pushed; a failure here cannot happen, and
                // would only cut this request short.
                let _ = self.writer.push(request.as_bytes());
            }
            OtlpBytes::from_bytes(self.writer.finish())
        };
        self.bytes = self.bytes.saturating_sub(bytes);
        self.records -= records;
        Some(Batch { bytes: merged, records, requests: count })
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
    fn varint_lengths() {
        assert_eq!(varint_len(0), 1);
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
        assert_eq!(varint_len(16383), 2);
        assert_eq!(varint_len(16384), 3);
        assert_eq!(varint_len(u64::MAX), 10);
    }

    #[test]
    fn malformed_envelopes_are_errors() {
        assert_eq!(shape(&[0x0a, 0x05, 0x00]), Err(Malformed)); // truncated
        assert_eq!(shape(&[0x08, 0x01]), Err(Malformed)); // ResourceLogs as a varint
        assert_eq!(shape(&[0x0b]), Err(Malformed)); // a group
        assert_eq!(shape(&[0x00]), Err(Malformed)); // field 0
        assert_eq!(shape(&[]), Ok(Shape::default()));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod merging {
    use crate::{AnyValue, EncoderLimits, LogRecordView, OtlpResource, RecordVisitor, Severity, StatefulOtlpEncoder};
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
