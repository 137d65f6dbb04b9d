//! Router, timer and shutdown behaviour of the receiver.
#![allow(clippy::unwrap_used)]

use selftrace_test_support::host as support;

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use selftrace::{Node, OtlpBytes, otel_info};
use selftrace_itr::{
    InternalTelemetry, ReceiverConfig, ReceiverHost,
    receiver::{Control, OutputClosed, Overflow, ReceiverMetrics},
};
use support::{TokioHost, assert_in_order_per_scope, decode, decode_all};
use tokio::sync::mpsc;

fn paused() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap()
}

fn config(flush_ms: u64) -> ReceiverConfig {
    ReceiverConfig { flush_interval: Duration::from_millis(flush_ms), ..ReceiverConfig::default() }
}

/// Records the router dropped for a receiver, and what reached it, add up to
/// what was offered.
fn assert_accounted(m: &ReceiverMetrics) {
    assert_eq!(m.offered, m.accepted + m.dropped_newest, "{m:?}");
    assert_eq!(
        m.records_received,
        m.records_sent + m.dropped_output_closed + m.dropped_deadline + m.dropped_unsent + m.pending_records,
        "{m:?}"
    );
}

#[test]
fn a_stalled_receiver_costs_the_others_nothing() {
    for overflow in [Overflow::DropNewest, Overflow::DropOldest] {
        let telemetry = InternalTelemetry::builder().with_flood_limit(None).build();
        let live = telemetry.receiver("live", ReceiverConfig { channel_capacity: 1000, ..config(10) }).unwrap();
        // Mounted but never run: its queue of 4 fills and stays full.
        let stalled =
            telemetry.receiver("stalled", ReceiverConfig { channel_capacity: 4, overflow, ..config(10) }).unwrap();

        const THREADS: u64 = 4;
        const PER_THREAD: u64 = 200;
        let runtime = paused();
        let batches = runtime.block_on(async {
            let (output, mut downstream) = mpsc::channel(1024);
            let (control, control_rx) = mpsc::channel(1);
            let running = tokio::spawn(live.run(TokioHost { output, control: control_rx }));
            // Producers on plain threads, flushing every record: each flush
            // is one request to the router. They never wait on anything.
            let producers: Vec<_> = (0..THREADS)
                .map(|t| {
                    let node_logs = telemetry.node_logs().clone();
                    std::thread::spawn(move || {
                        let node = node_logs.shared(Node::new(format!("producer.{t}")));
                        for seq in 0..PER_THREAD {
                            otel_info!(node, "tick", seq = seq);
                            node_logs.flush(selftrace::FlushReason::Explicit);
                        }
                    })
                })
                .collect();
            for producer in producers {
                producer.join().unwrap();
            }
            control.send(Control::shutdown_within(Duration::from_secs(5))).await.unwrap();
            let metrics = running.await.unwrap();
            assert_eq!(metrics.records_sent, THREADS * PER_THREAD, "{metrics:?}");
            let mut batches = Vec::new();
            while let Ok(batch) = downstream.try_recv() {
                batches.push(batch);
            }
            batches
        });

        let records = decode_all(&batches);
        let counts = assert_in_order_per_scope(&records);
        assert!(counts.values().all(|&n| n == PER_THREAD), "{counts:?}");

        let metrics = telemetry.metrics();
        let (live, stalled_m) = (&metrics.receivers[0], &metrics.receivers[1]);
        assert_accounted(live);
        assert_accounted(stalled_m);
        assert_eq!(live.dropped_newest + live.dropped_oldest, 0);
        assert_eq!(stalled_m.offered, live.offered);
        assert_eq!(stalled_m.queued, 4);
        match overflow {
            Overflow::DropNewest => {
                assert_eq!(stalled_m.accepted, 4);
                assert_eq!(stalled_m.dropped_newest, stalled_m.offered - 4);
            }
            _ => {
                assert_eq!(stalled_m.accepted, stalled_m.offered);
                assert_eq!(stalled_m.dropped_oldest, stalled_m.offered - 4);
            }
        }
        // Each request is one record: the router counts them too.
        assert_eq!(stalled_m.router_dropped_records, stalled_m.offered - 4);
        // The producers' view: every flush was taken (by the live receiver).
        let node_logs = &metrics.node_logs;
        assert_eq!(node_logs.events_delivered, THREADS * PER_THREAD);
        assert_eq!(node_logs.events_dropped_total(), 0);

        // Now run the stalled one: it holds the first four requests (drop
        // newest) or the newest four, the very last one included (drop oldest).
        let held = paused().block_on(async {
            let (output, mut downstream) = mpsc::channel(16);
            let (control, control_rx) = mpsc::channel(1);
            control.send(Control::shutdown_within(Duration::from_secs(1))).await.unwrap();
            let metrics = stalled.run(TokioHost { output, control: control_rx }).await;
            assert_accounted(&metrics);
            let mut batches = Vec::new();
            while let Ok(batch) = downstream.try_recv() {
                batches.push(batch);
            }
            decode_all(&batches)
        });
        assert_eq!(held.len(), 4);
        let seqs: Vec<u64> = held.iter().map(|r| r.attribute("seq").unwrap().parse().unwrap()).collect();
        match overflow {
            Overflow::DropNewest => assert!(seqs.iter().all(|&s| s < 4), "{seqs:?}"),
            _ => assert!(seqs.contains(&(PER_THREAD - 1)), "{seqs:?}"),
        }
    }
}

