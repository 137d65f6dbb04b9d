//! `http/json`: the exporter writes each batch as OTLP/JSON from its bytes
//! (selftrace's one JSON writer) and posts it as `application/json`; the
//! peer parses it with protobuf's own `json_format` into the same
//! `ExportLogsServiceRequest` the protobuf path sends, answers in JSON, and
//! its `partialSuccess` is read.

use std::time::Duration;

use selftrace_bridge::export::{Compression, Protocol};
use selftrace_tests::{
    export::{assert_accounted, builder, expected_lines, feed, produce},
    peer::Peer,
    wait_for,
};

#[test]
fn json_batches_arrive_field_by_field_as_the_protobuf_ones() {
    for compression in [Compression::None, Compression::Gzip] {
        let peer = Peer::start("http", 0, "[]");
        let exporter = builder(&peer.url(""))
            .with_protocol(Protocol::HttpJson)
            .with_compression(compression)
            .with_header("x-tenant", "t1")
            .with_max_batch_records(4)
            .build()
            .expect("the exporter starts");
        let requests = produce(10);
        feed(&exporter, &requests);
        wait_for(&exporter, |m| m.records_acknowledged == 10);
        let got = peer.requests(10, Duration::from_secs(10));
        let m = exporter.shutdown().expect("clean shutdown");
        assert_eq!((m.records_acknowledged, m.malformed_responses), (10, 0), "{m:?}");
        assert_accounted(10, &m);
        let gzip = compression == Compression::Gzip;
        assert!(got.iter().all(|r| r.json && r.gzip == gzip && r.headers == ["x-tenant=t1"]), "{got:?}");
        // Batches of at most 4: the merger's batches, as JSON.
        assert!(got.len() >= 3, "{got:?}");
        let records: Vec<String> = got.iter().flat_map(|r| r.records.iter().cloned()).collect();
        assert_eq!(records, expected_lines(&requests));
    }
}

#[test]
fn a_json_partial_success_is_counted() {
    let peer = Peer::start("http", 0, r#"[{"rejected": 2, "message": "two too many"}]"#);
    let exporter = builder(&peer.url("/v1/logs"))
        .with_protocol(Protocol::HttpJson)
        .with_max_delay(Duration::from_secs(60))
        .with_max_batch_records(5)
        .build()
        .expect("the exporter starts");
    feed(&exporter, &produce(5));
    let m = wait_for(&exporter, |m| m.records_acknowledged + m.records_rejected == 5);
    exporter.shutdown().expect("clean shutdown");
    assert_eq!((m.records_acknowledged, m.records_rejected, m.malformed_responses), (3, 2, 0), "{m:?}");
    assert_accounted(5, &m);
}
