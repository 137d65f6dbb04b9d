//! Instructions per event, counted by callgrind (deterministic where time is
//! noisy): the driver `scripts/instructions` runs. Not a criterion bench:
//! `instructions <scenario> <events>` logs `events` events of one scenario
//! inside `produce`, the only function callgrind counts in
//! (`--toggle-collect`); the script runs two lengths and takes
//! `(Ir(N2) − Ir(N1)) / (N2 − N1)`, which leaves out everything paid once
//! (first-use thread-locals, the first block of each buffer).
//!
//! Scenarios, each the design's event (a name, a target, four attributes, a
//! message):
//!
//! * `appender_noop` (in `instructions_floor.rs`, a driver of its own):
//!   `opentelemetry-appender-tracing` into an SDK provider with a no-op
//!   processor (the floor);
//! * `selftrace_channel`: selftrace's layer to a channel that holds every
//!   request (drained after `produce`);
//! * `selftrace_buffered`: selftrace's layer into node logs' per-thread
//!   buffers, the transport crates denied: the exporter's layer
//!   (`OtlpExporter::layer`) without its level filter;
//! * `node_logs`: `otel_info!` through `SharedTelemetry` into `NodeLogs`
//!   (buffered; a full buffer flushes into a channel that holds every
//!   request);
//! * `dropped`: selftrace's layer to a full channel: every event is dropped
//!   as `channel_full` (the raw logger prints nothing: 0 lines a second);
//! * `channel_flood_checked`: `selftrace_channel` with flood control on and
//!   every event within its budget (what the check costs);
//! * `suppressed`: flood control on, every event past its budget;
//! * `span_fields_0`, `span_fields_1`, `span_fields_3`: span fields on, the
//!   event inside 0, 1 or 3 spans of 2 fields;
//! * `code_location`: the code location on every record;
//! * `spans_otel_noop` (in `instructions_floor.rs`), `spans_selftrace`
//!   (built with `traces`): one child span of 4 attributes made and closed
//!   inside an entered parent, through `tracing-opentelemetry` into an SDK
//!   tracer with a no-op span processor (the floor for spans), and through
//!   selftrace's span layer into per-thread buffers (as an exporter of
//!   traces uses it); per span.
//!
//! Latest results (`bash scripts/instructions`, N1 = 2000, N2 = 12000;
//! valgrind 3.19, rustc 1.95.0, 2026-12-07, at 2a518f8; the bridge's
//! scenarios come from `bridge/benches/instructions.rs`):
//!
//! | scenario              | instructions per event | vs appender + no-op |
//! |-----------------------|------------------------|---------------------|
//! | appender_noop         |                   1824 |               1.00× |
//! | selftrace_channel     |                   2039 |               1.12× |
//! | selftrace_buffered    |                   1681 |               0.92× |
//! | channel_flood_checked |                   2099 |               1.15× |
//! | node_logs             |                    937 |               0.51× |
//! | dropped               |                    383 |               0.21× |
//! | suppressed            |                    345 |               0.19× |
//! | span_fields_0         |                   2195 |               1.20× |
//! | span_fields_1         |                   3202 |               1.76× |
//! | span_fields_3         |                   4158 |               2.28× |
//! | code_location         |                   2107 |               1.16× |
//! | bridge_one_record     |                   4632 |               2.54× |
//! | bridge_100_records    |                   3506 |               1.92× |
//!
//! | scenario        | instructions per span | vs tracing-opentelemetry + no-op |
//! |-----------------|-----------------------|----------------------------------|
//! | spans_otel_noop |                  9119 |                            1.00× |
//! | spans_selftrace |                  5749 |                            0.63× |
//!
//! Issue 32, fourth round (the exporter's layer 1808 -> 1681, node 1067 ->
//! 937, a span 5883 -> 5749, channel 2039 -> 2039): a full request whose
//! hand-off block a lagging consumer still holds (the exporter keeps its
//! batches until they are acknowledged) is handed over in its own buffer
//! instead of copied into a fresh block (the ~120 an event of the 64 KiB
//! copy below; on the CPU about 4 ns an event, criterion's buffered path
//! 98.5 -> 94.3 ns); a record's scope name is compared with the open
//! scope's without a `memcmp` call (-11 on the channel path, which the
//! flush's new branch took back).
//!
//! Third round (node 1519 -> 1067, channel 2124 -> 2039, the
//! exporter's layer 1957 -> 1808; at e737eb0 1065, 2026, 1803: the review's
//! one chunk writer moved them by inlining noise): each `otel_*!` callsite compiles a
//! writer of its own fields (every field inlined with its key and its
//! value's kind, one dynamic call a record instead of a loop over values of
//! any kind: node 1523 -> 1167); the usual attribute (a key of at most 16
//! bytes and a scalar, or a short string) is one chunk of 32 or 48 bytes
//! cut back to its length instead of three writes, and a short string body
//! one chunk (every path, about 10 an attribute); a thread that keeps node
//! logs as its destination keeps its buffer in them too (no lookup of the
//! thread's buffers: the exporter's layer -53); an event's fields are
//! visited without the check for a `log` record's `log.*` fields (a
//! constant of the visitor: -11); the small functions every event calls
//! across modules (the re-entrancy guard, the clock's handle, the `log`
//! record check, the encoder's attempt) are inlined (-35 to -47). Tried and dropped:
//! writing into the hand-off block itself (a `BytesMut`, the requests split
//! off it, no flush copy): node 1054 and the exporter's layer 1846, but the
//! channel path 2168 (+99: each `BytesMut` write checks twice, and a
//! one-record request gains nothing), and the copy it removes is cheap on
//! the CPU (below); the values of an `otel_*!` call passed to its writers
//! as one tuple: +7.
//!
//! Second round (channel 2343 -> 2124, the exporter's layer
//! 2156 -> 1957, node 1649 -> 1519): the fields of a `tracing` event and
//! of an `otel_*!` record reach the encoder's writer without a dynamic call
//! per field (`LogRecordView::visit_encoder`); the usual attribute and a
//! scalar or short string value are written inline where the visitor knows
//! the value's kind, and settled without a closure (which LLVM kept as a
//! function of its own that no longer knew the kind); a thread keeps a
//! destination that holds no channel of its own (node logs: the exporter's
//! layer) between events under a stamp, with its own counts, instead of
//! loading it through `arc-swap` (two locked instructions an event) and
//! counting in shared counters (one more). The floors moved to their own
//! driver: here their count moved with selftrace's code (1824, 1764, 1824
//! on builds of the same anchor code); the span scenarios now make the
//! bench span in the test support (5858 -> 5947 for the same layer code).
//!
//! Where the channel path's 2039 go (counted at 2a518f8): dispatch to the
//! layer ~150, the layer's checks ~110, the destination's load 45
//! (`arc-swap`: a channel destination is not kept, a kept sender would keep
//! its channel open), the clock 62, the fields ~890 (`tracing`'s
//! `ValueSet::record` 101, about 90 an attribute, most of it `tracing`'s
//! visitor call, the message ~340: two levels of `fmt::write` for a
//! literal, which a visitor given `&dyn Debug` cannot skip), the record's
//! head and envelope ~190, the flush 234 (two lengths, the copy into the
//! hand-off block, `BytesMut::split` 70) and the channel's send 124
//! (flume's lock and queue: 106 alone, a lock-free array queue's push 62).
//! The last two, ~350 an event, are one request per event, which the
//! floor (whose processor drops the record) does not pay. The buffered
//! paths flush every ~400 events: a full request goes in its own buffer
//! (above), one a consumer has let go of is copied into the reclaimed
//! block. The node path's 1082 (at 6290b38, before the hand-over): the
//! call and its clock ~110, the node's checks and buffer (guard, levels,
//! thread-local buffer, its lock) ~250, the record's envelope and head
//! ~250, the fields ~250, the flush's copy ~120.
//!
//! A span's fields in one buffer (was: an allocation per field and its
//! value copied): spans 9022 -> 5797; span fields on records read from it
//! cost 1-2 % more per event (3543 -> 3589 and 4459 -> 4545; the
//! span layer's recording is read too, filtered by span name; before the
//! node flag below). The node slot is read only inside a node scope (a
//! plain thread-local flag first): every delivered event -92. A dropped event costs 0.17× a delivered
//! one: once a send found the channel full, the next events are refused
//! before they are stamped or encoded, and the silenced raw logger reads no
//! clock. A suppressed one, 0.16×: flood control runs before the
//! destination is loaded, and the record is stamped only once admitted; the
//! check costs a delivered event 60 instructions.

