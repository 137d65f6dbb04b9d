//! The SDK emitter against the zero-copy decoder: on any request, intact or
//! damaged, the one-pass emitter emits exactly what the checked reader reads
//! (the decoder's own tests live with it, in `layer/tests`).

use selftrace_test_support::record as support;

use proptest::prelude::*;
use selftrace::decode::LogsRequest;
use support::{corrupted, prost_accepts, record_strategy};

/// An SDK value as text, its maps sorted (their `Debug` follows a hash order).
fn canon(value: &opentelemetry::logs::AnyValue) -> String {
    use opentelemetry::logs::AnyValue as V;
    match value {
        V::ListAny(values) => format!("[{}]", values.iter().map(canon).collect::<Vec<_>>().join(", ")),
        V::Map(map) => {
            let mut entries: Vec<String> = map.iter().map(|(k, v)| format!("{k}: {}", canon(v))).collect();
            entries.sort();
            format!("{{{}}}", entries.join(", "))
        }
        other => format!("{other:?}"),
    }
}

/// What the SDK got, comparable: one line per record.
fn sdk_records(exporter: &opentelemetry_sdk::logs::InMemoryLogExporter) -> Vec<String> {
    exporter
        .get_emitted_logs()
        .expect("in-memory exporter")
        .iter()
        .map(|log| {
            let r = &log.record;
            let mut attributes: Vec<String> = r.attributes_iter().map(|(k, v)| format!("{k}={}", canon(v))).collect();
            attributes.sort();
            format!(
                "{} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {attributes:?}",
                log.instrumentation.name(),
                r.event_name(),
                r.severity_number(),
                r.severity_text(),
                r.timestamp(),
                // Left unset, the SDK fills it with the time of the emit.
                r.observed_timestamp().filter(|t| t.elapsed().map_or(true, |e| e.as_secs() > 3600)),
                r.body().map(canon),
                r.trace_context().map(|cx| (cx.trace_id, cx.span_id, cx.trace_flags)),
            )
        })
        .collect()
}

fn emitter() -> (selftrace_bridge::sdk::SdkEmitter, opentelemetry_sdk::logs::InMemoryLogExporter) {
    let exporter = opentelemetry_sdk::logs::InMemoryLogExporter::default();
    let provider = opentelemetry_sdk::logs::SdkLoggerProvider::builder().with_simple_exporter(exporter.clone()).build();
    (selftrace_bridge::sdk::SdkEmitter::new(provider), exporter)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The SDK emitter reads each record once, checking it while it builds
    /// the SDK record: it must accept, reject and emit exactly what the
    /// checked reader (check whole, then visit the bytes again) gives,
    /// record for record, and accept nothing prost rejects. (Both readers
    /// check a record with the same code; what differs is how they visit.)
    #[test]
    fn the_one_pass_emitter_emits_what_the_checked_reader_reads(
        records in prop::collection::vec(record_strategy(), 1..6),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
    ) {
        for input in corrupted(&records, &flips, cut) {
            let input = &input[..];
            let (mut one_pass, one_pass_out) = emitter();
            let emitted = one_pass.emit_request(input);
            let (mut checked, checked_out) = emitter();
            let read = LogsRequest::new(input).for_each_record(|scope, record| checked.emit_record(scope.name(), record));
            prop_assert_eq!(&emitted, &read);
            if emitted.is_ok() {
                prop_assert!(prost_accepts(input), "the emitter accepted what prost rejects: {:02x?}", input);
            }
            prop_assert_eq!(sdk_records(&one_pass_out), sdk_records(&checked_out));
        }
    }
}
