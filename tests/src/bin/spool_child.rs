//! A process for the spool's crash test
//! (`tests/tests/spooled_logs_survive_an_outage_and_a_kill.rs`).
//!
//! `spool_child log DIR ENDPOINT COUNT`: logs events `seq = 0..COUNT`
//! through an exporter spooling to `DIR` (the endpoint is down), prints
//! `SPOOLED COUNT` once the spool has them, then logs `seq = COUNT..` until
//! it is killed.
//!
//! `spool_child deliver DIR ENDPOINT`: opens the spool, waits until what it
//! found is delivered (at most 60 s), shuts down and prints its final
//! metrics as one `METRICS k=v ...` line.
#![expect(clippy::print_stdout, reason = "the test reads what this process prints")]

use std::{
    io::Write as _,
    process::ExitCode,
    time::{Duration, Instant},
};

use selftrace_bridge::{ExporterMetrics, OtlpExporter, OtlpExporterBuilder, export::RetryPolicy};
use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt};

fn builder(dir: &str, endpoint: &str) -> OtlpExporterBuilder {
    OtlpExporter::builder()
        .with_env(false)
        .with_endpoint(endpoint)
        .with_max_delay(Duration::from_millis(20))
        .with_max_batch_records(64)
        .with_retry(RetryPolicy {
            initial: Duration::from_millis(50),
            max_interval: Duration::from_millis(200),
            max_elapsed: Duration::from_secs(1),
        })
        .with_spool(dir)
        .with_spool_sync(Duration::from_millis(50))
}

fn wait_until(exporter: &OtlpExporter, timeout: Duration, done: impl Fn(&ExporterMetrics) -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if done(&exporter.metrics()) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn log(dir: &str, endpoint: &str, count: u64) -> ExitCode {
    let exporter = match builder(dir, endpoint).build() {
        Ok(exporter) => exporter,
        Err(e) => {
            println!("ERROR {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing_subscriber::registry().with(exporter.layer_builder().with_flood_limit(None).build()).init();
    for seq in 0..count {
        tracing::info!(target: "crash", seq, "numbered event");
    }
    if !wait_until(&exporter, Duration::from_secs(30), |m| m.records_spooled >= count) {
        println!("ERROR the spool did not get {count} records: {:?}", exporter.metrics());
        return ExitCode::FAILURE;
    }
    // Past a sync too: the test's guarantee holds for a machine crash as well.
    std::thread::sleep(Duration::from_millis(150));
    println!("SPOOLED {count}");
    let _ = std::io::stdout().flush();
    for seq in count.. {
        tracing::info!(target: "crash", seq, "numbered event");
        if seq % 64 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    ExitCode::SUCCESS
}

fn deliver(dir: &str, endpoint: &str) -> ExitCode {
    let exporter = match builder(dir, endpoint).build() {
        Ok(exporter) => exporter,
        Err(e) => {
            println!("ERROR {e}");
            return ExitCode::FAILURE;
        }
    };
    wait_until(&exporter, Duration::from_secs(60), |m| m.spool_records == 0 && m.records_in_flight == 0);
    let m = match exporter.shutdown() {
        Ok(m) => m,
        Err(e) => {
            println!("ERROR {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "METRICS recovered={} redelivered={} acknowledged={} corrupt={} in_flight={} spool_records={} dropped={}",
        m.records_recovered,
        m.records_redelivered,
        m.records_acknowledged,
        m.spool_corrupt_frames,
        m.records_in_flight,
        m.spool_records,
        m.dropped()
    );
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["log", dir, endpoint, count] => match count.parse() {
            Ok(count) => log(dir, endpoint, count),
            Err(_) => ExitCode::FAILURE,
        },
        ["deliver", dir, endpoint] => deliver(dir, endpoint),
        _ => {
            println!("usage: spool_child log DIR ENDPOINT COUNT | deliver DIR ENDPOINT");
            ExitCode::FAILURE
        }
    }
}
