//! Records through `StatefulOtlpEncoder` decode with `opentelemetry-proto`'s
//! prost types to the same values; limits and rollback at their boundaries.

use selftrace_test_support::record as support;

use proptest::prelude::*;
use selftrace::{
    EncoderLimits,
    encoder::{EncodeError, OtlpResource, StatefulOtlpEncoder, TRUNCATION_MARKER},
    view::{AnyValue, LogRecordView, RecordVisitor, Severity},
};
use support::{Record, Value, decode, record_strategy};

fn record(scope: &str, body: &str) -> Record {
    Record {
        scope: scope.into(),
        time: Some(1_700_000_000_123_456_789),
        observed: Some(1_700_000_000_123_456_790),
        severity: Some(9),
        severity_text: Some("INFO".into()),
        event_name: Some("test.event".into()),
        body: Some(Value::Str(body.into())),
        attributes: vec![("k".into(), Value::Int(1))],
        ..Record::default()
    }
}

fn encode_all(encoder: &mut StatefulOtlpEncoder, records: &[Record]) {
    for r in records {
        encoder.encode_log_record(&r.scope, r).expect("record fits");
    }
}

// === round trip ===

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_records_round_trip_through_prost(records in prop::collection::vec(record_strategy(), 1..12)) {
        let mut encoder = StatefulOtlpEncoder::new();
        encode_all(&mut encoder, &records);
        let bytes = encoder.flush();
        let decoded = decode(bytes.as_bytes());

        prop_assert_eq!(decoded.resource_logs, 1);
        // Consecutive records of one scope share a ScopeLogs.
        let runs = 1 + records.windows(2).filter(|w| w[0].scope != w[1].scope).count();
        prop_assert_eq!(decoded.scope_logs, runs);
        prop_assert_eq!(decoded.records, records);
        prop_assert!(encoder.is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn consecutive_requests_from_one_encoder_hold_exactly_their_records(
        batches in prop::collection::vec(prop::collection::vec(record_strategy(), 0..5), 1..8),
    ) {
        // The encoder keeps the last envelope between requests; no record or
        // scope of an earlier request may leak into a later one.
        let mut encoder = StatefulOtlpEncoder::new();
        for batch in &batches {
            encode_all(&mut encoder, batch);
            let bytes = encoder.flush();
            prop_assert_eq!(bytes.is_empty(), batch.is_empty());
            if !batch.is_empty() {
                let decoded = decode(bytes.as_bytes());
                let runs = 1 + batch.windows(2).filter(|w| w[0].scope != w[1].scope).count();
                prop_assert_eq!(decoded.scope_logs, runs);
                prop_assert_eq!(&decoded.records, batch);
            }
        }
    }
}

#[test]
fn the_encoder_is_reusable_after_flush() {
    let mut encoder = StatefulOtlpEncoder::new();
    for round in 0..3 {
        let records: Vec<_> = (0..5).map(|i| record("s", &format!("round {round} record {i}"))).collect();
        encode_all(&mut encoder, &records);
        assert_eq!(decode(encoder.flush().as_bytes()).records, records);
    }
    assert!(encoder.flush().is_empty(), "flushing an empty encoder gives empty bytes");
}

#[test]
fn the_resource_is_written_into_every_request() {
    let resource =
        OtlpResource::builder().with_attribute("service.name", "engine").with_attribute("pid", 42_i64).build();
    let mut encoder = StatefulOtlpEncoder::with_limits(EncoderLimits::default(), resource);
    for _ in 0..2 {
        encode_all(&mut encoder, &[record("s", "x")]);
        let decoded = decode(encoder.flush().as_bytes());
        assert_eq!(
            decoded.resource,
            vec![("service.name".to_owned(), Value::Str("engine".into())), ("pid".to_owned(), Value::Int(42))]
        );
    }
}

// === boundaries ===

#[test]
fn strings_of_127_and_128_bytes_round_trip() {
    for len in [126, 127, 128, 129, 16_383, 16_384] {
        let limits = EncoderLimits::new(256 * 1024, 60_000, 60_000).expect("valid limits");
        let mut encoder = StatefulOtlpEncoder::with_limits(limits, OtlpResource::default());
        let mut r = record("s", &"x".repeat(len));
        r.attributes = vec![("y".repeat(len), Value::Str("z".repeat(len)))];
        encode_all(&mut encoder, std::slice::from_ref(&r));
        assert_eq!(decode(encoder.flush().as_bytes()).records, vec![r], "length {len}");
    }
}

/// A record with only a string body, sized to encode to exactly `len` bytes.
fn body_only(len: usize) -> Record {
    // body field: tag(1) + len varint + [tag(1) + len varint + s]
    let mut s = len.saturating_sub(4);
    loop {
        let inner = 1 + varint_len(s) + s;
        let total = 1 + varint_len(inner) + inner;
        if total == len {
            break;
        }
        s -= 1;
    }
    Record { scope: "s".into(), body: Some(Value::Str("b".repeat(s))), ..Record::default() }
}

fn varint_len(v: usize) -> usize {
    let mut n = 1;
    let mut v = v >> 7;
    while v > 0 {
        n += 1;
        v >>= 7;
    }
    n
}

#[test]
fn a_record_of_exactly_the_limit_is_kept_whole_and_one_byte_more_is_cut() {
    // 16383 (the default limit) fits a 2-byte placeholder; the record's own
    // bytes are what the limit counts.
    let limits = EncoderLimits::new(64 * 1024, 16_383, 64 * 1024).expect("valid limits");
    let mut encoder = StatefulOtlpEncoder::with_limits(limits, OtlpResource::default());

    let at_limit = body_only(16_383);
    assert_eq!(encoder.encode_log_record("s", &at_limit), Ok(0));
    let decoded = decode(encoder.flush().as_bytes());
    assert_eq!(decoded.records, vec![at_limit]);

    let over = body_only(16_384);
    assert_eq!(encoder.encode_log_record("s", &over), Ok(1), "one value cut");
    let decoded = decode(encoder.flush().as_bytes());
    let Some(Value::Str(body)) = &decoded.records[0].body else { panic!("string body") };
    assert!(body.ends_with(TRUNCATION_MARKER));
    assert!(body.len() < 16_384);
    assert_eq!(decoded.records[0].dropped, 1);
}

#[test]
fn a_record_limit_of_16384_uses_wider_placeholders() {
    let limits = EncoderLimits::new(64 * 1024, 16_384, 64 * 1024).expect("valid limits");
    let mut encoder = StatefulOtlpEncoder::with_limits(limits, OtlpResource::default());
    let at_limit = body_only(16_384);
    assert_eq!(encoder.encode_log_record("s", &at_limit), Ok(0));
    assert_eq!(decode(encoder.flush().as_bytes()).records, vec![at_limit]);
}

#[test]
fn a_buffer_can_be_filled_exactly_and_then_reports_full() {
    let capacity = 4096;
    let limits = EncoderLimits::new(capacity, 1024, 1024).expect("valid limits");
    let mut encoder = StatefulOtlpEncoder::with_limits(limits, OtlpResource::default());
    let filler = record("s", &"f".repeat(500));
    let mut kept = Vec::new();
    while encoder.encode_log_record("s", &filler).is_ok() {
        kept.push(filler.clone());
    }
    // Fill the rest exactly: the longest body that still fits.
    let room = capacity - encoder.len();
    let exact = (1..=room).rev().map(body_only).find(|r| encoder.encode_log_record("s", r).is_ok());
    kept.push(exact.expect("something fits"));
    assert_eq!(encoder.len(), capacity, "the buffer is exactly full");
    assert_eq!(encoder.encode_log_record("s", &body_only(4)), Err(EncodeError::BufferFull));

    let bytes = encoder.flush();
    assert_eq!(bytes.len(), capacity);
    assert_eq!(decode(bytes.as_bytes()).records, kept);
}

#[test]
fn buffer_full_rolls_back_to_the_previous_record() {
    let limits = EncoderLimits::new(2048, 1024, 1024).expect("valid limits");
    let mut encoder = StatefulOtlpEncoder::with_limits(limits, OtlpResource::default());
    let small = record("a", "small");
    encoder.encode_log_record("a", &small).expect("fits");
    let len = encoder.len();

    // A new scope plus a big record: the ScopeLogs it opened must go too.
    let mut records = vec![small.clone()];
    loop {
        let big = record("b", &"x".repeat(900));
        match encoder.encode_log_record("b", &big) {
            Ok(_) => records.push(big),
            Err(e) => {
                assert_eq!(e, EncodeError::BufferFull);
                break;
            }
        }
    }
    assert!(encoder.len() >= len);
    let before = encoder.len();
    assert_eq!(encoder.encode_log_record("c", &record("c", &"y".repeat(900))), Err(EncodeError::BufferFull));
    assert_eq!(encoder.len(), before, "nothing of the failed record is left");

    let decoded = decode(encoder.flush().as_bytes());
    assert_eq!(decoded.records, records);

    // After the flush the same record fits.
    let retry = record("c", &"y".repeat(900));
    assert_eq!(encoder.encode_log_record("c", &retry), Ok(0));
    assert_eq!(decode(encoder.flush().as_bytes()).records, vec![retry]);
}

#[test]
fn a_record_that_cannot_fit_an_empty_buffer_is_too_large() {
    let huge = OtlpResource::builder().with_attribute("blob", "r".repeat(70_000)).build();
    let mut encoder = StatefulOtlpEncoder::with_limits(EncoderLimits::default(), huge);
    assert_eq!(encoder.encode_log_record("s", &record("s", "x")), Err(EncodeError::RecordTooLarge));
    assert!(encoder.is_empty());
    assert!(encoder.flush().is_empty());
}

// === bad input ===

#[test]
fn a_one_mebibyte_string_is_cut_with_a_marker_and_counted() {
    let mut encoder = StatefulOtlpEncoder::new();
    let mut r = record("s", &"m".repeat(1 << 20));
    r.attributes = vec![("big".into(), Value::Str("a".repeat(1 << 20))), ("after".into(), Value::Int(7))];
    // The body and "big" are cut; "after" no longer fits the record.
    assert_eq!(encoder.encode_log_record("s", &r), Ok(3));
    let bytes = encoder.flush();
    let decoded = decode(bytes.as_bytes());
    let got = &decoded.records[0];
    let Some(Value::Str(body)) = &got.body else { panic!("string body") };
    assert!(body.ends_with(TRUNCATION_MARKER) && body.len() <= selftrace::encoder::DEFAULT_MAX_VALUE_BYTES);
    assert_eq!(got.dropped, 3);
    assert!(bytes.len() < selftrace::encoder::DEFAULT_MAX_RECORD_BYTES + 512, "the record stays under its limit");
    let Value::Str(big) = &got.attributes[0].1 else { panic!("string attribute") };
    assert!(got.attributes.len() == 1 && big.ends_with(TRUNCATION_MARKER));
}

#[test]
fn non_ascii_text_is_cut_on_a_character_boundary() {
    for prefix in 0..4 {
        let limits = EncoderLimits::new(64 * 1024, 16_383, 100).expect("valid limits");
        let mut encoder = StatefulOtlpEncoder::with_limits(limits, OtlpResource::default());
        // Shift the multi-byte characters so every cut offset is tried.
        let text = format!("{}{}", "a".repeat(prefix), "é€😀".repeat(50));
        let r = record("s", &text);
        assert_eq!(encoder.encode_log_record("s", &r), Ok(1));
        // prost rejects invalid UTF-8 in string fields, so decoding is the check.
        let decoded = decode(encoder.flush().as_bytes());
        let Some(Value::Str(body)) = &decoded.records[0].body else { panic!("string body") };
        let kept = body.strip_suffix(TRUNCATION_MARKER).expect("marker");
        assert!(text.starts_with(kept) && body.len() <= 100, "prefix {prefix}: {} bytes", body.len());
    }
}

#[test]
fn ten_thousand_attributes_keep_the_record_within_its_limit() {
    let mut encoder = StatefulOtlpEncoder::new();
    let mut r = record("s", "many");
    r.attributes = (0..10_000).map(|i| (format!("attribute.{i}"), Value::Int(i))).collect();
    let dropped = encoder.encode_log_record("s", &r).expect("encodes");
    let bytes = encoder.flush();
    let got = &decode(bytes.as_bytes()).records[0];
    assert!(dropped > 0);
    assert_eq!(got.dropped, dropped);
    assert_eq!(got.attributes.len() + dropped as usize, 10_000, "kept + dropped = all");
    assert_eq!(got.attributes[..], r.attributes[..got.attributes.len()], "kept ones are the first, intact");
    assert!(bytes.len() <= selftrace::encoder::DEFAULT_MAX_RECORD_BYTES + 64);
}

/// `Debug` that nests `depth` levels deep, without a deep value to drop.
struct Deep(u32);

impl std::fmt::Debug for Deep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 == 0 { f.write_str("leaf") } else { f.debug_tuple("Deep").field(&Deep(self.0 - 1)).finish() }
    }
}

