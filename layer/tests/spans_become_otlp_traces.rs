//! `tracing` spans through `OtlpSpanLayer`: one OTLP `Span` per closed
//! span, decoded with prost: a tree across threads and an instrumented
//! future keeps its trace id and parents, times nest, fields are
//! attributes, `otel.kind` and `otel.status_code` steer kind and status;
//! every span is delivered, dropped by reason, or still open.

#![cfg(feature = "traces")]

use std::collections::HashMap;

use opentelemetry_proto::tonic::{
    common::v1::any_value::Value,
    trace::v1::{Span, span::SpanKind, status::StatusCode},
};
use selftrace::{OtlpBytesChannel, pipeline::enter_pipeline_scope, traces::OtlpSpanLayer};
use selftrace_test_support::spans::drain_spans;
use tracing::Instrument as _;
use tracing_subscriber::layer::SubscriberExt;

/// Every span the channel holds, by name, with its scope.
fn spans(channel: &OtlpBytesChannel) -> HashMap<String, (String, Span)> {
    drain_spans(channel).into_iter().map(|(scope, span)| (span.name.clone(), (scope, span))).collect()
}

fn attribute(span: &Span, key: &str) -> Option<Value> {
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone()).and_then(|v| v.value)
}

#[test]
fn a_tree_across_threads_and_a_future_keeps_its_trace_and_parents() {
    let channel = OtlpBytesChannel::new(64);
    let layer = OtlpSpanLayer::builder(channel.sender()).with_service_name("spans-test").build();
    let handle = layer.clone();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        let request = tracing::info_span!(target: "server", "request", otel.kind = "server", route = "/v1/logs", status = tracing::field::Empty);
        let _in_request = request.enter();
        let decode = tracing::info_span!("decode", bytes = 512_i64);
        decode.in_scope(|| {
            let parent = decode.clone();
            let dispatch = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    tracing::info_span!(parent: &parent, "work", otel.status_code = "error", otel.status_message = "boom").in_scope(|| {});
                });
            })
            .join()
            .expect("the thread");
        });
        drop(decode);
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
        runtime.block_on(async {}.instrument(tracing::info_span!("async.flush", otel.kind = "client")));
        request.record("status", 200_i64);
    });
    let got = spans(&channel);
    let m = handle.metrics();
    assert_eq!((m.started, m.delivered, m.dropped(), m.open), (4, 4, 0, 0), "{m:?}");
    let [request, decode, work, flush] = ["request", "decode", "work", "async.flush"].map(|n| got[n].1.clone());
    assert_eq!(got["request"].0, "server");
    // One trace; each child's parent is the span it was made in.
    for span in [&decode, &work, &flush] {
        assert_eq!(span.trace_id, request.trace_id, "{span:?}");
    }
    assert!(request.parent_span_id.is_empty());
    assert_eq!(decode.parent_span_id, request.span_id);
    assert_eq!(work.parent_span_id, decode.span_id);
    assert_eq!(flush.parent_span_id, request.span_id);
    let ids: std::collections::HashSet<_> =
        [&request, &decode, &work, &flush].map(|s| s.span_id.clone()).into_iter().collect();
    assert_eq!(ids.len(), 4, "span ids are distinct");
    assert!(request.trace_id.len() == 16 && request.span_id.len() == 8 && request.trace_id.iter().any(|b| *b != 0));
    // Times nest.
    for (outer, inner) in [(&request, &decode), (&decode, &work), (&request, &flush)] {
        assert!(
            outer.start_time_unix_nano <= inner.start_time_unix_nano
                && inner.end_time_unix_nano <= outer.end_time_unix_nano
        );
        assert!(inner.start_time_unix_nano <= inner.end_time_unix_nano);
    }
    // Kinds, status, attributes (otel.* fields steer, they are not attributes).
    assert_eq!(
        (request.kind, flush.kind, decode.kind),
        (SpanKind::Server as i32, SpanKind::Client as i32, SpanKind::Internal as i32)
    );
    let status = work.status.clone().expect("a status");
    assert_eq!((status.code, status.message.as_str()), (StatusCode::Error as i32, "boom"));
    assert_eq!(attribute(&request, "route"), Some(Value::StringValue("/v1/logs".into())));
    assert_eq!(attribute(&request, "status"), Some(Value::IntValue(200)), "recorded after the span was made");
    assert_eq!(attribute(&decode, "bytes"), Some(Value::IntValue(512)));
    assert!(request.attributes.iter().chain(&work.attributes).all(|kv| !kv.key.starts_with("otel.")));
}

