//! The zero-copy decoder against the encoder and against hostile bytes:
//! records round-trip, re-encoding a decoded request gives the same bytes,
//! and no input makes it panic.

use selftrace_test_support::record as support;

use proptest::prelude::*;
use prost::Message as _;
use selftrace::decode::{DecodeError, DecodeErrorKind, LogsRequest};
use selftrace::{EncoderLimits, encoder::StatefulOtlpEncoder, view::MapView};
use support::{
    Record, Value, corrupted, decode, encode_records, prost_accepts, record_strategy, test_resource as resource,
};

/// Every record of `bytes`, read by our decoder.
fn ours(bytes: &[u8]) -> Result<Vec<Record>, DecodeError> {
    let mut out = Vec::new();
    LogsRequest::new(bytes).for_each_record(|scope, record| out.push(Record::from_view(scope.name(), record)))?;
    Ok(out)
}

/// Visits everything a request holds, as the bridge and the console do.
fn read_all(bytes: &[u8]) {
    for resource_logs in LogsRequest::new(bytes).resource_logs() {
        let Ok(resource_logs) = resource_logs else { return };
        if let Some(resource) = resource_logs.resource() {
            resource.visit_entries(&mut |_, v| drop(Value::from_view(v)));
        }
        for scope_logs in resource_logs.scope_logs() {
            let Ok(scope_logs) = scope_logs else { return };
            scope_logs.visit_attributes(&mut |_, v| drop(Value::from_view(v)));
            for record in scope_logs.records() {
                let Ok(record) = record else { return };
                drop(Record::from_view(scope_logs.name(), &record));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn records_read_back_as_prost_reads_them(records in prop::collection::vec(record_strategy(), 1..12)) {
        let bytes = encode_records(&records);
        let decoded = ours(&bytes).expect("our bytes decode");
        prop_assert_eq!(&decoded, &decode(&bytes).records);
        prop_assert_eq!(decoded, records);
    }

    #[test]
    fn re_encoding_a_decoded_request_gives_the_same_bytes(records in prop::collection::vec(record_strategy(), 1..12)) {
        let bytes = encode_records(&records);
        let mut encoder = StatefulOtlpEncoder::with_limits(EncoderLimits::default(), resource());
        LogsRequest::new(&bytes).for_each_record(|scope, record| {
            encoder.encode_log_record(scope.name(), record).expect("fits");
        }).expect("decodes");
        let again = encoder.flush();
        prop_assert_eq!(again.as_bytes(), &bytes[..]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        read_all(&bytes);
    }

    #[test]
    fn corrupted_requests_never_panic_and_what_we_accept_prost_accepts(
        records in prop::collection::vec(record_strategy(), 1..6),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        for input in corrupted(&records, &flips, cut) {
            let input = &input[..];
            read_all(input);
            // The reverse does not hold: we also reject ids of the wrong
            // length and values nested too deep.
            if ours(input).is_ok() {
                prop_assert!(prost_accepts(input), "we accepted what prost rejects: {:?} {:02x?}", opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest::decode(input).err(), input);
            }
        }
    }
}

#[test]
fn a_truncated_request_reports_where_it_ends() {
    let bytes = encode_records(&[Record { scope: "a".into(), severity: Some(9), ..Record::default() }]);
    for cut in 1..bytes.len() {
        let err = ours(&bytes[..cut]).expect_err("a cut request is malformed");
        assert!(err.offset() <= cut, "offset {} within the {cut} bytes or at their end", err.offset());
        assert_eq!(err.kind(), DecodeErrorKind::Truncated, "cut at {cut}");
        assert!(err.to_string().starts_with("malformed OTLP logs request at byte "));
    }
}

#[test]
fn a_trace_id_of_the_wrong_length_is_an_error() {
    // request { resource_logs { scope_logs { log_records { trace_id: 3 bytes } } } }
    let bytes = [0x0a, 0x09, 0x12, 0x07, 0x12, 0x05, 0x4a, 0x03, 1, 2, 3];
    let err = ours(&bytes).expect_err("malformed");
    assert_eq!(err.kind(), DecodeErrorKind::InvalidIdLength { field: "LogRecord.trace_id", len: 3 });
    assert_eq!(err.offset(), 6);
}

#[test]
fn records_before_an_error_are_visited() {
    let good = encode_records(&[Record { scope: "a".into(), severity: Some(9), ..Record::default() }]);
    // The same request twice, then a resource_logs whose length runs past the end.
    let bytes = [&good[..], &good[..], &[0x0a, 0x7f][..]].concat();
    let mut seen = 0;
    let err = LogsRequest::new(&bytes).for_each_record(|_, _| seen += 1).expect_err("malformed tail");
    assert_eq!(seen, 2);
    assert_eq!((err.offset(), err.kind()), (good.len() * 2 + 1, DecodeErrorKind::Truncated));
}