struct WithDebug<'a>(&'a dyn std::fmt::Debug);

impl LogRecordView for WithDebug<'_> {
    fn time_unix_nano(&self) -> Option<u64> {
        Some(1)
    }
    fn observed_time_unix_nano(&self) -> Option<u64> {
        Some(1)
    }
    fn severity(&self) -> Option<Severity> {
        Some(Severity::WARN)
    }
    fn event_name(&self) -> Option<&str> {
        None
    }
    fn visit(&self, v: &mut dyn RecordVisitor) {
        v.visit_attribute("deep", AnyValue::Fmt(self.0));
        v.visit_attribute("after", AnyValue::Bool(true));
    }
}

#[test]
fn deeply_nested_debug_output_is_cut_and_formatting_stops_early() {
    let mut encoder = StatefulOtlpEncoder::new();
    // Formatting stops at the value limit, long before 100 000 levels.
    assert_eq!(encoder.encode_log_record("s", &WithDebug(&Deep(100_000))), Ok(1));
    let got = &decode(encoder.flush().as_bytes()).records[0];
    let Value::Str(deep) = &got.attributes[0].1 else { panic!("string") };
    assert!(deep.starts_with("Deep(Deep(") && deep.ends_with(TRUNCATION_MARKER));
    assert_eq!(got.attributes[1], ("after".to_owned(), Value::Bool(true)));
}