#[test]
fn with_no_receiver_left_producers_see_a_closed_channel() {
    let telemetry = InternalTelemetry::builder().with_flood_limit(None).build();
    let receiver = telemetry.receiver("itr", config(10)).unwrap();
    let node = telemetry.node_logs().shared(Node::new("n"));
    otel_info!(node, "queued.never_sent");
    telemetry.node_logs().flush(selftrace::FlushReason::Explicit);
    drop(receiver);
    let metrics = telemetry.metrics();
    assert_eq!(metrics.receivers[0].dropped_unsent, 1);
    assert_accounted(&metrics.receivers[0]);

    otel_info!(node, "lost");
    telemetry.node_logs().flush(selftrace::FlushReason::Explicit);
    let node_logs = telemetry.node_logs().metrics();
    assert_eq!(node_logs.events_dropped(selftrace::DropReason::ChannelClosed), 1);
    assert_eq!(node_logs.events_received, 2);
}

#[test]
fn the_timer_flushes_buffers_on_its_interval() {
    let runtime = paused();
    runtime.block_on(async {
        let telemetry = InternalTelemetry::builder().with_flood_limit(None).build();
        let receiver = telemetry.receiver("itr", config(1000)).unwrap();
        let (output, mut downstream) = mpsc::channel(16);
        let (control, control_rx) = mpsc::channel(1);
        let running = tokio::spawn(receiver.run(TokioHost { output, control: control_rx }));
        tokio::task::yield_now().await; // the receiver starts its timer now

        let node = telemetry.node_logs().shared(Node::new("n"));
        otel_info!(node, "buffered", seq = 0_u64);
        tokio::time::sleep(Duration::from_millis(999)).await;
        assert!(downstream.try_recv().is_err(), "flushed before the interval");
        assert_eq!(telemetry.node_logs().metrics().events_buffered(), 1);

        tokio::time::sleep(Duration::from_millis(2)).await;
        let batch = downstream.try_recv().expect("flushed at the interval");
        assert_eq!(decode(batch.as_bytes()).len(), 1);
        let metrics = telemetry.metrics();
        assert_eq!(metrics.receivers[0].timer_flush_count, 1);
        assert_eq!(metrics.node_logs.timer_flush_count, 1);

        // Host ticks flush too.
        otel_info!(node, "ticked", seq = 1_u64);
        control.send(Control::TimerTick).await.unwrap();
        let batch = downstream.recv().await.unwrap();
        assert_eq!(decode(batch.as_bytes())[0].name, "ticked");
        assert_eq!(telemetry.metrics().receivers[0].timer_flush_count, 2);

        control.send(Control::shutdown_within(Duration::from_secs(1))).await.unwrap();
        running.await.unwrap();
    });
}

