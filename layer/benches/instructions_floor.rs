//! The floors of `scripts/instructions`, in a driver of their own: the
//! anchors' code is generic (`Layered<OpenTelemetryTracingBridge, Registry>`
//! and the like are compiled into the driver that names them), and in the
//! driver of selftrace's scenarios its instruction count moved with
//! selftrace's code (1824, 1764, 1824 per event on builds whose anchor code
//! was the same). Here nothing of selftrace is compiled in, so the floor
//! moves only when the anchors or the event change. Same protocol as
//! `instructions.rs`: `instructions_floor <scenario> <events>` runs
//! `events` units inside `produce`, the only function callgrind counts in.
//!
//! * `appender_noop`: the design's event (a name, a target, four
//!   attributes, a message) through `opentelemetry-appender-tracing` into an
//!   SDK provider with a no-op processor;
//! * `spans_otel_noop`: one child span of 4 attributes made and closed
//!   inside an entered parent, through `tracing-opentelemetry` into an SDK
//!   tracer with a no-op span processor.
//!
//! Latest results: at the top of `instructions.rs`.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use selftrace_test_support::bench::{NoopProcessor, child_span, produce, scenario_args, third_party_event};
use tracing_subscriber::layer::SubscriberExt;

/// The SDK's span processor that does nothing: the floor of spans.
#[derive(Debug)]
struct NoopSpanProcessor;

impl opentelemetry_sdk::trace::SpanProcessor for NoopSpanProcessor {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &opentelemetry::Context) {}
    fn on_end(&self, _span: opentelemetry_sdk::trace::SpanData) {}
    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _timeout: std::time::Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
}

fn main() {
    let (scenario, events) = scenario_args();
    match scenario.as_str() {
        "appender_noop" => {
            let provider = SdkLoggerProvider::builder().with_log_processor(NoopProcessor).build();
            let subscriber = tracing_subscriber::registry().with(OpenTelemetryTracingBridge::new(&provider));
            tracing::subscriber::with_default(subscriber, || produce(events, &mut third_party_event));
        }
        "spans_otel_noop" => {
            let provider =
                opentelemetry_sdk::trace::SdkTracerProvider::builder().with_span_processor(NoopSpanProcessor).build();
            let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"));
            tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
                let _parent = tracing::info_span!(target: "bench", "request").entered();
                produce(events, &mut child_span);
            });
        }
        other => {
            // A bench binary: its usage error goes to stderr.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("instructions_floor: unknown scenario {other:?} (appender_noop, spans_otel_noop)");
            }
            std::process::exit(2);
        }
    }
}