#[test]
fn nesting_deeper_than_the_bound_is_dropped_and_counted() {
    let mut v = Value::Int(1);
    for _ in 0..40 {
        v = Value::Array(vec![v]);
    }
    let mut r = record("s", "nested");
    r.attributes = vec![("deep".into(), v), ("ok".into(), Value::Int(2))];
    let mut encoder = StatefulOtlpEncoder::new();
    assert_eq!(encoder.encode_log_record("s", &r), Ok(1));
    let got = &decode(encoder.flush().as_bytes()).records[0];
    assert_eq!(got.dropped, 1);
    assert!(got.attributes.iter().any(|(k, v)| k == "ok" && *v == Value::Int(2)));
}

// === callsites ===

/// A record with a callsite identity: the hash of its severity text and
/// event name, so records with one identity share both (the contract of
/// `LogRecordView::callsite_id`).
struct WithCallsite<'r>(&'r Record);

impl LogRecordView for WithCallsite<'_> {
    fn time_unix_nano(&self) -> Option<u64> {
        self.0.time_unix_nano()
    }
    fn observed_time_unix_nano(&self) -> Option<u64> {
        self.0.observed_time_unix_nano()
    }
    fn severity(&self) -> Option<Severity> {
        self.0.severity()
    }
    fn severity_text(&self) -> Option<&str> {
        self.0.severity_text()
    }
    fn event_name(&self) -> Option<&str> {
        self.0.event_name()
    }
    fn trace_context(&self) -> Option<selftrace::view::TraceContext> {
        self.0.trace_context()
    }
    fn dropped_attributes_count(&self) -> u32 {
        self.0.dropped_attributes_count()
    }
    fn visit(&self, v: &mut dyn RecordVisitor) {
        self.0.visit(v)
    }
    fn callsite_id(&self) -> Option<std::num::NonZeroUsize> {
        use std::hash::{BuildHasher, RandomState};
        static SEED: std::sync::LazyLock<RandomState> = std::sync::LazyLock::new(RandomState::new);
        let hash = SEED.hash_one((self.0.severity_text(), self.0.event_name()));
        std::num::NonZeroUsize::new((hash as usize) | 1)
    }
}

