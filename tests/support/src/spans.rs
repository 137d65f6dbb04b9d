//! The one prost decoder of the span requests our tests collect.

use opentelemetry_proto::tonic::{collector::trace::v1::ExportTraceServiceRequest, trace::v1::Span};
use prost::Message as _;
use selftrace::OtlpBytesChannel;

/// Every span the channel holds, in order, with its instrumentation scope's
/// name; panics on bytes prost does not decode.
pub fn drain_spans(channel: &OtlpBytesChannel) -> Vec<(String, Span)> {
    channel
        .receiver()
        .drain()
        .flat_map(|request| {
            let request = ExportTraceServiceRequest::decode(request.as_bytes()).expect("prost decodes our bytes");
            request.resource_spans.into_iter().flat_map(|r| r.scope_spans).flat_map(|s| {
                let scope = s.scope.map(|s| s.name).unwrap_or_default();
                s.spans.into_iter().map(move |span| (scope.clone(), span))
            })
        })
        .collect()
}
