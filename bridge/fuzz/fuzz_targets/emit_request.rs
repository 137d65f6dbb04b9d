//! Arbitrary bytes through the SDK emitter (the decoder and the writers
//! that read requests are fuzzed in `layer/fuzz`): no input may panic, loop
//! without end or allocate without bound in the OpenTelemetry SDK's hands.
//!
//! Run: `bash scripts/fuzz [seconds]` from the repository root.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use selftrace_bridge::sdk::SdkEmitter;

static PROVIDER: LazyLock<SdkLoggerProvider> = LazyLock::new(|| SdkLoggerProvider::builder().build());

fuzz_target!(|bytes: &[u8]| {
    let _ = SdkEmitter::new(PROVIDER.clone()).emit_request(bytes);
});