#[test]
fn every_span_is_delivered_dropped_by_reason_or_still_open() {
    let channel = OtlpBytesChannel::new(1);
    let layer = OtlpSpanLayer::builder(channel.sender()).build();
    let handle = layer.clone();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let still_open = tracing::dispatcher::with_default(&dispatch, || {
        tracing::info_span!("first").in_scope(|| {});
        tracing::info_span!("second").in_scope(|| {});
        // Made on a pipeline thread: not traced at all.
        let pipeline = enter_pipeline_scope();
        tracing::info_span!("exporting").in_scope(|| {});
        drop(pipeline);
        tracing::info_span!("open")
    });
    let m = handle.metrics();
    assert_eq!((m.started, m.delivered, m.dropped_channel_full, m.open), (3, 1, 1, 1), "{m:?}");
    assert_eq!(m.started, m.delivered + m.dropped() + m.open);
    drop(still_open);
    drop(channel);
    assert_eq!(handle.metrics().open, 0);
}

#[test]
fn log_records_inside_a_span_carry_its_ids() {
    use selftrace::{Destination, OtlpTracingLayer, decode::LogsRequest, view::LogRecordView};

    let spans_channel = OtlpBytesChannel::new(8);
    let logs_channel = OtlpBytesChannel::new(8);
    let subscriber = tracing_subscriber::registry()
        .with(OtlpSpanLayer::builder(spans_channel.sender()).build())
        .with(OtlpTracingLayer::builder(Destination::Channel(logs_channel.sender())).with_flood_limit(None).build());
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("outside any span");
        tracing::info_span!("request").in_scope(|| {
            tracing::info!("inside the request");
            tracing::info_span!("decode").in_scope(|| tracing::warn!("inside decode"));
        });
    });
    let got = spans(&spans_channel);
    let ids = |name: &str| (got[name].1.trace_id.clone(), got[name].1.span_id.clone());
    let mut records = Vec::new();
    for request in logs_channel.receiver().drain() {
        LogsRequest::new(request.as_bytes())
            .for_each_record(|_, record| {
                let body = record.body_str().unwrap_or_default().to_owned();
                let ids = record.trace_context().map(|cx| (cx.trace_id.to_vec(), cx.span_id.to_vec()));
                records.push((body, ids));
            })
            .expect("our own bytes decode");
    }
    assert_eq!(
        records,
        [
            ("outside any span".to_owned(), None),
            ("inside the request".to_owned(), Some(ids("request"))),
            ("inside decode".to_owned(), Some(ids("decode"))),
        ]
    );
}

#[test]
fn sampling_is_parent_based_and_an_unsampled_span_costs_its_ids_only() {
    use selftrace::{Destination, OtlpTracingLayer, decode::LogsRequest, view::LogRecordView};

    // Nothing sampled: no span encoded; children follow; records carry the
    // ids with the sampled flag off.
    let spans_channel = OtlpBytesChannel::new(8);
    let logs_channel = OtlpBytesChannel::new(8);
    let layer = OtlpSpanLayer::builder(spans_channel.sender()).with_sample_ratio(0.0).build();
    let handle = layer.clone();
    let subscriber = tracing_subscriber::registry()
        .with(layer)
        .with(OtlpTracingLayer::builder(Destination::Channel(logs_channel.sender())).with_flood_limit(None).build());
    tracing::subscriber::with_default(subscriber, || {
        tracing::info_span!("root", key = "v").in_scope(|| {
            tracing::info_span!("child").in_scope(|| tracing::info!("inside"));
        });
    });
    let m = handle.metrics();
    assert_eq!((m.started, m.unsampled, m.delivered, m.open), (0, 2, 0, 0), "{m:?}");
    assert!(spans_channel.receiver().is_empty());
    let mut flags = Vec::new();
    for request in logs_channel.receiver().drain() {
        LogsRequest::new(request.as_bytes())
            .for_each_record(|_, record| flags.push(record.trace_context().map(|cx| cx.flags)))
            .expect("our own bytes");
    }
    assert_eq!(flags, [Some(0)]);

    // Half the traces: about half the roots, and every child with its root.
    let channel = OtlpBytesChannel::new(4096);
    let layer = OtlpSpanLayer::builder(channel.sender()).with_sample_ratio(0.5).build();
    let handle = layer.clone();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for _ in 0..2000 {
            tracing::info_span!("root").in_scope(|| tracing::info_span!("child").in_scope(|| {}));
        }
    });
    let m = handle.metrics();
    assert_eq!(m.started + m.unsampled, 4000, "{m:?}");
    assert!((1600..=2400).contains(&m.started), "about half: {m:?}");
    let got: Vec<Span> = drain_spans(&channel).into_iter().map(|(_, span)| span).collect();
    let roots: std::collections::HashSet<Vec<u8>> =
        got.iter().filter(|s| s.name == "root").map(|s| s.span_id.clone()).collect();
    let children: Vec<&Span> = got.iter().filter(|s| s.name == "child").collect();
    assert_eq!(children.len(), roots.len(), "a child is sampled exactly when its root is");
    assert!(children.iter().all(|c| roots.contains(&c.parent_span_id)));
}

