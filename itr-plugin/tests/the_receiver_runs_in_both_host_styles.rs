//! The same receiver mounted in a multi-threaded tokio host (shared nodes)
//! and in a thread-per-core host (local nodes, one receiver per core):
//! every record arrives, with its node as scope, in order per node, and
//! decodes with opentelemetry-proto.
#![allow(clippy::unwrap_used)]

use selftrace_test_support::host as support;

use std::{cell::RefCell, rc::Rc, time::Duration};

use selftrace::{Node, otel_info};
use selftrace_itr::{InternalTelemetry, ReceiverConfig, receiver::Control};
use support::{LocalHost, TokioHost, assert_in_order_per_scope, decode_all};
use tokio::sync::mpsc;

const NODES: usize = 4;
const PER_NODE: u64 = 300;

fn config() -> ReceiverConfig {
    // Small batches so that a run sends many of them.
    ReceiverConfig { flush_interval: Duration::from_millis(5), max_batch_records: 64, ..ReceiverConfig::default() }
}

#[test]
fn a_multi_threaded_host_with_shared_nodes() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let telemetry = InternalTelemetry::builder().with_flood_limit(None).with_service_name("engine").build();
    let receiver = telemetry.receiver("itr", config()).unwrap();

    let (output, mut downstream) = mpsc::channel(8);
    let (control, control_rx) = mpsc::channel(1);
    let batches = runtime.block_on(async {
        // `tokio::spawn` needs a `Send` future: the receiver's is, here.
        let running = tokio::spawn(receiver.run(TokioHost { output, control: control_rx }));
        let exporter = tokio::spawn(async move {
            let mut batches = Vec::new();
            while let Some(batch) = downstream.recv().await {
                batches.push(batch);
            }
            batches
        });
        let nodes: Vec<_> = (0..NODES)
            .map(|n| {
                let node = telemetry.node_logs().shared(Node::new(format!("processor.{n}")));
                tokio::spawn(async move {
                    for seq in 0..PER_NODE {
                        otel_info!(node, "item.processed", seq = seq, "processed an item");
                        if seq % 7 == 0 {
                            tokio::task::yield_now().await; // move between worker threads
                        }
                    }
                })
            })
            .collect();
        for node in nodes {
            node.await.unwrap();
        }
        control.send(Control::shutdown_within(Duration::from_secs(10))).await.unwrap();
        let metrics = running.await.unwrap();
        assert_eq!(metrics.records_sent, NODES as u64 * PER_NODE);
        assert_eq!(metrics.records_received, metrics.records_sent);
        assert!(metrics.batches_sent > 1, "{metrics:?}");
        exporter.await.unwrap()
    });

    let records = decode_all(&batches);
    let counts = assert_in_order_per_scope(&records);
    assert_eq!(counts.len(), NODES);
    assert!(counts.values().all(|&n| n == PER_NODE), "{counts:?}");
    assert!(
        records.iter().all(|r| r.service == "engine" && r.name == "item.processed" && r.body == "processed an item")
    );

    let metrics = telemetry.metrics();
    let node_logs = &metrics.node_logs;
    assert_eq!(node_logs.events_received, NODES as u64 * PER_NODE);
    assert_eq!(node_logs.events_delivered, node_logs.events_received);
    assert_eq!(metrics.receivers[0].records_sent, NODES as u64 * PER_NODE);
}

#[test]
fn a_thread_per_core_host_with_local_nodes() {
    let (tx, rx) = std::sync::mpsc::channel();
    let cores: Vec<_> = (0..2)
        .map(|core| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                let local = tokio::task::LocalSet::new();
                local.block_on(&runtime, async move {
                    // One telemetry and one receiver per core.
                    let telemetry = InternalTelemetry::builder()
                        .with_flood_limit(None)
                        .with_service_name(format!("core-{core}"))
                        .build();
                    let receiver = telemetry.receiver(&format!("itr.{core}"), config()).unwrap();
                    let output = Rc::new(RefCell::new(Vec::new()));
                    let (control, control_rx) = mpsc::unbounded_channel();
                    let host = LocalHost { output: output.clone(), control: control_rx };
                    // `spawn_local`: the host's futures hold `Rc`s.
                    let running = tokio::task::spawn_local(receiver.run(host));
                    let nodes: Vec<_> = (0..NODES / 2)
                        .map(|n| {
                            let node = telemetry.node_logs().local(Node::new(format!("core{core}.node{n}")));
                            tokio::task::spawn_local(async move {
                                for seq in 0..PER_NODE {
                                    otel_info!(node, "item.processed", seq = seq);
                                    if seq % 5 == 0 {
                                        tokio::task::yield_now().await;
                                    }
                                }
                            })
                        })
                        .collect();
                    for node in nodes {
                        node.await.unwrap();
                    }
                    control.send(Control::shutdown_within(Duration::from_secs(10))).unwrap();
                    let metrics = running.await.unwrap();
                    assert_eq!(metrics.records_sent, (NODES / 2) as u64 * PER_NODE, "{metrics:?}");
                    let node_logs = telemetry.node_logs().metrics();
                    assert_eq!(node_logs.events_delivered, node_logs.events_received);
                    tx.send(output.take()).unwrap();
                });
            })
        })
        .collect();
    drop(tx);
    for core in cores {
        core.join().unwrap();
    }
    let batches: Vec<_> = rx.iter().flatten().collect();
    let records = decode_all(&batches);
    let counts = assert_in_order_per_scope(&records);
    assert_eq!(counts.len(), NODES);
    assert!(counts.values().all(|&n| n == PER_NODE), "{counts:?}");
    // Each core's records carry its own resource.
    for record in &records {
        let core = &record.scope[4..5];
        assert_eq!(record.service, format!("core-{core}"));
    }
}
