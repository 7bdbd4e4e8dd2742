//! A real SMTP server for tests: Python's `aiosmtpd` (tests/support/smtp_sink.py) on a free
//! port, each message it accepts one JSON file in a temporary folder. It can be stopped and
//! started again on the same port, as a mail server that goes away and comes back.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

const SINK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");

/// A Python that has `aiosmtpd` (the SMTP sink) and `feedparser` (the feed tests):
/// `CONDUIT_TEST_PYTHON` (scripts/test sets it), else `python3` if it has both, else a virtual
/// environment under the target directory, made once.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let has_aiosmtpd = |python: &Path| {
                Command::new(python)
                    .args(["-c", "import aiosmtpd, feedparser"])
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            };
            if let Some(python) = std::env::var_os("CONDUIT_TEST_PYTHON") {
                return PathBuf::from(python);
            }
            if has_aiosmtpd(Path::new("python3")) {
                return PathBuf::from("python3");
            }
            let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("smtp-venv");
            let python = venv.join("bin").join("python");
            if !has_aiosmtpd(&python) {
                let made = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().expect("python3 runs");
                assert!(made.success(), "python3 -m venv failed");
                let installed = Command::new(&python)
                    .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "aiosmtpd", "feedparser"])
                    .status()
                    .expect("pip runs");
                assert!(
                    installed.success(),
                    "pip install aiosmtpd feedparser failed (the mail and feed tests need them)"
                );
            }
            python
        })
        .clone()
}

pub struct SmtpSink {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let mut sink = SmtpSink { child: None, port, dir: tempfile::tempdir().unwrap() };
            if sink.try_resume() {
                return sink;
            }
        }
        panic!("the SMTP sink did not start on any of five free ports");
    }

    /// `smtp://127.0.0.1:PORT`, for `CONDUIT_SMTP_URL`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Starts it again on the same port, keeping what it received.
    pub fn resume(&mut self) {
        assert!(self.try_resume(), "the SMTP sink did not start again on port {}", self.port);
    }

    fn try_resume(&mut self) -> bool {
        let mut child = Command::new(python())
            .arg(SINK)
            .arg(self.port.to_string())
            .arg(self.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the SMTP sink");
        let mut first = String::new();
        let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut first);
        if first.trim() == "ready" {
            self.child = Some(child);
            true
        } else {
            let _ = child.kill();
            let _ = child.wait();
            false
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Value> {
        let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| {
                let path = e.ok()?.path();
                let n = path.file_name()?.to_str()?.strip_suffix(".json")?.parse().ok()?;
                Some((n, path))
            })
            .collect();
        files.sort();
        files.iter().map(|(_, path)| serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()).collect()
    }

    /// Waits (at most `within`) until a message to `to` whose subject contains `subject` is in,
    /// and returns the first.
    pub async fn wait_for(&self, to: &str, subject: &str, within: Duration) -> Value {
        self.wait_for_nth(to, subject, 0, within).await
    }

    /// As [`SmtpSink::wait_for`], the `n`th such message (from 0).
    pub async fn wait_for_nth(&self, to: &str, subject: &str, n: usize, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let found = self.messages().into_iter().filter(|m| {
                m["to"].as_str().is_some_and(|t| t.contains(to))
                    && m["subject"].as_str().is_some_and(|s| s.contains(subject))
            });
            if let Some(found) = found.into_iter().nth(n) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no mail {n} to {to} about {subject:?}; received: {:#?}",
                self.messages()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (at most `within`) until `n` messages are in.
    pub async fn wait_for_count(&self, n: usize, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            assert!(Instant::now() < deadline, "{} of {n} messages arrived", messages.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The token of the first link to `page` in a message's body.
pub fn link_token(message: &Value, page: &str) -> String {
    let body = message["body"].as_str().unwrap();
    let start = body.find(&format!("/{page}#token=")).unwrap_or_else(|| panic!("no {page} link in {body}"));
    body[start + page.len() + 8..].split_whitespace().next().unwrap().to_owned()
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}
