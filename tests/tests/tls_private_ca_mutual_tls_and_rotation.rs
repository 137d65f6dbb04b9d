//! The native exporter's TLS against real servers: Python's `ssl` (an
//! HTTPS OTLP endpoint, `CERT_REQUIRED` for mutual TLS) and `grpcio`
//! (`ssl_server_credentials(..., require_client_auth=True)`), with
//! certificates made by `openssl` for each test: a private CA alone, a
//! client certificate, each way a handshake fails (counted and noted), and
//! client certificate files replaced while the exporter runs.

use std::{path::PathBuf, time::Duration};

use selftrace_bridge::{
    OtlpExporter,
    export::{Protocol, RetryPolicy, TlsConfig},
};
use selftrace_tests::{
    export::{assert_accounted, builder, expected_lines, feed, produce},
    peer::{Peer, Request},
    pki::{Ca, Pair, Usage},
    wait_for,
};

fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("selftrace-tls-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temp dir");
    dir
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

/// A TLS peer for `protocol` with `server`'s certificate; `client_ca`:
/// client certificates required, issued by that CA.
fn tls_peer(protocol: &str, server: &Pair, client_ca: Option<&Pair>) -> Peer {
    let mut args = vec!["--tls", path(&server.cert), path(&server.key)];
    if let Some(ca) = client_ca {
        args.extend(["--client-ca", path(&ca.cert)]);
    }
    Peer::start_with(protocol, 0, "[]", &args)
}

fn url(protocol: &str, peer: &Peer, host: &str) -> String {
    match protocol {
        "http" => format!("https://{host}:{}/v1/logs", peer.port),
        _ => format!("https://{host}:{}", peer.port),
    }
}

fn protocol_of(protocol: &str) -> Protocol {
    if protocol == "http" { Protocol::HttpProtobuf } else { Protocol::Grpc }
}

fn records(requests: &[Request]) -> Vec<String> {
    requests.iter().flat_map(|r| r.records.iter().cloned()).collect()
}

/// Every record arrives over TLS, decoded by the peer field by field as
/// it was encoded.
fn delivers(protocol: &str, tls: impl Fn(&Ca, &Pair) -> TlsConfig, client_ca: bool) {
    let dir = dir(&format!("delivers-{protocol}-{client_ca}"));
    let ca = Ca::new(&dir, "ca");
    let server = ca.issue("server", Usage::Server, &["127.0.0.1", "localhost"], false);
    let client = ca.issue("client", Usage::Client, &[], false);
    let peer = tls_peer(protocol, &server, client_ca.then_some(&ca.pair));
    let exporter = builder(&url(protocol, &peer, "localhost"))
        .with_protocol(protocol_of(protocol))
        .with_tls(tls(&ca, &client))
        .build()
        .expect("the exporter starts");
    let requests = produce(9);
    feed(&exporter, &requests);
    let m = wait_for(&exporter, |m| m.records_acknowledged == 9);
    let got = records(&peer.requests(9, Duration::from_secs(10)));
    let m2 = exporter.shutdown().expect("clean shutdown");
    assert_eq!(m.records_acknowledged, 9, "{m:?}");
    assert_eq!(m2.tls_failures, 0, "{m2:?}");
    assert_accounted(9, &m2);
    assert_eq!(got, expected_lines(&requests));
}

#[test]
fn a_private_ca_alone_is_trusted_over_https() {
    delivers("http", |ca, _| TlsConfig::new().with_ca_file(&ca.pair.cert), false);
}

#[test]
fn a_private_ca_alone_is_trusted_over_grpc() {
    delivers("grpc", |ca, _| TlsConfig::new().with_ca_file(&ca.pair.cert), false);
}

#[test]
fn mutual_tls_over_https_presents_the_client_certificate() {
    delivers(
        "http",
        |ca, client| {
            TlsConfig::new().with_ca_file(&ca.pair.cert).with_cert_file(&client.cert).with_key_file(&client.key)
        },
        true,
    );
}

