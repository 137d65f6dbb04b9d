//! `log` records reach the layer through `tracing-log` (installed by
//! `SubscriberInitExt::try_init`) with their own target and level.

use selftrace_test_support::record as support;

use selftrace::{Destination, OtlpBytesChannel, OtlpTracingLayer};
use support::{Value, decode};
use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt};

#[test]
fn log_records_keep_their_target_level_and_message() {
    let channel = OtlpBytesChannel::new(16);
    let layer = OtlpTracingLayer::new(Destination::Channel(channel.sender()));
    tracing_subscriber::registry().with(layer).try_init().expect("first global default in this process");

    log::warn!(target: "legacy::db", "pool at {}%", 95);

    let bytes = channel.receiver().try_recv().expect("the log record arrived");
    let record = &decode(bytes.as_bytes()).records[0];
    assert_eq!(record.scope, "legacy::db", "the log target, not tracing-log's");
    assert_eq!(record.severity, Some(13));
    assert_eq!(record.body, Some(Value::Str("pool at 95%".into())));
    assert_eq!(record.event_name, None);
    assert!(record.attributes.iter().all(|(k, _)| !k.starts_with("log.")), "{:?}", record.attributes);
}
