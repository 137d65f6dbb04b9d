//! The layer's level, as upstream settled it: `level` in the YAML wins,
//! else `RUST_LOG` (full `EnvFilter` syntax, read once when the telemetry
//! is built), else `info` with the transport crates `off`. A `RUST_LOG`
//! that does not parse is told on stderr, naming the variable, and the
//! default applies; nothing panics.
//!
//! Each case runs in a child process (this test binary again) with its own
//! environment: the level is read from the process environment once.

use selftrace_itr::{SelfTelemetry, ServiceConfig, config::LevelSource};
use tracing_subscriber::layer::SubscriberExt as _;

const CHILD: &str = "SELFTRACE_LEVEL_CHILD";

/// In the child: console mode (every event printed on stderr), `level`
/// written when `$SELFTRACE_LEVEL_CHILD` is not empty; logs one event per
/// (target, level) and prints the level source on stdout.
fn child(level: &str) {
    let level = if level.is_empty() { String::new() } else { format!("      level: {level}\n") };
    let yaml = format!("service:\n  telemetry:\n    logs:\n{level}      processors: []\n");
    let config = ServiceConfig::from_yaml("service.yaml", &yaml).expect("parses");
    let telemetry = SelfTelemetry::builder(&config.telemetry).build().expect("builds");
    let subscriber = tracing_subscriber::registry().with(telemetry.layer());
    tracing::subscriber::with_default(subscriber, || {
        tracing::debug!(target: "app", "app-debug");
        tracing::info!(target: "app", "app-info");
        tracing::warn!(target: "app", "app-warn");
        tracing::debug!(target: "db", "db-debug");
        tracing::info!(target: "hyper::client", "hyper-info");
        tracing::error!(target: "tonic", "tonic-error");
    });
    let source = match telemetry.level_source() {
        LevelSource::Config(level) => format!("config {level}"),
        LevelSource::Env(directives) => format!("env {directives}"),
        LevelSource::Default => "default".to_owned(),
        other => format!("{other:?}"),
    };
    use std::io::Write as _;
    writeln!(std::io::stdout(), "source: {source}").expect("stdout");
    telemetry.shutdown();
}

/// Runs the child with `level` in the YAML and `rust_log` (unset when
/// `None`); returns the events printed and the child's stdout and stderr.
fn run(level: &str, rust_log: Option<&str>) -> (Vec<String>, String, String) {
    let exe = std::env::current_exe().expect("test binary");
    let mut command = std::process::Command::new(exe);
    command.args(["the_level_comes_from_yaml_then_rust_log_then_the_default", "--exact", "--nocapture"]);
    command.env(CHILD, level);
    match rust_log {
        Some(value) => command.env("RUST_LOG", value),
        None => command.env_remove("RUST_LOG"),
    };
    let output = command.output().expect("child runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "child failed:\n{stdout}\n{stderr}");
    let names = ["app-debug", "app-info", "app-warn", "db-debug", "hyper-info", "tonic-error"];
    let printed =
        names.iter().filter(|n| stderr.lines().any(|l| l.ends_with(&format!(": {n}")))).map(|n| (*n).to_owned());
    (printed.collect(), stdout, stderr)
}

fn source_of(stdout: &str) -> &str {
    stdout.lines().find_map(|l| l.strip_prefix("source: ")).unwrap_or("(none)")
}

#[test]
fn the_level_comes_from_yaml_then_rust_log_then_the_default() {
    if let Ok(level) = std::env::var(CHILD) {
        return child(&level);
    }

    // `level` written: it wins over RUST_LOG, everywhere (the transport
    // crates included: the layer's own denial is for exporting modes).
    let (printed, stdout, _) = run("warn", Some("trace"));
    assert_eq!(printed, ["app-warn", "tonic-error"]);
    assert_eq!(source_of(&stdout), "config warn");

    // No `level`: RUST_LOG's directives, full EnvFilter syntax.
    let (printed, stdout, _) = run("", Some("warn,db=debug"));
    assert_eq!(printed, ["app-warn", "db-debug", "tonic-error"]);
    assert_eq!(source_of(&stdout), "env warn,db=debug");

    // Neither: info, the transport crates off.
    let (printed, stdout, _) = run("", None);
    assert_eq!(printed, ["app-info", "app-warn"]);
    assert_eq!(source_of(&stdout), "default");

    // A blank RUST_LOG is no RUST_LOG.
    let (printed, stdout, _) = run("", Some("  "));
    assert_eq!(printed, ["app-info", "app-warn"]);
    assert_eq!(source_of(&stdout), "default");

    // A RUST_LOG that does not parse: told, named, and the default applies.
    let (printed, stdout, stderr) = run("", Some("debug,db=[loud"));
    assert_eq!(printed, ["app-info", "app-warn"]);
    assert_eq!(source_of(&stdout), "default");
    let told = stderr
        .lines()
        .find(|l| l.starts_with("selftrace[selftrace-itr] RUST_LOG="))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(told.starts_with("selftrace[selftrace-itr] RUST_LOG=\"debug,db=[loud\" is not a valid filter ("), "{told}");
    assert!(
        told.ends_with("); using the default level `info,h2=off,hyper=off,hyper_util=off,tonic=off,reqwest=off`"),
        "{told}"
    );
}
