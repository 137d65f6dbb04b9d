//! Spans from `OtlpSpanLayer`, decoded by Python's `opentelemetry-proto`
//! (`tests/python/decode_traces.py`): names, scopes, ids and parents, kinds,
//! times, attributes and status as they were made.

use selftrace::{OtlpBytesChannel, traces::OtlpSpanLayer};
use selftrace_tests::{hex, python_decode_traces};
use tracing_subscriber::layer::SubscriberExt;

/// One decoded span line's fields.
struct Line<'a>(Vec<&'a str>);

impl<'a> Line<'a> {
    fn name(&self) -> &'a str {
        self.0[1]
    }
}

#[test]
fn python_reads_the_spans_as_they_were_made() {
    let channel = OtlpBytesChannel::new(16);
    let layer = OtlpSpanLayer::builder(channel.sender()).with_service_name("python-spans").build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let batch = tracing::info_span!(target: "itr", "batch.send", otel.kind = "producer", records = 42_i64, peer = "collector");
        batch.in_scope(|| {
            tracing::info_span!(target: "itr", "encode", otel.status_code = "ERROR", otel.status_message = "too large", ok = false)
                .in_scope(|| {});
        });
    });
    let requests: Vec<_> = channel.receiver().drain().collect();
    assert_eq!(requests.len(), 2);
    let out = python_decode_traces(&requests);
    let service = format!("{}=s:{}", hex(b"service.name"), hex(b"python-spans"));
    assert!(out.iter().filter(|l| l.starts_with("resource|")).all(|l| l.contains(&service)), "{out:#?}");
    let spans: Vec<Line<'_>> =
        out.iter().filter(|l| !l.starts_with("resource|")).map(|l| Line(l.split('|').collect())).collect();
    assert_eq!(spans.len(), 2, "{out:#?}");
    let [encode, batch] = [&spans[0], &spans[1]];
    assert_eq!((batch.name(), encode.name()), (hex(b"batch.send").as_str(), hex(b"encode").as_str()));
    // scope, trace id, span id, parent, flags, kind.
    assert_eq!(batch.0[0], hex(b"itr"));
    assert_eq!(encode.0[2], batch.0[2], "one trace");
    assert_eq!((batch.0[2].len(), batch.0[3].len()), (32, 16), "16- and 8-byte ids");
    assert_eq!((batch.0[4], encode.0[4]), ("", batch.0[3]), "the root, then its child");
    // Flags 0x101: sampled, and the parent is known not to be remote.
    assert_eq!((batch.0[5], batch.0[6], encode.0[6]), ("257", "4", "1"), "sampled, local; producer, internal");
    // Times: the child inside its parent.
    let t = |l: &Line<'_>, i: usize| l.0[i].parse::<u64>().expect("a time");
    assert!(t(batch, 7) <= t(encode, 7) && t(encode, 8) <= t(batch, 8) && t(batch, 7) > 0);
    // Attributes (otel.* fields are not), status.
    assert_eq!(batch.0[9], format!("{}=i:42;{}=s:{}", hex(b"records"), hex(b"peer"), hex(b"collector")));
    assert_eq!(encode.0[9], format!("{}=b:0", hex(b"ok")));
    assert_eq!((batch.0[11], encode.0[11], encode.0[12]), ("0", "2", hex(b"too large").as_str()));
}