/// Every request the records make, and each record's outcome.
fn encode_each(limits: EncoderLimits, records: &[Record], ids: bool) -> (Vec<Vec<u8>>, Vec<Result<u32, EncodeError>>) {
    let mut encoder = StatefulOtlpEncoder::with_limits(limits, OtlpResource::default());
    let (mut requests, mut outcomes) = (Vec::new(), Vec::new());
    for r in records {
        let mut outcome = if ids {
            encoder.encode_log_record(&r.scope, &WithCallsite(r))
        } else {
            encoder.encode_log_record(&r.scope, r)
        };
        if outcome == Err(EncodeError::BufferFull) {
            requests.push(encoder.flush().as_bytes().to_vec());
            outcome = if ids {
                encoder.encode_log_record(&r.scope, &WithCallsite(r))
            } else {
                encoder.encode_log_record(&r.scope, r)
            };
        }
        outcomes.push(outcome);
    }
    requests.push(encoder.flush().as_bytes().to_vec());
    (requests, outcomes)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A callsite's severity text and event name are encoded once and
    /// copied after: the bytes are exactly those of records encoded field by
    /// field, cuts and limits included.
    #[test]
    fn callsite_heads_encode_as_the_fields_do(
        records in prop::collection::vec(record_strategy(), 1..16),
        repeat in 1..4usize,
        small in any::<bool>(),
    ) {
        let limits = if small { EncoderLimits::new(2048, 128, 64).expect("valid") } else { EncoderLimits::default() };
        let records: Vec<Record> = records.iter().cycle().take(records.len() * repeat).cloned().collect();
        prop_assert_eq!(encode_each(limits, &records, true), encode_each(limits, &records, false));
    }
}