#[test]
fn mutual_tls_over_grpc_presents_the_client_certificate() {
    delivers(
        "grpc",
        |ca, client| {
            TlsConfig::new().with_ca_file(&ca.pair.cert).with_cert_file(&client.cert).with_key_file(&client.key)
        },
        true,
    );
}

/// A handshake that fails for `why`: retried as a connection error until
/// the retry time runs out, every record counted, `tls_failures` counted,
/// and no request reaches the peer.
fn refused(protocol: &str, case: &str) {
    let dir = dir(&format!("refused-{protocol}-{case}"));
    let ca = Ca::new(&dir, "ca");
    let other = Ca::new(&dir, "other");
    let (server, host, client_ca, tls) = match case {
        "unknown-ca" => (
            other.issue("server", Usage::Server, &["localhost"], false),
            "localhost",
            None,
            TlsConfig::new().with_ca_file(&ca.pair.cert),
        ),
        "expired" => (
            ca.issue("server", Usage::Server, &["localhost"], true),
            "localhost",
            None,
            TlsConfig::new().with_ca_file(&ca.pair.cert),
        ),
        "wrong-host" => (
            ca.issue("server", Usage::Server, &["collector.example"], false),
            "localhost",
            None,
            TlsConfig::new().with_ca_file(&ca.pair.cert),
        ),
        "no-client-certificate" => (
            ca.issue("server", Usage::Server, &["localhost"], false),
            "localhost",
            Some(&ca.pair),
            TlsConfig::new().with_ca_file(&ca.pair.cert),
        ),
        _ => unreachable!("a case"),
    };
    let peer = tls_peer(protocol, &server, client_ca);
    let exporter = builder(&url(protocol, &peer, host))
        .with_protocol(protocol_of(protocol))
        .with_tls(tls)
        .with_retry(RetryPolicy {
            initial: Duration::from_millis(50),
            max_interval: Duration::from_millis(100),
            max_elapsed: Duration::from_millis(600),
        })
        .build()
        .expect("the exporter starts");
    feed(&exporter, &produce(4));
    wait_for(&exporter, |m| m.dropped_retries_exhausted == 4);
    let m = exporter.shutdown().expect("clean shutdown");
    assert_eq!((m.records_acknowledged, m.dropped_retries_exhausted), (0, 4), "{case}: {m:?}");
    assert!(m.tls_failures >= 1, "{case}: the handshake failures are counted: {m:?}");
    assert_accounted(4, &m);
    assert!(peer.requests(0, Duration::from_millis(300)).is_empty(), "{case}: no request got through");
}

#[test]
fn handshakes_refused_over_https_are_retried_and_counted() {
    for case in ["unknown-ca", "expired", "wrong-host", "no-client-certificate"] {
        refused("http", case);
    }
}

#[test]
fn handshakes_refused_over_grpc_are_retried_and_counted() {
    for case in ["unknown-ca", "expired", "wrong-host", "no-client-certificate"] {
        refused("grpc", case);
    }
}

#[test]
fn a_server_name_override_checks_the_certificate_against_it() {
    let dir = dir("server-name");
    let ca = Ca::new(&dir, "ca");
    let server = ca.issue("server", Usage::Server, &["collector.internal"], false);
    let peer = tls_peer("http", &server, None);
    let exporter = builder(&url("http", &peer, "127.0.0.1"))
        .with_tls(TlsConfig::new().with_ca_file(&ca.pair.cert).with_server_name("collector.internal"))
        .build()
        .expect("the exporter starts");
    feed(&exporter, &produce(3));
    let m = wait_for(&exporter, |m| m.records_acknowledged == 3);
    exporter.shutdown().expect("clean shutdown");
    assert_eq!((m.records_acknowledged, m.tls_failures), (3, 0), "{m:?}");
}