#[test]
fn span_events_are_bounded_and_the_rest_counted() {
    let channel = OtlpBytesChannel::new(8);
    let layer = OtlpSpanLayer::builder(channel.sender()).with_span_events(true).build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info_span!("busy").in_scope(|| {
            for i in 0..130_i64 {
                tracing::info!(i, "tick");
            }
        });
        // Outside any span: no span to add it to.
        tracing::info!("alone");
    });
    let got = spans(&channel);
    let busy = &got["busy"].1;
    assert_eq!((busy.events.len(), busy.dropped_events_count), (128, 2));
    let first = &busy.events[0];
    assert_eq!(first.name, "tick");
    let keys: Vec<&str> = first.attributes.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["level", "target", "i"]);
    assert!(busy.events.windows(2).all(|w| w[0].time_unix_nano <= w[1].time_unix_nano));
    assert!(busy.start_time_unix_nano <= first.time_unix_nano && first.time_unix_nano <= busy.end_time_unix_nano);
}

#[test]
fn a_remote_parent_from_traceparent_gives_the_trace_and_the_sampling_decision() {
    use selftrace::traces::{self, RemoteParentError};
    let channel = OtlpBytesChannel::new(64);
    // Nothing sampled here: only a remote parent's decision samples.
    let layer = OtlpSpanLayer::builder(channel.sender()).with_sample_ratio(0.0).build();
    let handle = layer.clone();
    let remote = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let sampled = tracing::info_span!("sampled.request", otel.kind = "server", route = "/a");
        traces::set_remote_parent(&sampled, remote).expect("a valid traceparent");
        let outgoing = sampled.in_scope(|| {
            let call = tracing::info_span!("call", otel.kind = "client");
            let header = traces::traceparent(&call).expect("traced");
            drop(call);
            header
        });
        drop(sampled);
        // The header's flags say not sampled: nothing of it is exported.
        let declined = tracing::info_span!("declined.request");
        traces::set_remote_parent(&declined, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00").expect("valid");
        declined.in_scope(|| tracing::info_span!("declined.child").in_scope(|| {}));
        drop(declined);
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            let span = tracing::info_span!("bad");
            assert_eq!(traces::set_remote_parent(&span, bad), Err(RemoteParentError::Malformed), "{bad:?}");
        }
        // A later version may add parts.
        let future = tracing::info_span!("future");
        assert_eq!(traces::set_remote_parent(&future, &format!("01{}-what-next", &remote[2..])), Ok(()));
        assert_eq!(traces::set_remote_parent(&tracing::Span::none(), remote), Err(RemoteParentError::NotTraced));
        // The header written for an outgoing request names the client span.
        assert!(outgoing.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{outgoing}");
        assert!(outgoing.ends_with("-01") && outgoing.len() == 55, "{outgoing}");
    });
    let got = spans(&channel);
    let (request, call) = (&got["sampled.request"].1, &got["call"].1);
    assert_eq!(hex(&request.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(hex(&request.parent_span_id), "00f067aa0ba902b7");
    assert_eq!(request.flags, 0x301, "sampled, parent remote");
    assert!(matches!(attribute(request, "route"), Some(Value::StringValue(r)) if r == "/a"), "{request:?}");
    assert_eq!(
        (call.trace_id.clone(), call.parent_span_id.clone()),
        (request.trace_id.clone(), request.span_id.clone())
    );
    assert_eq!(call.flags, 0x101, "sampled, parent local");
    assert!(!got.contains_key("declined.request") && !got.contains_key("declined.child"));
    let m = handle.metrics();
    // Sampled: the request, its call, and the future version's span.
    assert_eq!((m.started, m.delivered, m.open), (3, 3, 0), "{m:?}");
    assert_eq!(m.unsampled, 2 + 7, "{m:?}");
}

#[test]
fn a_span_links_to_the_spans_it_follows_from() {
    let channel = OtlpBytesChannel::new(64);
    let layer = OtlpSpanLayer::builder(channel.sender()).build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let producer = tracing::info_span!("batch.produce");
        let consumer = tracing::info_span!("batch.consume");
        consumer.follows_from(&producer);
        consumer.follows_from(tracing::Span::none().id());
        let many = tracing::info_span!("many");
        for _ in 0..130 {
            many.follows_from(&producer);
        }
    });
    let got = spans(&channel);
    let (producer, consumer, many) = (&got["batch.produce"].1, &got["batch.consume"].1, &got["many"].1);
    assert_eq!(consumer.links.len(), 1, "{consumer:?}");
    let link = &consumer.links[0];
    assert_eq!((&link.trace_id, &link.span_id, link.flags), (&producer.trace_id, &producer.span_id, 0x101));
    assert_ne!(consumer.trace_id, producer.trace_id, "a link, not a parent");
    assert_eq!((many.links.len(), many.dropped_links_count), (128, 2));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Counts how often its `Debug` runs: how often a span's fields are recorded.
