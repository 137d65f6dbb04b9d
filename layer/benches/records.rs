//! Complete records: the cost of span fields and code location per event,
//! and of OTLP/JSON lines against human-readable text per record, side by
//! side in one run with the appender + no-op processor as the anchor.
//!
//! Event: the bench event (`info!` with a name, a target, four attributes
//! and a message) into a channel, as `third_party/selftrace_channel`. Span
//! fields: spans of 2 fields each (`id = 7_i64, user = "alice"`), entered
//! around the event; recorded once when each span is made, outside the
//! timed loop.
//!
//! Latest results (criterion medians of one run, from each bench's
//! `estimates.json`; this machine: 2 cores, rustc 1.95.0, `cargo bench -p
//! selftrace --bench records`):
//!
//! | bench                               | median    | vs appender + no-op | vs span fields off |
//! |-------------------------------------|-----------|---------------------|--------------------|
//! | records/appender_noop_processor     |  281.9 ns |               1.00× |                    |
//! | records/span_fields_off_3_spans     |  365.8 ns |               1.30× |              1.00× |
//! | records/span_fields_0_spans         |  407.6 ns |               1.45× |              1.11× |
//! | records/span_fields_1_spans         |  603.1 ns |               2.14× |              1.65× |
//! | records/span_fields_3_spans         |  740.8 ns |               2.63× |              2.03× |
//! | records/code_location               |  394.7 ns |               1.40× |              1.08× |
//!
//! | per record (the bench event's request) | text     | OTLP/JSON | JSON vs text |
//! |----------------------------------------|----------|-----------|--------------|
//! | from the encoded bytes                 | 467.0 ns |  776.9 ns |        1.66× |
//! | from a record view (JSON: encoded, then written from the bytes) | 336.3 ns | 989.5 ns | 2.94× |
//!
//! (This table: one later run, `cargo bench -p selftrace --bench records --
//! "records/(text|otlp_json)"`, after node logs began printing OTLP/JSON
//! through the encoder and the one JSON writer, so a printed value is cut at
//! the same limit as an exported one; writing JSON straight from the view
//! took 1.40× text, encoding first 2.94×. Console destinations only.)
//!
//! In instructions (`bash scripts/instructions`, same code): the channel
//! path 2350 per event; span fields on, 0 spans 2473 (1.05×), 1 span 3362
//! (1.43×), 3 spans 4220 (1.80×); code location 2418 (1.03×). Where a span
//! goes (callgrind, 1 span of 2 fields): the registry's lookup of the
//! current span, its scope and its extensions' read lock about 530; the two
//! fields checked against the event's names and copied about 480. JSON from
//! bytes checks the request whole before writing (a malformed one writes
//! nothing): two decoding passes.

use std::{hint::black_box, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry::InstrumentationScope;
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_sdk::{
    error::OTelSdkResult,
    logs::{LogProcessor, SdkLogRecord, SdkLoggerProvider},
};
use selftrace::{
    Destination, EncoderLimits, OtlpBytesChannel, OtlpTracingLayer, console,
    decode::LogsRequest,
    encoder::{OtlpResource, StatefulOtlpEncoder},
    json,
    spans::SpanFields,
};
use selftrace_test_support::bench::{self as support, third_party_event, timed_in_runs};
use tracing_subscriber::layer::SubscriberExt;

#[derive(Debug)]
struct NoopProcessor;

impl LogProcessor for NoopProcessor {
    fn emit(&self, _: &mut SdkLogRecord, _: &InstrumentationScope) {}
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
}

/// Runs the bench event inside `spans` nested spans of 2 fields each.
fn in_spans(spans: usize, f: &mut dyn FnMut()) {
    if spans == 0 {
        return f();
    }
    let _span = tracing::info_span!("work", id = 7_i64, user = "alice").entered();
    in_spans(spans - 1, f)
}

/// The producer's cost of the bench event inside `spans` spans, through a
/// layer made by `build`.
fn channel_bench(c: &mut Criterion, name: &str, spans: usize, build: impl Fn(Destination) -> OtlpTracingLayer) {
    const BATCH: u64 = 500;
    let channel = OtlpBytesChannel::new(BATCH as usize);
    let receiver = channel.receiver();
    let layer = build(Destination::Channel(channel.sender()));
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        in_spans(spans, &mut || {
            c.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    timed_in_runs(iters, BATCH, third_party_event, || {
                        black_box(receiver.drain().count());
                    })
                })
            });
        });
    });
}

fn span_fields(c: &mut Criterion) {
    let provider = SdkLoggerProvider::builder().with_log_processor(NoopProcessor).build();
    let bridge = OpenTelemetryTracingBridge::new(&provider);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(bridge), || {
        c.bench_function("records/appender_noop_processor", |b| b.iter(third_party_event));
    });

    let off = |d| OtlpTracingLayer::builder(d).with_flood_limit(None).build();
    let on = |d| OtlpTracingLayer::builder(d).with_flood_limit(None).with_span_fields(Some(SpanFields::all())).build();
    channel_bench(c, "records/span_fields_off_3_spans", 3, off);
    for spans in [0, 1, 3] {
        channel_bench(c, &format!("records/span_fields_{spans}_spans"), spans, on);
    }
    let located = |d| OtlpTracingLayer::builder(d).with_flood_limit(None).with_code_location(true).build();
    channel_bench(c, "records/code_location", 0, located);
}

fn formats(c: &mut Criterion) {
    let request = support::one_event_request();
    let bytes = request.as_bytes();
    let mut out = String::with_capacity(4096);
    c.bench_function("records/text_line_from_bytes", |b| {
        b.iter(|| {
            out.clear();
            black_box(console::write_request(&mut out, black_box(bytes)).ok());
        })
    });
    c.bench_function("records/otlp_json_line_from_bytes", |b| {
        b.iter(|| {
            out.clear();
            black_box(json::write_request(&mut out, black_box(bytes)).ok());
        })
    });
    // From a record view: text is written from it; OTLP/JSON is the record
    // encoded (with the node's resource and limits), then written from the
    // bytes, as node logs print it.
    let resource = OtlpResource::builder().with_attribute("service.name", "bench").build();
    let mut encoder = StatefulOtlpEncoder::with_limits(EncoderLimits::default(), resource);
    let mut record = None;
    let _ = LogsRequest::new(bytes).for_each_record(|scope, r| record = Some((scope.name().to_owned(), *r)));
    if let Some((scope, record)) = record {
        c.bench_function("records/text_line_from_view", |b| {
            b.iter(|| {
                out.clear();
                black_box(console::write_console_line(&mut out, &scope, &record).ok());
            })
        });
        c.bench_function("records/otlp_json_line_from_view", |b| {
            b.iter(|| {
                out.clear();
                let _ = encoder.encode_log_record(&scope, &record);
                black_box(json::write_request(&mut out, encoder.flush().as_bytes()).ok());
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = support::criterion_config().measurement_time(Duration::from_secs(3));
    targets = span_fields, formats
}
criterion_main!(benches);