#[test]
fn callsites_past_the_cache_bound_are_encoded_field_by_field() {
    let count = selftrace::encoder::MAX_CACHED_CALLSITES + 100;
    let records: Vec<Record> =
        (0..count).map(|i| Record { event_name: Some(format!("event.{i}")), ..record("scope", "body") }).collect();
    let (requests, outcomes) = encode_each(EncoderLimits::default(), &records, true);
    assert!(outcomes.iter().all(Result::is_ok));
    let decoded: Vec<Record> = requests.iter().flat_map(|r| decode(r).records).collect();
    assert_eq!(decoded, records);
    // Twice more: kept callsites are copied, the others written again.
    let twice: Vec<Record> = records.iter().chain(&records).cloned().collect();
    let (again, _) = encode_each(EncoderLimits::default(), &twice, true);
    assert_eq!(again.iter().flat_map(|r| decode(r).records).collect::<Vec<_>>(), twice);
}

#[test]
fn a_kept_head_past_the_record_limit_is_cut_as_the_fields_would_be() {
    let limits = EncoderLimits::new(2048, 128, 64).expect("valid");
    let long =
        Record { severity_text: Some("T".repeat(60)), event_name: Some("e".repeat(60)), ..record("scope", "body") };
    let records = vec![long.clone(), long];
    let with_ids = encode_each(limits, &records, true);
    assert!(with_ids.1.iter().all(|outcome| matches!(outcome, Ok(n) if *n > 0)), "{:?}", with_ids.1);
    assert_eq!(with_ids, encode_each(limits, &records, false));
}

/// Writes its text through `Debug` unquoted, as `fmt::Arguments` does.
struct Text<'a>(&'a str);

impl std::fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // In pieces, as a format string with arguments writes.
        for piece in self.0.split_inclusive(' ') {
            f.write_str(piece)?;
        }
        Ok(())
    }
}

/// A record whose body is `body`, given as a string or through `Debug`.
struct Body<'a> {
    body: &'a str,
    formatted: bool,
    before: usize,
}

impl LogRecordView for Body<'_> {
    fn time_unix_nano(&self) -> Option<u64> {
        Some(7)
    }
    fn observed_time_unix_nano(&self) -> Option<u64> {
        Some(7)
    }
    fn severity(&self) -> Option<Severity> {
        Some(Severity::INFO)
    }
    fn event_name(&self) -> Option<&str> {
        None
    }
    fn visit(&self, v: &mut dyn RecordVisitor) {
        // Attributes first, so the body meets a record limit part-used.
        for _ in 0..self.before {
            v.visit_attribute("pad", AnyValue::Str("0123456789"));
        }
        if self.formatted {
            v.visit_body(AnyValue::Fmt(&Text(self.body)));
            v.visit_attribute("text", AnyValue::Fmt(&Text(self.body)));
        } else {
            v.visit_body(AnyValue::Str(self.body));
            v.visit_attribute("text", AnyValue::Str(self.body));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A formatted body (the message of a `tracing` event) and a formatted
    /// attribute (`?x`, `%x`) decode to the text, as the same text given as
    /// a string does, and an empty formatted body is no body. (Near a limit
    /// the two may be cut at different places: a formatted value's lengths
    /// are placeholders of fixed width; the encoder's unit tests hold the
    /// formatted fast paths to the field-by-field writes there.)
    #[test]
    fn a_formatted_body_reads_as_the_same_string_would(body in "[a-zé€ ]{0,200}", before in 0..12usize) {
        let encode = |formatted| {
            let mut encoder = StatefulOtlpEncoder::new();
            let outcome = encoder.encode_log_record("s", &Body { body: &body, formatted, before });
            (outcome, decode(encoder.flush().as_bytes()).records)
        };
        prop_assert_eq!(encode(true), encode(false));
    }
}