struct Counted(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl std::fmt::Debug for Counted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f.write_str("counted")
    }
}

#[test]
fn a_span_layer_and_a_logs_layer_record_a_spans_fields_once_in_either_order() {
    use selftrace::{Destination, OtlpTracingLayer, spans::SpanFields};
    use selftrace_test_support::record::{Value as RecordValue, decode};
    use std::sync::{Arc, atomic::AtomicU64};

    for (spans_first, wanted) in [(true, true), (false, true), (true, false), (false, false)] {
        let fields = if wanted { SpanFields::all() } else { SpanFields::named(["other"]) };
        let (span_channel, log_channel) = (OtlpBytesChannel::new(16), OtlpBytesChannel::new(16));
        let span_layer = OtlpSpanLayer::builder(span_channel.sender()).build();
        let logs = OtlpTracingLayer::builder(Destination::Channel(log_channel.sender()))
            .with_span_fields(Some(fields))
            .build();
        let debugs = Arc::new(AtomicU64::new(0));
        let work = || {
            let request =
                tracing::info_span!("request", what = ?Counted(debugs.clone()), later = tracing::field::Empty);
            request.in_scope(|| tracing::info!("before"));
            request.record("later", 5_i64);
            request.in_scope(|| tracing::info!("after"));
        };
        if spans_first {
            tracing::subscriber::with_default(tracing_subscriber::registry().with(span_layer).with(logs), work);
        } else {
            tracing::subscriber::with_default(tracing_subscriber::registry().with(logs).with(span_layer), work);
        }
        let case = format!("spans first: {spans_first}, fields wanted: {wanted}");
        assert_eq!(debugs.load(std::sync::atomic::Ordering::Relaxed), 1, "recorded once ({case})");
        let request = &spans(&span_channel)["request"].1;
        assert!(matches!(attribute(request, "what"), Some(Value::StringValue(v)) if v == "counted"), "{case}");
        assert!(matches!(attribute(request, "later"), Some(Value::IntValue(5))), "{case}");
        let records: Vec<_> = log_channel.receiver().drain().flat_map(|r| decode(r.as_bytes()).records).collect();
        let keys = |i: usize| records[i].attributes.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>();
        if wanted {
            assert_eq!(keys(0), ["what"], "{case}");
            assert_eq!(keys(1), ["what", "later"], "{case}");
            assert_eq!(records[1].attributes[1].1, RecordValue::Int(5), "{case}");
        } else {
            assert!(keys(0).is_empty() && keys(1).is_empty(), "{case}: {records:?}");
        }
    }
}
