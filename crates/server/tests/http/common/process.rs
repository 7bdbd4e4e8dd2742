//! Real processes for tests: the `conduit` binary and a throwaway `redis-server`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_conduit");

/// A `conduit` command with a clean environment: no inherited config can leak in.
pub fn conduit(dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CONDUIT_LOG_FORMAT", "json")
        // Tests register many users and send many requests from 127.0.0.1; the limits
        // themselves are tested in `attacks.rs`.
        .env("CONDUIT_REGISTRATIONS_PER_HOUR", "100000")
        .env("CONDUIT_MAX_REQUESTS_PER_ADDRESS", "100000")
        .env("CONDUIT_ARTICLES_PER_HOUR", "100000")
        .env("CONDUIT_COMMENTS_PER_MINUTE", "100000")
        .env("CONDUIT_MAX_CONNECTIONS_PER_ADDRESS", "100000")
        .stdin(Stdio::null());
    command
}

/// Runs to completion (at most 30 s) and returns (success, stdout, stderr).
pub fn run(command: &mut Command) -> (bool, String, String) {
    let output = command.output().expect("run conduit");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub fn assert_one_clear_line(stderr: &str, mentions: &str) {
    assert!(stderr.starts_with("conduit: error: "), "{stderr:?}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line expected: {stderr:?}");
    assert!(stderr.contains(mentions), "{stderr:?} should mention {mentions:?}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr:?}");
}

/// A running `conduit serve`, its address read from its first log lines.
pub struct Server {
    pub child: Child,
    pub base: String,
    /// Where `/metrics` is served, when `CONDUIT_METRICS_BIND` moved it.
    pub metrics: Option<String>,
    /// Every line it has written to stdout (its log) so far.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    pub fn start(dir: &Path) -> Server {
        Server::start_with(dir, &[])
    }

    pub fn start_with(dir: &Path, env: &[(&str, &str)]) -> Server {
        let mut metrics = None;
        let mut child = conduit(dir)
            .envs(env.iter().copied())
            .args(["serve", "--bind", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn conduit");
        // Its stderr goes on to the test's, and is kept for the panic when it exits at start.
        let errors = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (stderr, kept_errors) = (child.stderr.take().unwrap(), errors.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                kept_errors.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let written = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        for line in lines.by_ref() {
            let line = line.expect("read log");
            written.lock().unwrap().push(line.clone());
            let log: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if log["message"] == "metrics are served separately" {
                metrics = Some(log["address"].as_str().unwrap().to_owned());
            }
            if log["message"] == "conduit is listening" {
                let base = log["address"].as_str().unwrap().to_owned();
                // Keep reading so the server's later log lines never hit a closed pipe.
                let kept = written.clone();
                std::thread::spawn(move || {
                    lines.map_while(Result::ok).for_each(|line| kept.lock().unwrap().push(line))
                });
                return Server { child, base, metrics, log: written };
            }
        }
        let status = child.wait();
        std::thread::sleep(std::time::Duration::from_millis(200)); // the stderr thread's last lines
        panic!("conduit exited before listening: {status:?}: {}", errors.lock().unwrap());
    }

    pub fn signal_term(&self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    }

    /// SIGTERM, then the exit status (waiting at most 30 s).
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.signal_term();
        self.wait()
    }

    pub fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "conduit did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A throwaway `redis-server` on a free port, with its data (append-only file) in a temporary
/// directory, so it can be stopped and started again with its data. Killed when dropped.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        // A free port can be taken by another test between our probe and redis-server's bind;
        // then redis-server exits at once, and we try another.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let mut redis = RedisServer { child: None, port, dir: tempfile::tempdir().unwrap() };
            if redis.try_resume() {
                return redis;
            }
        }
        panic!("redis-server did not start on any of five free ports");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server again on the same port with the same data.
    pub fn resume(&mut self) {
        assert!(self.try_resume(), "redis-server did not start again on port {}", self.port);
    }

    /// Starts redis-server and waits until it answers PING (not merely until something listens
    /// on the port: that could be another test's server). False if it exited instead.
    fn try_resume(&mut self) -> bool {
        let mut child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string(), "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (apt-get install redis-server)");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if child.try_wait().ok().flatten().is_some() {
                return false;
            }
            if redis_answers(self.port) {
                self.child = Some(child);
                return true;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server (SIGTERM, so it writes its data) and waits for it to be gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let _ = child.wait();
        }
    }
}

fn redis_answers(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut answer = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok() && stream.read_exact(&mut answer).is_ok() && &answer == b"+PONG\r\n"
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A throwaway PostgreSQL cluster of our own (initdb into a temporary directory), so a test
/// can stop and start it without touching the one other tests share. Stopped when dropped.
pub struct PostgresServer {
    pub port: u16,
    data: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl PostgresServer {
    pub fn start() -> PostgresServer {
        let dir = tempfile::tempdir().unwrap();
        as_postgres_owner(dir.path());
        let data = dir.path().join("data");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let initdb = postgres_tool("initdb")
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "-D"])
            .arg(&data)
            .output()
            .expect("initdb runs");
        assert!(initdb.status.success(), "initdb failed: {}", String::from_utf8_lossy(&initdb.stderr));
        let server = PostgresServer { port, data, _dir: dir };
        server.resume();
        server
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the cluster again with its data; returns once it accepts connections.
    pub fn resume(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            self.port,
            self.data.parent().unwrap().display()
        );
        let log = self.data.parent().unwrap().join("pg.log");
        let status = postgres_tool("pg_ctl")
            .args(["-w", "-t", "30", "-o", &options, "-l"])
            .arg(&log)
            .arg("-D")
            .arg(&self.data)
            .arg("start")
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctl start failed: {}", std::fs::read_to_string(&log).unwrap_or_default());
    }

    /// Stops the cluster ("fast": open sessions are terminated, as in a real restart).
    pub fn stop(&self) {
        let status = postgres_tool("pg_ctl")
            .args(["-w", "-m", "fast", "-D"])
            .arg(&self.data)
            .arg("stop")
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctl stop failed");
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let _ = postgres_tool("pg_ctl")
            .args(["-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// PostgreSQL refuses to run as root: when we are root, its tools run as `postgres`, which
/// must own the directory.
fn is_root() -> bool {
    static ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ROOT.get_or_init(|| Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n")))
}

fn as_postgres_owner(dir: &Path) {
    if is_root() {
        assert!(Command::new("chown").arg("postgres").arg(dir).status().unwrap().success());
    }
}

/// One of PostgreSQL's server tools, found on PATH or in Debian's versioned directory.
fn postgres_tool(tool: &str) -> Command {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let on_path = std::env::split_paths(&path).map(|dir| dir.join(tool)).find(|candidate| candidate.is_file());
    let program = if let Some(program) = on_path {
        program.display().to_string()
    } else {
        let mut found: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is installed (apt-get install postgresql)")
            .filter_map(|entry| Some(entry.ok()?.path().join("bin").join(tool)))
            .filter(|path| path.exists())
            .collect();
        found.sort();
        found.pop().expect("PostgreSQL's server tools are installed").display().to_string()
    };
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--", &program]);
        command
    } else {
        Command::new(program)
    }
}
