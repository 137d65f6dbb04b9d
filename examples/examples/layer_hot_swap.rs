//! The demo: several threads and a `log`-based library log through
//! `OtlpTracingLayer`; a consumer thread receives the OTLP bytes, decodes them
//! and prints them. Then a burst overflows a tiny channel (raw logger, counted
//! drops), the destination is hot-swapped to the console and back, and the
//! counters are printed and checked: produced == delivered + dropped.
//!
//! Run: `cargo run -p selftrace-examples --example layer_hot_swap [-- --seconds N]`

#![expect(clippy::print_stdout, reason = "the demo prints what it shows")]

use std::{
    io::Write as _,
    sync::atomic::{AtomicU64, Ordering},
    thread,
    time::{Duration, Instant},
};

use selftrace::{Destination, DropReason, OtlpBytesChannel, OtlpTracingLayer, raw::raw_logger_metrics};
use tracing_subscriber::{EnvFilter, Layer as _, layer::SubscriberExt, util::SubscriberInitExt};

static PRODUCED: AtomicU64 = AtomicU64::new(0);

/// Stands in for a third-party library that logs through the `log` crate.
mod legacy_storage {
    pub(crate) fn flush(segment: u32) {
        log::info!(target: "legacy_storage", "flushed segment {segment}");
        super::PRODUCED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

fn worker(id: usize, events: u64) {
    for i in 0..events {
        tracing::info!(
            name: "worker.batch",
            target: "demo::worker",
            worker = id,
            batch = i,
            latency_ms = 0.25 * i as f64,
            ok = true,
            "processed batch"
        );
        PRODUCED.fetch_add(1, Ordering::Relaxed);
        if i % 3 == 0 {
            legacy_storage::flush(i as u32);
        }
        thread::sleep(Duration::from_millis(20));
    }
    tracing::warn!(target: "demo::worker", worker = id, "worker done");
    PRODUCED.fetch_add(1, Ordering::Relaxed);
}

fn main() {
    let seconds: u64 =
        std::env::args().skip_while(|a| a != "--seconds").nth(1).and_then(|s| s.parse().ok()).unwrap_or(2);

    // 1. The layer, sending every event as one OTLP request into a channel.
    // Flood control (on by default, shown by the demo) is off: this example
    // shows the channel's drop paths, which its workers' loops would not
    // reach past 10 events per callsite.
    let channel = OtlpBytesChannel::new(selftrace::DEFAULT_CHANNEL_CAPACITY);
    let layer = OtlpTracingLayer::builder(Destination::Channel(channel.sender()))
        .with_service_name("selftrace-demo")
        .with_flood_limit(None)
        .build();
    let handle = layer.handle();
    tracing_subscriber::registry().with(layer.with_filter(EnvFilter::new("info"))).init();

    // 2. The consumer: decode each request and print it.
    let receiver = channel.receiver();
    let consumer = thread::spawn(move || {
        let (mut requests, mut records, mut bytes) = (0u64, 0u64, 0u64);
        let stdout = std::io::stdout();
        let mut lines = String::new();
        while let Some(request) = receiver.recv() {
            requests += 1;
            bytes += request.len() as u64;
            // The SDK bridge's zero-copy decoder, printing console lines.
            lines.clear();
            let decoded = selftrace::console::write_request(&mut lines, request.as_bytes());
            let mut out = stdout.lock();
            let _ = out.write_all(lines.as_bytes());
            match decoded {
                Ok(n) => records += n as u64,
                Err(e) => {
                    let _ = writeln!(out, "undecodable request: {e}");
                }
            }
        }
        (requests, records, bytes)
    });

    println!("== three workers log for {seconds}s; the consumer prints what arrives as OTLP bytes");
    let started = Instant::now();
    let per_worker = (seconds * 1000 / 20).max(3);
    let workers: Vec<_> = (0..3).map(|id| thread::spawn(move || worker(id, per_worker))).collect();
    for w in workers {
        let _ = w.join();
    }

    // 3. Hot swap: a few events to the console, then back to the channel.
    println!("== hot swap: the next 2 events go to the console (stderr), then back to the channel");
    let previous = handle.set(Destination::Console).expect("the layer is alive");
    tracing::info!(target: "demo", "this line is printed by the console destination");
    tracing::info!(target: "demo", swapped = true, "so is this one");
    PRODUCED.fetch_add(2, Ordering::Relaxed);
    handle.set(previous).expect("the layer is alive");

    // 4. Overload: a burst into a 4-request channel nobody reads.
    println!("== overload: a burst of 40 events into a 4-request channel nobody reads");
    let tiny = OtlpBytesChannel::new(4);
    let previous = handle.set(Destination::Channel(tiny.sender())).expect("the layer is alive");
    for i in 0..40 {
        tracing::error!(target: "demo::burst", i, "burst");
    }
    PRODUCED.fetch_add(40, Ordering::Relaxed);
    handle.set(previous).expect("the layer is alive");
    let stranded = tiny.receiver().len() as u64;

    // 5. Shut down: swap to Noop so the channel's last sender goes, then drain.
    handle.set(Destination::Noop).expect("the layer is alive");
    drop(channel);
    let (requests, records, bytes) = consumer.join().expect("consumer");

    let m = handle.metrics();
    let produced = PRODUCED.load(Ordering::Relaxed);
    println!("== after {:.1}s", started.elapsed().as_secs_f64());
    println!("produced events          {produced}");
    println!("delivered                {}", m.delivered);
    for reason in DropReason::ALL {
        println!("dropped {:<16} {}", reason.as_str(), m.dropped(reason));
    }
    println!("values truncated         {}", m.truncated_values);
    println!(
        "consumer: {requests} requests, {records} records, {bytes} bytes (+{stranded} stranded in the burst channel)"
    );
    let raw = raw_logger_metrics();
    println!("raw logger: {} lines written, {} suppressed", raw.written, raw.suppressed);

    let delivered_ok = m.delivered == records + stranded + 2; // + 2 console lines
    let invariant_ok = produced == m.delivered + m.dropped_total();
    println!(
        "check: produced == delivered + dropped: {}; delivered == printed + console + stranded: {}",
        if invariant_ok { "ok" } else { "FAILED" },
        if delivered_ok { "ok" } else { "FAILED" }
    );
    if !(invariant_ok && delivered_ok) {
        std::process::exit(1);
    }
}