#[test]
fn shutdown_drains_every_thread_buffer() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let telemetry = InternalTelemetry::builder().with_flood_limit(None).build();
    // A long interval: nothing is flushed by the timer during the test.
    let receiver = telemetry.receiver("itr", config(3_600_000)).unwrap();
    let (output, mut downstream) = mpsc::channel(64);
    let (control, control_rx) = mpsc::channel(1);
    let collected = runtime.block_on(async {
        let running = tokio::spawn(receiver.run(TokioHost { output, control: control_rx }));
        // Records in the shared buffers of several threads that stay alive.
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
        let hold_rx = Arc::new(std::sync::Mutex::new(hold_rx));
        let threads: Vec<_> = (0..3)
            .map(|t| {
                let (node_logs, done_tx, hold_rx) = (telemetry.node_logs().clone(), done_tx.clone(), hold_rx.clone());
                std::thread::spawn(move || {
                    let node = node_logs.shared(Node::new(format!("thread.{t}")));
                    for seq in 0..50_u64 {
                        otel_info!(node, "buffered", seq = seq);
                    }
                    done_tx.send(()).unwrap();
                    let _ = hold_rx.lock().unwrap().recv(); // stay alive until shutdown is done
                })
            })
            .collect();
        for _ in 0..3 {
            done_rx.recv().unwrap();
        }
        assert_eq!(telemetry.node_logs().metrics().events_buffered(), 150);
        control.send(Control::shutdown_within(Duration::from_secs(5))).await.unwrap();
        let metrics = running.await.unwrap();
        drop(hold_tx);
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(metrics.records_sent, 150, "{metrics:?}");
        assert_eq!(metrics.timer_flush_count, 0);
        let mut batches = Vec::new();
        while let Ok(batch) = downstream.try_recv() {
            batches.push(batch);
        }
        batches
    });
    let counts = assert_in_order_per_scope(&decode_all(&collected));
    assert_eq!(counts.values().sum::<u64>(), 150);
}

/// An output that never takes anything.
struct Stuck {
    control: mpsc::Receiver<Control>,
}

struct Never;

impl Future for Never {
    type Output = Result<(), OutputClosed>;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Pending
    }
}

impl ReceiverHost for Stuck {
    type Sleep = tokio::time::Sleep;

    fn send(&mut self, _: OtlpBytes) -> impl Future<Output = Result<(), OutputClosed>> {
        Never
    }
    async fn recv_control(&mut self) -> Control {
        self.control.recv().await.unwrap()
    }
    fn sleep(&self, duration: Duration) -> tokio::time::Sleep {
        tokio::time::sleep(duration)
    }
}

#[test]
fn what_cannot_be_sent_by_the_deadline_is_dropped_and_counted() {
    let runtime = paused();
    runtime.block_on(async {
        let telemetry = InternalTelemetry::builder().with_flood_limit(None).build();
        let receiver = telemetry.receiver("itr", config(3_600_000)).unwrap();
        let (control, control_rx) = mpsc::channel(1);
        let running = tokio::spawn(receiver.run(Stuck { control: control_rx }));
        let node = telemetry.node_logs().shared(Node::new("n"));
        for seq in 0..10_u64 {
            otel_info!(node, "stuck", seq = seq);
        }
        control.send(Control::shutdown_within(Duration::from_secs(30))).await.unwrap();
        let metrics = running.await.unwrap();
        assert_eq!(metrics.records_received, 10);
        assert_eq!(metrics.dropped_deadline, 10);
        assert_eq!(metrics.records_sent, 0);
        assert_accounted(&metrics);
    });
}