/// The client certificate is replaced on disk while the exporter runs,
/// against a server that takes only the new one (issued by another CA):
/// the key first (a broken pair: the last good pair stays, said once),
/// then the certificate; records retried meanwhile arrive after the reload.
fn rotates(protocol: &str) {
    let dir = dir(&format!("rotation-{protocol}"));
    let ca = Ca::new(&dir, "ca");
    let old_ca = Ca::new(&dir, "old");
    let new_ca = Ca::new(&dir, "new");
    let server = ca.issue("server", Usage::Server, &["localhost"], false);
    let old = old_ca.issue("client", Usage::Client, &[], false);
    let new = new_ca.issue("client", Usage::Client, &[], false);
    let (cert, key) = (dir.join("client.pem"), dir.join("client.key"));
    std::fs::copy(&old.cert, &cert).expect("the old certificate in place");
    std::fs::copy(&old.key, &key).expect("the old key in place");
    let peer = tls_peer(protocol, &server, Some(&new_ca.pair));
    let exporter = builder(&url(protocol, &peer, "localhost"))
        .with_protocol(protocol_of(protocol))
        .with_tls(
            TlsConfig::new()
                .with_ca_file(&ca.pair.cert)
                .with_cert_file(&cert)
                .with_key_file(&key)
                .with_reload_interval(Duration::from_millis(100)),
        )
        .build()
        .expect("the exporter starts");
    let requests = produce(6);
    feed(&exporter, &requests);
    // The old certificate is refused.
    let m = wait_for(&exporter, |m| m.tls_failures >= 1);
    assert!(m.tls_failures >= 1 && m.records_acknowledged == 0, "{m:?}");
    // Half a rotation: the new key with the old certificate does not load.
    std::fs::copy(&new.key, &key).expect("the new key");
    let m = wait_for(&exporter, |m| m.tls_reload_errors == 1);
    assert_eq!((m.tls_reload_errors, m.tls_reloads, m.records_acknowledged), (1, 0, 0), "{m:?}");
    // The rotation completes: new connections present the new pair.
    std::fs::copy(&new.cert, &cert).expect("the new certificate");
    let m = wait_for(&exporter, |m| m.records_acknowledged == 6);
    let got = records(&peer.requests(6, Duration::from_secs(10)));
    let end = exporter.shutdown().expect("clean shutdown");
    assert_eq!((m.records_acknowledged, m.tls_reloads, m.tls_reload_errors), (6, 1, 1), "{m:?}");
    assert_accounted(6, &end);
    assert_eq!(got, expected_lines(&requests));
}

#[test]
fn client_certificates_rotate_without_a_restart_over_https() {
    rotates("http");
}

#[test]
fn client_certificates_rotate_without_a_restart_over_grpc() {
    rotates("grpc");
}

#[test]
fn tls_settings_that_cannot_work_are_errors_at_build_naming_the_file_and_the_setting() {
    let dir = dir("errors");
    let ca = Ca::new(&dir, "ca");
    let client = ca.issue("client", Usage::Client, &[], false);
    let message = |tls: TlsConfig| {
        let error = OtlpExporter::builder()
            .with_env(false)
            .with_endpoint("https://localhost:4318")
            .with_tls(tls)
            .build()
            .expect_err("refused at build");
        std::error::Error::source(&error).map(ToString::to_string).unwrap_or_default()
    };
    assert_eq!(
        message(TlsConfig::new().with_cert_file(&client.cert)),
        "tls.cert_file: a client certificate needs its key: set tls.key_file (OTEL_EXPORTER_OTLP_CLIENT_KEY) too, or neither"
    );
    assert_eq!(
        message(TlsConfig::new().with_key_file(&client.key)),
        "tls.key_file: a client key needs its certificate: set tls.cert_file (OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE) too, or neither"
    );
    let missing = dir.join("missing.pem");
    assert!(
        message(TlsConfig::new().with_ca_file(&missing))
            .starts_with(&format!("tls.ca_file: cannot read `{}`: ", missing.display())),
    );
    // A key in place of a certificate.
    assert_eq!(
        message(TlsConfig::new().with_ca_file(&client.key)),
        format!("tls.ca_file: `{}` holds no PEM certificate", client.key.display())
    );
    // Another certificate's key.
    let other = ca.issue("other", Usage::Client, &[], false);
    assert!(message(TlsConfig::new().with_cert_file(&client.cert).with_key_file(&other.key)).starts_with(&format!(
        "tls.key_file: `{}` is not the key of the certificate in `{}`",
        other.key.display(),
        client.cert.display()
    )),);
}

