//! Instructions per record of the SDK bridge, counted by callgrind: the
//! driver `scripts/instructions` runs, next to the layer's
//! (`layer/benches/instructions.rs`, whose `appender_noop` scenario is the
//! floor both compare with). Not a criterion bench: `instructions <scenario>
//! <records>` emits `records` records inside `produce`, the only function
//! callgrind counts in.
//!
//! Scenarios, each on the request selftrace's layer makes of the design's
//! event (a name, a target, four attributes, a message):
//!
//! * `bridge_one_record`: `SdkEmitter::emit_request` of a one-record
//!   request (the third-party path's requests), `records` times;
//! * `bridge_100_records`: the same for a request of 100 records (node logs
//!   batches), `records / 100` times: instructions per record.
//!
//! Latest results: see `scripts/instructions` and the header of
//! `sdk_path.rs`.

use std::hint::black_box;

use opentelemetry_sdk::logs::SdkLoggerProvider;
use selftrace_bridge::sdk::SdkEmitter;
use selftrace_test_support::bench::{NoopProcessor, hundred_record_request, one_event_request, produce, scenario_args};

fn main() {
    let (scenario, records) = scenario_args();
    let (request, per_request) = match scenario.as_str() {
        "bridge_one_record" => (one_event_request(), 1),
        "bridge_100_records" => (hundred_record_request(), 100),
        other => {
            // A bench binary: its usage error goes to stderr.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("instructions: unknown scenario {other:?} (bridge_one_record, bridge_100_records)");
            }
            std::process::exit(2);
        }
    };
    let mut emitter = SdkEmitter::new(SdkLoggerProvider::builder().with_log_processor(NoopProcessor).build());
    // What callgrind counts: `records / per_request` emits of `request`.
    produce(records / per_request, &mut || {
        black_box(emitter.emit_request(black_box(request.as_bytes())).ok());
    });
    assert_eq!(emitter.metrics().records_emitted, records - records % per_request);
}