#[test]
fn a_closed_output_stops_the_receiver_and_counts_what_it_held() {
    let runtime = paused();
    runtime.block_on(async {
        let telemetry = InternalTelemetry::builder().with_flood_limit(None).build();
        let receiver = telemetry.receiver("itr", config(100)).unwrap();
        let (output, downstream) = mpsc::channel(1);
        drop(downstream);
        let (_control, control_rx) = mpsc::channel(1);
        let running = tokio::spawn(receiver.run(TokioHost { output, control: control_rx }));
        let node = telemetry.node_logs().shared(Node::new("n"));
        for seq in 0..5_u64 {
            otel_info!(node, "nowhere", seq = seq);
        }
        let metrics = running.await.unwrap();
        assert_eq!(metrics.dropped_output_closed, 5, "{metrics:?}");
        assert_accounted(&metrics);
    });
}

#[test]
fn malformed_requests_are_counted_and_never_sent() {
    let runtime = paused();
    runtime.block_on(async {
        let telemetry = InternalTelemetry::builder().with_flood_limit(None).build();
        let receiver = telemetry.receiver("itr", config(100)).unwrap();
        let selftrace::Destination::Channel(sender) = telemetry.destination() else { unreachable!() };
        sender.try_send(OtlpBytes::from_bytes(bytes::Bytes::from_static(&[0x0a, 0x7f, 0x00]))).unwrap();
        let (output, mut downstream) = mpsc::channel(4);
        let (control, control_rx) = mpsc::channel(1);
        let running = tokio::spawn(receiver.run(TokioHost { output, control: control_rx }));
        control.send(Control::shutdown_within(Duration::from_secs(1))).await.unwrap();
        let metrics = running.await.unwrap();
        assert_eq!(metrics.malformed_requests, 1);
        assert_eq!(metrics.batches_sent, 0);
        assert!(downstream.try_recv().is_err());
    });
}

#[test]
fn producers_that_never_stop_do_not_keep_the_receiver_from_shutting_down() {
    use std::sync::atomic::{AtomicBool, Ordering};

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let telemetry = InternalTelemetry::builder().with_flood_limit(None).build();
    let receiver = telemetry.receiver("itr", ReceiverConfig { channel_capacity: 64, ..config(1) }).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (node_logs, stop) = (telemetry.node_logs().clone(), stop.clone());
        std::thread::spawn(move || {
            let node = node_logs.shared(Node::new("busy"));
            let mut seq = 0_u64;
            while !stop.load(Ordering::Relaxed) {
                otel_info!(node, "busy", seq = seq);
                node_logs.flush(selftrace::FlushReason::Explicit);
                seq += 1;
            }
        })
    };
    let metrics = runtime.block_on(async {
        let (output, mut downstream) = mpsc::channel(16);
        let (control, control_rx) = mpsc::channel(1);
        let running = tokio::spawn(receiver.run(TokioHost { output, control: control_rx }));
        let draining = tokio::spawn(async move { while downstream.recv().await.is_some() {} });
        tokio::time::sleep(Duration::from_millis(50)).await;
        control.send(Control::shutdown_within(Duration::from_secs(5))).await.unwrap();
        let metrics = running.await.unwrap();
        draining.await.unwrap();
        metrics
    });
    stop.store(true, Ordering::Relaxed);
    producer.join().unwrap();
    assert!(metrics.records_sent > 0);
    let after = telemetry.metrics();
    let receiver = &after.receivers[0];
    assert_accounted(receiver);
    // Every record the producer made is somewhere in the counts: with one
    // receiver (one record per request), what its queue took is what the
    // node logs delivered, and what it dropped the node logs saw refused.
    let node_logs = &after.node_logs;
    assert_eq!(node_logs.events_received, node_logs.events_delivered + node_logs.events_dropped_total());
    assert_eq!(node_logs.events_delivered, receiver.accepted, "{receiver:?}");
    assert_eq!(node_logs.events_dropped(selftrace::DropReason::ChannelFull), receiver.dropped_newest);
    assert_eq!(receiver.accepted, receiver.records_received);
}
