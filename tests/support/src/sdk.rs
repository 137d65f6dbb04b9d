//! Test helpers for the bridge: an SDK log processor that keeps what it is
//! given (the SDK's in-memory exporter forgets its records on shutdown).

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::{
    error::OTelSdkResult,
    logs::{LogProcessor, SdkLogRecord, SdkLoggerProvider},
};

/// Keeps every record and its scope, in the order emitted.
#[derive(Debug, Clone, Default)]
pub struct Keep(Arc<Mutex<Vec<(SdkLogRecord, InstrumentationScope)>>>, Arc<AtomicUsize>);

impl Keep {
    pub fn provider(&self) -> SdkLoggerProvider {
        SdkLoggerProvider::builder().with_log_processor(self.clone()).build()
    }

    pub fn records(&self) -> Vec<(SdkLogRecord, InstrumentationScope)> {
        self.0.lock().expect("not poisoned").clone()
    }

    /// How many times the provider shut this processor down.
    pub fn shutdowns(&self) -> usize {
        self.1.load(Ordering::Relaxed)
    }

    /// How many records it kept.
    pub fn len(&self) -> usize {
        self.0.lock().expect("not poisoned").len()
    }

    /// Whether it kept none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl LogProcessor for Keep {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        self.0.lock().expect("not poisoned").push((record.clone(), scope.clone()));
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.1.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
