//! The loop that reads the bridge's channel and emits every request.

use std::sync::{Arc, atomic::Ordering};

use opentelemetry::Context;
use selftrace::{OtlpBytes, OtlpBytesReceiver, pipeline::enter_pipeline_scope, raw::write_raw_note};

use super::{BridgeError, BridgeState, SdkEmitter, metrics::BridgeCounters};

pub(super) struct Consumer {
    pub(super) receiver: OtlpBytesReceiver,
    pub(super) emitter: SdkEmitter,
    pub(super) counters: Arc<BridgeCounters>,
    /// Records between two waits for the provider; 0: never.
    pub(super) flush_every: u64,
    /// Records emitted since the last wait.
    pub(super) since_flush: u64,
    pub(super) shared: Arc<BridgeState>,
    /// Dropped when the consumer ends, which wakes every waiter.
    pub(super) _done: flume::Sender<()>,
}

impl Consumer {
    pub(super) fn run(mut self) {
        let _pipeline = enter_pipeline_scope();
        while let Some(bytes) = self.receiver.recv() {
            self.handle(&bytes);
            if self.stopping() {
                break;
            }
        }
        self.finish();
    }

    pub(super) async fn run_async(mut self) {
        while let Some(bytes) = self.receiver.recv_async().await {
            {
                let _pipeline = enter_pipeline_scope();
                self.handle(&bytes);
            }
            if self.stopping() {
                break;
            }
        }
        let _pipeline = enter_pipeline_scope();
        self.finish();
    }

    fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::Acquire)
    }

    fn handle(&mut self, bytes: &OtlpBytes) {
        if bytes.is_empty() {
            return;
        }
        match self.emitter.emit_request(bytes.as_bytes()) {
            Ok(records) => self.since_flush += records as u64,
            Err(error) => {
                write_raw_note("bridge", format_args!("{} bytes: {error}; the records after it are lost", bytes.len()));
            }
        }
        if self.flush_every > 0 && self.since_flush >= self.flush_every {
            self.since_flush = 0;
            BridgeCounters::add(&self.counters.backpressure_flushes, 1);
            let _suppressed = Context::enter_telemetry_suppressed_scope();
            if let Err(error) = self.emitter.provider().force_flush() {
                BridgeCounters::add(&self.counters.failed_flushes, 1);
                write_raw_note("bridge", format_args!("waiting for the SDK to export failed: {error}"));
            }
        }
    }

    /// Emits what waits in the channel now, then flushes and shuts the
    /// provider down, and records the outcome.
    fn finish(mut self) {
        // Bounded by what is waiting now: producers that keep sending cannot
        // hold the shutdown up.
        for _ in 0..self.receiver.len() {
            match self.receiver.try_recv() {
                Some(bytes) => self.handle(&bytes),
                None => break,
            }
        }
        let result = {
            let _suppressed = Context::enter_telemetry_suppressed_scope();
            let provider = self.emitter.provider();
            let flushed = provider.force_flush().map_err(|e| BridgeError::provider("force_flush", e));
            let shut = provider.shutdown().map_err(|e| BridgeError::provider("shutdown", e));
            flushed.and(shut)
        };
        *self.shared.result.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
        // `self` drops here: the receiver closes the channel, then `_done`
        // disconnects and wakes `shutdown`.
    }
}