#[test]
fn a_tls_block_in_yaml_reaches_the_exporter_and_its_mistakes_name_their_key() {
    use selftrace_itr::{SelfTelemetry, ServiceConfig};
    use tracing_subscriber::layer::SubscriberExt;

    let dir = dir("yaml");
    let ca = Ca::new(&dir, "ca");
    let server = ca.issue("server", Usage::Server, &["localhost"], false);
    let client = ca.issue("client", Usage::Client, &[], false);
    let peer = tls_peer("grpc", &server, Some(&ca.pair));
    let yaml = |tls: &str| {
        let text = format!(
            "service:\n  telemetry:\n    logs:\n      level: info\n      flood_control: {{ enabled: false }}\n      processors:\n        - batch:\n            exporter:\n              otlp:\n                endpoint: \"{}\"\n                protocol: grpc\n                tls:\n{tls}",
            url("grpc", &peer, "localhost")
        );
        ServiceConfig::from_yaml("service.yaml", &text).expect("parses")
    };
    let config = yaml(&format!(
        "                  ca_file: {}\n                  cert_file: {}\n                  key_file: {}\n                  min_version: \"1.3\"\n                  reload_interval: 30s\n",
        path(&ca.pair.cert),
        path(&client.cert),
        path(&client.key)
    ));
    let telemetry = SelfTelemetry::builder(&config.telemetry).build().expect("builds");
    tracing::subscriber::with_default(tracing_subscriber::registry().with(telemetry.layer()), || {
        for i in 0..12_i64 {
            tracing::info!(target: "db", i, "query done");
        }
    });
    let metrics = telemetry.shutdown();
    let [exporter] = metrics.exporters[..] else { panic!("one exporter: {:?}", metrics.exporters) };
    assert_eq!((exporter.records_acknowledged, exporter.tls_failures), (12, 0), "{exporter:?}");
    assert_eq!(peer.requests(12, Duration::from_secs(10)).iter().map(|r| r.records.len()).sum::<usize>(), 12);

    // Half a pair: the key at fault, where `tls:` is written.
    let config = yaml(&format!("                  cert_file: {}\n", path(&client.cert)));
    let error = SelfTelemetry::builder(&config.telemetry).build().expect_err("a certificate without its key");
    assert_eq!(error.path(), "service.telemetry.logs.processors[0].batch.exporter.otlp.tls.cert_file");
    assert_eq!(error.location(), Some((13, 19)));
    assert!(error.message().starts_with("a client certificate needs its key"), "{error}");
    // An unknown key is refused while the YAML is read.
    let text = "service:\n  telemetry:\n    logs:\n      processors:\n        - batch:\n            exporter:\n              otlp:\n                tls: { ca_fil: x }\n";
    let error = ServiceConfig::from_yaml("service.yaml", text).expect_err("a typo");
    assert!(error.to_string().contains("ca_fil"), "{error}");
}

