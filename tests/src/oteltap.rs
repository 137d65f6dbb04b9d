//! `oteltap` (Python's OTLP/HTTP receiver, `python -m oteltap`) as a real
//! process the tests send to: started on a free port, its printed records
//! read back; killed on drop. `scripts/test` installs it; a missing one
//! fails the test that starts it.

use std::{
    io::{BufRead as _, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use crate::{peer::free_port, python};

/// A running `oteltap`.
#[derive(Debug)]
pub struct Oteltap {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
}

impl Oteltap {
    /// Starts one and waits until it listens.
    pub fn start() -> Self {
        let port = free_port();
        let mut child = Command::new(python())
            .args(["-m", "oteltap", "--port", &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python runs");
        let (tx, lines) = mpsc::channel::<String>();
        let stdout = child.stdout.take().expect("piped");
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let first = lines.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        assert!(first.starts_with("Listening"), "oteltap did not start (scripts/test installs it): {first:?}");
        Self { child, lines, port }
    }

    /// The JSON lines (one per record) it printed, until `n` or 10 s.
    pub fn records(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got = Vec::new();
        while got.len() < n && Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200))
                && line.starts_with('{')
            {
                got.push(line);
            }
        }
        got
    }
}

impl Drop for Oteltap {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
