//! Merging encoded requests into batches without decoding their records.
//!
//! Two `ExportLogsServiceRequest`s concatenated are already one valid
//! request (protobuf appends repeated fields), but every part would keep its
//! own copy of the resource and scope. The writer here merges instead: runs
//! of `ResourceLogs` with the same resource and schema URL become one, and
//! inside it runs of `ScopeLogs` with the same scope and schema URL become
//! one. Records are copied as they are, never decoded. A container with a
//! field this writer does not know (or a repeated singular field) is copied
//! whole, unmerged, so nothing is lost or reinterpreted.
//!
//! Lengths of the containers the writer opens are padded varints of a fixed
//! width (valid protobuf), patched when the container closes.

use bytes::{BufMut, BytesMut};

/// The envelope of a request is not valid protobuf of the shape it should
/// have; its records cannot be counted or merged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Malformed;

/// What one request holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Shape {
    /// Log records.
    pub(crate) records: u64,
    /// `ResourceLogs` and `ScopeLogs` containers.
    pub(crate) containers: u64,
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

/// Checks the envelope of `request` and counts what it holds.
pub(crate) fn shape(request: &[u8]) -> Result<Shape, Malformed> {
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
pub(crate) struct BatchWriter {
    out: BytesMut,
    /// The width of a length placeholder, from the largest batch.
    width: usize,
    resource: Option<Open>,
    scope: Option<Open>,
}

/// Bytes a varint of `value` takes.
pub(crate) fn varint_len(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

impl BatchWriter {
    /// A writer of batches of at most `max_bytes`.
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self { out: BytesMut::new(), width: varint_len(max_bytes as u64), resource: None, scope: None }
    }

    /// How many bytes merging a request of `len` bytes holding `shape` can
    /// add at most: each container's length may take `width` bytes where it
    /// took one.
    pub(crate) fn worst_size(&self, len: usize, shape: Shape) -> usize {
        len.saturating_add((shape.containers as usize).saturating_mul(self.width.saturating_sub(1)))
    }

    /// Starts a batch of about `capacity` bytes.
    pub(crate) fn start(&mut self, capacity: usize) {
        self.out.reserve(capacity);
    }

    /// Appends the request (its envelope was checked by [`shape`]).
    pub(crate) fn push(&mut self, request: &[u8]) -> Result<(), Malformed> {
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
    pub(crate) fn finish(&mut self) -> bytes::Bytes {
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
    use opentelemetry_proto::tonic::{collector::logs::v1::ExportLogsServiceRequest, common::v1::any_value};
    use proptest::prelude::*;
    use prost::Message;
    use selftrace::{
        AnyValue, EncoderLimits, LogRecordView, OtlpResource, RecordVisitor, Severity, StatefulOtlpEncoder,
    };

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