#[test]
fn a_rotated_ca_file_is_trusted_without_a_restart() {
    let dir = dir("ca-rotation");
    let old = Ca::new(&dir, "old");
    let new = Ca::new(&dir, "new");
    let server = new.issue("server", Usage::Server, &["localhost"], false);
    let ca_file = dir.join("trusted.pem");
    std::fs::copy(&old.pair.cert, &ca_file).expect("the old CA in place");
    let peer = tls_peer("http", &server, None);
    let exporter = builder(&url("http", &peer, "localhost"))
        .with_tls(TlsConfig::new().with_ca_file(&ca_file).with_reload_interval(Duration::from_millis(100)))
        .build()
        .expect("the exporter starts");
    feed(&exporter, &produce(3));
    let m = wait_for(&exporter, |m| m.tls_failures >= 1);
    assert_eq!(m.records_acknowledged, 0, "the old CA does not vouch for the server: {m:?}");
    // A file that is not PEM for a moment: the last good CA stays.
    std::fs::write(&ca_file, b"-----BEGIN CERT").expect("a torn write");
    let m = wait_for(&exporter, |m| m.tls_reload_errors == 1);
    assert_eq!((m.tls_reload_errors, m.tls_reloads), (1, 0), "{m:?}");
    std::fs::copy(&new.pair.cert, &ca_file).expect("the new CA");
    let m = wait_for(&exporter, |m| m.records_acknowledged == 3);
    let end = exporter.shutdown().expect("clean shutdown");
    assert_eq!((m.records_acknowledged, m.tls_reloads), (3, 1), "{m:?}");
    assert_accounted(3, &end);
}

#[test]
fn insecure_skip_verify_takes_any_certificate() {
    let dir = dir("skip-verify");
    let unknown = Ca::new(&dir, "unknown");
    let server = unknown.issue("server", Usage::Server, &["collector.example"], true);
    let peer = tls_peer("http", &server, None);
    let exporter = builder(&url("http", &peer, "localhost"))
        .with_tls(TlsConfig::new().with_insecure_skip_verify(true))
        .build()
        .expect("the exporter starts");
    feed(&exporter, &produce(3));
    let m = wait_for(&exporter, |m| m.records_acknowledged == 3);
    exporter.shutdown().expect("clean shutdown");
    assert_eq!(
        (m.records_acknowledged, m.tls_failures),
        (3, 0),
        "an unknown CA, an expired certificate, another host: {m:?}"
    );
}

/// The stderr of `test` run alone in a child process: the raw logger's
/// notes.
fn stderr_of(test: &str) -> String {
    let exe = std::env::current_exe().expect("the test binary");
    let output = std::process::Command::new(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .output()
        .expect("the child runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    stderr
}

#[test]
fn insecure_skip_verify_is_warned_once() {
    let stderr = stderr_of("insecure_skip_verify_takes_any_certificate");
    let warning = "selftrace[otlp_export] insecure_skip_verify: the endpoint's certificate is not checked (encrypted, not authenticated)";
    assert_eq!(stderr.lines().filter(|l| l.contains(warning)).count(), 1, "{stderr}");
}

/// The refused cases over HTTPS and over gRPC, each run in a child
/// process: one note per kind of failure, naming the endpoint and what to
/// check.
#[test]
fn each_kind_of_handshake_failure_is_noted_once_with_what_to_check() {
    for test in [
        "handshakes_refused_over_https_are_retried_and_counted",
        "handshakes_refused_over_grpc_are_retried_and_counted",
    ] {
        let stderr = stderr_of(test);
        let notes: Vec<&str> = stderr.lines().filter(|l| l.contains("] TLS with https://localhost:")).collect();
        for advice in [
            "the server's certificate is not signed by a CA the exporter trusts: check tls.ca_file (OTEL_EXPORTER_OTLP_CERTIFICATE)",
            "the server's certificate has expired (or is not valid yet): renew it on the server",
            "the server's certificate is not for the endpoint's host: check the endpoint or tls.server_name",
            "the server refused the handshake: it may require a client certificate (tls.cert_file and tls.key_file",
        ] {
            let found = notes.iter().filter(|n| n.contains(advice)).count();
            assert_eq!(found, 1, "{test}: {advice:?} once in {notes:#?}");
        }
        assert_eq!(notes.len(), 4, "{test}: {notes:#?}");
    }
}
