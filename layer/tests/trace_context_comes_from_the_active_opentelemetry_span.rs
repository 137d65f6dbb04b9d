//! With the `trace` feature and `with_trace_context(true)`, records carry the
//! trace and span ids of the active OpenTelemetry span.
#![cfg(feature = "trace")]

use selftrace_test_support::record as support;

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use selftrace::{Destination, OtlpBytesChannel, OtlpTracingLayer};
use support::decode;
use tracing_subscriber::layer::SubscriberExt;

#[test]
fn records_carry_the_active_span_context_only_when_asked() {
    let trace_id = [0x11; 16];
    let span_id = [0x22; 8];
    let span = SpanContext::new(
        TraceId::from_bytes(trace_id),
        SpanId::from_bytes(span_id),
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    );

    for enabled in [true, false] {
        let channel = OtlpBytesChannel::new(8);
        let layer =
            OtlpTracingLayer::builder(Destination::Channel(channel.sender())).with_trace_context(enabled).build();
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            let _attached = opentelemetry::Context::current().with_remote_span_context(span.clone()).attach();
            tracing::info!("inside a span");
        });
        tracing::subscriber::with_default(
            tracing_subscriber::registry().with(
                OtlpTracingLayer::builder(Destination::Channel(channel.sender())).with_trace_context(true).build(),
            ),
            || tracing::info!("outside any span"),
        );
        let records: Vec<_> = channel.receiver().drain().flat_map(|b| decode(b.as_bytes()).records).collect();
        let want = enabled.then_some((trace_id, span_id, 1));
        assert_eq!(records[0].trace, want, "enabled = {enabled}");
        assert_eq!(records[1].trace, None, "no span, no trace context");
    }
}