use std::hint::black_box;

use selftrace::{
    Destination, DropReason, Node, OtlpBytesChannel, SharedTelemetry, flood::FloodLimit, otel_info,
    raw::set_raw_lines_per_second,
};
use selftrace_test_support::bench::{self as support, produce, third_party_event};
use tracing_subscriber::layer::SubscriberExt;

fn main() {
    let (scenario, events) = support::scenario_args();
    set_raw_lines_per_second(0);
    match scenario.as_str() {
        "selftrace_channel" => {
            let channel = OtlpBytesChannel::new(usize::try_from(events).unwrap_or(usize::MAX));
            let layer = support::unlimited_layer(Destination::Channel(channel.sender()));
            let handle = layer.handle();
            tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
                produce(events, &mut third_party_event)
            });
            assert_eq!(handle.metrics().delivered, events);
            black_box(channel.receiver().drain().count());
        }
        // The exporter's layer: the same layer into node logs' per-thread
        // buffers (a full buffer flushes into a channel that holds every
        // request), the transport crates denied, as `OtlpExporter::layer`
        // builds it.
        "selftrace_buffered" => {
            let channel = OtlpBytesChannel::new(usize::try_from(events).unwrap_or(usize::MAX));
            let logs = support::unlimited_node_logs(Destination::Channel(channel.sender()));
            let layer = selftrace::OtlpTracingLayer::builder(Destination::Buffered(logs.clone()))
                .with_flood_limit(None)
                .with_denied_targets(selftrace::TRANSPORT_TARGETS.iter().copied())
                .build();
            let handle = layer.handle();
            tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
                produce(events, &mut third_party_event)
            });
            logs.flush(selftrace::FlushReason::Explicit);
            assert_eq!(handle.metrics().delivered, events);
            assert_eq!(logs.metrics().events_delivered, events);
            black_box(channel.receiver().drain().count());
        }
        "node_logs" => {
            let channel = OtlpBytesChannel::new(usize::try_from(events).unwrap_or(usize::MAX));
            let logs = support::unlimited_node_logs(Destination::Channel(channel.sender()));
            let node: SharedTelemetry = logs.shared(Node::new("receiver.otlp.0"));
            produce(events, &mut || {
                otel_info!(
                    node,
                    "component.event",
                    key1 = 42_i64,
                    key2 = "value",
                    key3 = 3.5_f64,
                    key4 = true,
                    "message text"
                )
            });
            assert_eq!(logs.metrics().events_received, events);
            black_box(channel.receiver().drain().count());
        }
        // Flood control on, every event within the budget: what the check
        // adds to a delivered event.
        "channel_flood_checked" => {
            let channel = OtlpBytesChannel::new(usize::try_from(events).unwrap_or(usize::MAX));
            let limit = FloodLimit::new(u32::MAX, FloodLimit::MAX_WINDOW).expect("a valid limit");
            let layer = selftrace::OtlpTracingLayer::builder(Destination::Channel(channel.sender()))
                .with_flood_limit(Some(limit))
                .build();
            let handle = layer.handle();
            tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
                produce(events, &mut third_party_event)
            });
            assert_eq!(handle.metrics().delivered, events);
            black_box(channel.receiver().drain().count());
        }
        // A storm past its budget: every event suppressed, none encoded.
        "suppressed" => {
            let channel = OtlpBytesChannel::new(16);
            let limit = FloodLimit::new(1, FloodLimit::MAX_WINDOW).expect("a valid limit");
            let layer = selftrace::OtlpTracingLayer::builder(Destination::Channel(channel.sender()))
                .with_flood_limit(Some(limit))
                .build();
            let handle = layer.handle();
            tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
                third_party_event(); // the budget
                produce(events, &mut third_party_event)
            });
            assert_eq!(handle.metrics().dropped(DropReason::Suppressed), events);
        }
        // Span fields on: the event inside 0, 1 or 3 spans of 2 fields.
        "span_fields_0" | "span_fields_1" | "span_fields_3" | "code_location" => {
            let spans: usize = scenario.strip_prefix("span_fields_").and_then(|n| n.parse().ok()).unwrap_or(0);
            let channel = OtlpBytesChannel::new(usize::try_from(events).unwrap_or(usize::MAX));
            let builder =
                selftrace::OtlpTracingLayer::builder(Destination::Channel(channel.sender())).with_flood_limit(None);
            let layer = if scenario == "code_location" {
                builder.with_code_location(true)
            } else {
                builder.with_span_fields(Some(selftrace::spans::SpanFields::all()))
            }
            .build();
            let handle = layer.handle();
            fn in_spans(spans: usize, f: &mut dyn FnMut()) {
                if spans == 0 {
                    return f();
                }
                let _span = tracing::info_span!("work", id = 7_i64, user = "alice").entered();
                in_spans(spans - 1, f)
            }
            tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
                in_spans(spans, &mut || produce(events, &mut third_party_event))
            });
            assert_eq!(handle.metrics().delivered, events);
            black_box(channel.receiver().drain().count());
        }
        "dropped" => {
            let channel = OtlpBytesChannel::new(1);
            let sender = channel.sender();
            let layer = support::unlimited_layer(Destination::Channel(sender));
            let handle = layer.handle();
            tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
                third_party_event(); // fills the channel
                produce(events, &mut third_party_event)
            });
            assert_eq!(handle.metrics().dropped(DropReason::ChannelFull), events);
        }
        // One child span (4 attributes) made and closed inside an entered
        // parent: selftrace's span layer into per-thread buffers as an
        // exporter of traces uses it.
        #[cfg(feature = "traces")]
        "spans_selftrace" => {
            let channel = OtlpBytesChannel::new(usize::try_from(events).unwrap_or(usize::MAX));
            // Node logs of spans, as an exporter of traces makes them.
            let logs = selftrace::NodeLogs::builder(Destination::Channel(channel.sender())).for_spans().build();
            let layer = selftrace::traces::OtlpSpanLayer::buffered(logs.clone()).build();
            let spans = layer.clone();
            tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
                let _parent = tracing::info_span!(target: "bench", "request").entered();
                produce(events, &mut support::child_span);
            });
            logs.flush(selftrace::FlushReason::Explicit);
            assert_eq!(spans.metrics().delivered, events + 1);
            black_box(channel.receiver().drain().count());
        }
        other => {
            // A bench binary: its usage error goes to stderr.
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "instructions: unknown scenario {other:?} (selftrace_channel, selftrace_buffered, node_logs, dropped, channel_flood_checked, suppressed, span_fields_0, span_fields_1, span_fields_3, code_location; with `traces`: spans_selftrace)"
                );
            }
            std::process::exit(2);
        }
    }
}
