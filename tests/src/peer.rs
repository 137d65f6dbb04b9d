//! A scripted OTLP endpoint run by Python (`tests/python/otlp_scripted_peer.py`):
//! OTLP/HTTP on `http.server` or OTLP/gRPC on `grpcio` with the
//! `opentelemetry-proto` stubs. A missing package fails the test that starts
//! it (`scripts/test` installs them).

use std::{
    io::{BufRead as _, BufReader},
    process::{Child, ChildStdin, Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use crate::{python, python_script};

/// One request the peer got.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// The scripted answer it got, as JSON (`{}` for a plain success).
    pub answer: String,
    /// Whether its body was gzip.
    pub gzip: bool,
    /// Whether its body was OTLP/JSON (`application/json`, parsed by
    /// protobuf's own `json_format`).
    pub json: bool,
    /// Its `x-` headers (or gRPC metadata), `k=v`, sorted.
    pub headers: Vec<String>,
    /// Its canonical `resource|…` lines (only for answered successes).
    pub resources: Vec<String>,
    /// Its canonical record lines (only for answered successes).
    pub records: Vec<String>,
}

/// A running peer; killed on drop.
#[derive(Debug)]
pub struct Peer {
    child: Child,
    _stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
}

impl Peer {
    /// Starts a peer for `protocol` (`"http"` or `"grpc"`) on `port` (0: a
    /// free one) answering with `script` (a JSON list, see the script).
    pub fn start(protocol: &str, port: u16, script: &str) -> Self {
        Self::start_with(protocol, port, script, &[])
    }

    /// As [`start`](Self::start), with extra arguments (`--tls CERT KEY`).
    pub fn start_with(protocol: &str, port: u16, script: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(python())
            .arg(python_script("otlp_scripted_peer.py"))
            .args([protocol, &port.to_string(), script])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python runs");
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let first = lines.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let Some(port) = first.strip_prefix("listening ").and_then(|p| p.trim().parse().ok()) else {
            let _ = child.kill();
            panic!(
                "the {protocol} peer did not start (scripts/test installs opentelemetry-proto and grpcio): {first:?}"
            );
        };
        Self { child, _stdin: stdin, lines, port }
    }

    /// `http://127.0.0.1:<port>` with `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The requests printed so far, waiting until at least `count` records
    /// were received in successes or `timeout` passed.
    pub fn requests(&self, records: usize, timeout: Duration) -> Vec<Request> {
        let deadline = Instant::now() + timeout;
        let mut requests: Vec<Request> = Vec::new();
        loop {
            let have: usize = requests.iter().map(|r| r.records.len()).sum();
            let wait = deadline.saturating_duration_since(Instant::now());
            let line = if have >= records {
                // Take what is already printed, without waiting.
                match self.lines.recv_timeout(Duration::from_millis(200)) {
                    Ok(line) => line,
                    Err(_) => return requests,
                }
            } else {
                match self.lines.recv_timeout(wait) {
                    Ok(line) => line,
                    Err(_) => return requests,
                }
            };
            if let Some(rest) = line.strip_prefix("request|") {
                let mut parts = rest.splitn(4, '|');
                let _n = parts.next();
                let answer = parts.next().unwrap_or_default().to_owned();
                let encoding = parts.next().unwrap_or_default();
                let (gzip, json) = (encoding.starts_with("gzip"), encoding.ends_with("+json"));
                let headers =
                    parts.next().unwrap_or_default().split(';').filter(|h| !h.is_empty()).map(str::to_owned).collect();
                requests.push(Request { answer, gzip, json, headers, ..Request::default() });
            } else if let Some(request) = requests.last_mut() {
                if line.starts_with("resource|") {
                    request.resources.push(line);
                } else {
                    request.records.push(line);
                }
            }
        }
    }

    /// Stops the peer now (an endpoint that dies).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port nothing listens on now (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}
