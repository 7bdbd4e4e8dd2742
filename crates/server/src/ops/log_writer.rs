//! Where log lines go: to stdout, written by a thread of their own, so that no request ever
//! waits for stdout. A request's line is appended to a shared buffer (a short, uncontended lock;
//! nobody is woken); every 10 ms the writer thread takes the buffer and writes it out.
//!
//! When stdout is slower than the lines come (a stalled pipe, a slow log shipper), the buffer
//! fills up to 4 MiB and further lines are dropped rather than blocking a worker thread; the
//! writer then notes how many were lost in a line of its own (`"log lines dropped"`). Lines
//! reach stdout at most ~10 ms after they were logged.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Bytes of lines waiting for the writer thread at most; past it, lines are dropped and counted.
const BUFFER_LIMIT: usize = 4 << 20;
/// How often the writer thread writes out what has been logged.
const INTERVAL: Duration = Duration::from_millis(10);

/// The `MakeWriter` for the log layer: cheap to clone, one per subscriber.
#[derive(Clone)]
pub struct LogWriter(Arc<Shared>);

#[derive(Default)]
struct Shared {
    buffer: Mutex<Vec<u8>>,
    /// Lines dropped since the last notice.
    dropped: AtomicU64,
    /// The writer thread holds lines it took from the buffer and has not yet flushed.
    writing: AtomicBool,
}

impl LogWriter {
    /// Starts the writer thread, writing to `out`.
    pub fn spawn(out: impl Write + Send + 'static) -> LogWriter {
        let shared = Arc::new(Shared::default());
        let thread_shared = shared.clone();
        std::thread::Builder::new()
            .name("conduit-log-writer".into())
            .spawn(move || write_lines(&thread_shared, out))
            .expect("start the log writer thread");
        LogWriter(shared)
    }

    /// Waits (at most `limit`) until every line logged so far is written and flushed: at exit,
    /// so the last lines are not lost.
    pub fn drain(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let empty = self.0.buffer.lock().unwrap_or_else(|p| p.into_inner()).is_empty();
            if empty && !self.0.writing.load(Ordering::Acquire) {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn write_lines(shared: &Shared, out: impl Write) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    let mut taken = Vec::new();
    loop {
        std::thread::sleep(INTERVAL);
        {
            let mut buffer = shared.buffer.lock().unwrap_or_else(|p| p.into_inner());
            if buffer.is_empty() && shared.dropped.load(Ordering::Acquire) == 0 {
                continue;
            }
            shared.writing.store(true, Ordering::Release);
            std::mem::swap(&mut *buffer, &mut taken);
        }
        // A failed write (stdout closed) loses the lines; there is nowhere else to say so.
        let _ = out.write_all(&taken);
        taken.clear();
        let dropped = shared.dropped.swap(0, Ordering::AcqRel);
        if dropped > 0 {
            let notice = format!(
                "{{\"level\":\"WARN\",\"message\":\"log lines dropped\",\"dropped\":{dropped},\"reason\":\"stdout too slow\"}}\n"
            );
            let _ = out.write_all(notice.as_bytes());
        }
        let _ = out.flush();
        shared.writing.store(false, Ordering::Release);
    }
}

/// One event's line, appended to the shared buffer when the event is formatted.
pub struct Line<'a> {
    writer: &'a LogWriter,
    line: Vec<u8>,
}

impl Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line<'_> {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.writer.push(&self.line);
        }
    }
}

impl LogWriter {
    /// Hands one complete line (with its newline) to the writer thread, or drops and counts it
    /// when the buffer is full.
    pub fn push(&self, line: &[u8]) {
        let shared = &self.0;
        let mut buffer = shared.buffer.lock().unwrap_or_else(|p| p.into_inner());
        if buffer.len() + line.len() > BUFFER_LIMIT {
            shared.dropped.fetch_add(1, Ordering::AcqRel);
        } else {
            buffer.extend_from_slice(line);
        }
    }
}

/// The access log: one line per response, written here directly rather than through the
/// tracing JSON layer, whose formatting of an event with its spans was a fifth to a quarter of
/// a cached read's instructions (BENCHMARKS.md). Same line shape as the other JSON lines
/// (`timestamp`, `level`, `message`, `target`) with the request's fields at the top level. It
/// follows the log filter like any event of target `conduit_server::access` at `INFO`.
static ACCESS: std::sync::OnceLock<(LogWriter, bool)> = std::sync::OnceLock::new();

/// Turns the access log on, writing through `writer`, as JSON or as text.
pub fn enable_access_log(writer: LogWriter, json: bool) {
    let _ = ACCESS.set((writer, json));
}

/// One response, for the access log.
pub struct Access<'a> {
    pub status: u16,
    pub latency_us: u64,
    pub request_id: &'a str,
    pub method: &'a str,
    pub route: &'a str,
    pub path: &'a str,
}

/// Whether responses get an access line: the access log is on and the log filter lets it.
pub fn access_wanted() -> bool {
    ACCESS.get().is_some() && tracing::enabled!(target: "conduit_server::access", tracing::Level::INFO)
}

/// Writes the access line of one response (ask [`access_wanted`] first). The JSON line is
/// written by hand, keys in a fixed order, strings escaped by `serde_json`: a derived
/// `Serialize` with a flattened struct cost several times more.
pub fn access(access: &Access<'_>) {
    let Some((writer, json)) = ACCESS.get() else {
        return;
    };
    let mut line = Vec::with_capacity(320);
    if *json {
        let mut numbers = itoa::Buffer::new();
        line.extend_from_slice(b"{\"timestamp\":\"");
        now_rfc3339(&mut line);
        line.extend_from_slice(b"\",\"level\":\"INFO\",\"message\":\"response\",\"status\":");
        line.extend_from_slice(numbers.format(access.status).as_bytes());
        line.extend_from_slice(b",\"latency_us\":");
        line.extend_from_slice(numbers.format(access.latency_us).as_bytes());
        for (key, value) in [
            (&b",\"request_id\":"[..], access.request_id),
            (b",\"method\":", access.method),
            (b",\"route\":", access.route),
            (b",\"path\":", access.path),
        ] {
            line.extend_from_slice(key);
            let _ = json_string(&mut LineText(&mut line), value);
        }
        line.extend_from_slice(b",\"target\":\"conduit_server::access\"}");
    } else {
        let Access { status, latency_us, request_id, method, route: _, path } = access;
        now_rfc3339(&mut line);
        let _ = write!(line, "  INFO access: {method} {path} {status} {latency_us}us request_id={request_id}");
    }
    line.push(b'\n');
    writer.push(&line);
}

/// Appends `text` as a JSON string. Text with nothing to escape (the usual case: ids, routes,
/// paths) is copied as it is; anything else is escaped by `serde_json`, whose byte-by-byte
/// escaping was a tenth of a cached read's instructions when used for every field.
pub fn json_string(out: &mut impl std::fmt::Write, text: &str) -> std::fmt::Result {
    // JSON escapes only control characters, quotes and backslashes. No early exit: the
    // compiler checks many bytes at once.
    let plain = text.bytes().fold(true, |plain, b| plain & (b >= 0x20) & (b != b'"') & (b != b'\\'));
    if plain {
        out.write_char('"')?;
        out.write_str(text)?;
        out.write_char('"')
    } else {
        let escaped = serde_json::to_string(text).map_err(|_| std::fmt::Error)?;
        out.write_str(&escaped)
    }
}

/// A line being built, as a `fmt::Write` (its text is always UTF-8).
struct LineText<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for LineText<'_> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        self.0.extend_from_slice(text.as_bytes());
        Ok(())
    }
}

/// Appends the time now as RFC 3339 in UTC with microseconds (`2026-11-30T21:34:50.123456Z`).
/// The date and time of day are formatted once per second per thread.
fn now_rfc3339(out: &mut Vec<u8>) {
    thread_local! {
        static SECOND: std::cell::RefCell<(i64, String)> = const { std::cell::RefCell::new((i64::MIN, String::new())) };
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let seconds = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    SECOND.with_borrow_mut(|(second, text)| {
        if *second != seconds {
            *second = seconds;
            *text = chrono::DateTime::from_timestamp(seconds, 0)
                .unwrap_or_default()
                .format("%Y-%m-%dT%H:%M:%S")
                .to_string();
        }
        out.extend_from_slice(text.as_bytes());
    });
    // Six digits, zero-padded: a million plus the microseconds, without its leading 1.
    let mut digits = itoa::Buffer::new();
    out.push(b'.');
    out.extend_from_slice(&digits.format(1_000_000 + now.subsec_micros()).as_bytes()[1..]);
    out.push(b'Z');
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line { writer: self, line: Vec::with_capacity(256) }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    /// An output whose first write stalls for `stall` (a stuck pipe), and that records what
    /// it got.
    #[derive(Clone)]
    struct Slow(Arc<Mutex<Vec<u8>>>, Duration);

    impl Write for Slow {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let mut got = self.0.lock().unwrap();
            if got.is_empty() {
                std::thread::sleep(self.1);
            }
            got.extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn log(writer: &LogWriter, text: &str) {
        writer.make_writer().write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn every_line_arrives_in_order_and_drain_waits_for_them() {
        let out = Slow(Arc::default(), Duration::ZERO);
        let writer = LogWriter::spawn(out.clone());
        for i in 0..1000 {
            log(&writer, &format!("line {i}\n"));
        }
        writer.drain(Duration::from_secs(10));
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let expected: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        assert_eq!(text, expected);
    }

    #[test]
    fn a_stalled_stdout_drops_lines_instead_of_blocking_the_caller_and_says_so() {
        // The output is stuck for 3 s at its first write.
        let out = Slow(Arc::default(), Duration::from_secs(3));
        let writer = LogWriter::spawn(out.clone());
        log(&writer, "first\n");
        std::thread::sleep(INTERVAL * 5); // the writer is now stuck in that write
        let started = Instant::now();
        let padding = "x".repeat(100);
        let lines = BUFFER_LIMIT / 100 + 1000;
        for i in 0..lines {
            log(&writer, &format!("line {i} {padding}\n")); // over 100 bytes each
        }
        // Handing the lines over did not wait for the stuck output (3 s).
        assert!(started.elapsed() < Duration::from_millis(2500), "the caller waited: {:?}", started.elapsed());
        log(&writer, "after the flood\n");
        writer.drain(Duration::from_secs(30));
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("\"message\":\"log lines dropped\""), "the loss is noted");
        assert!(text.lines().count() < lines, "some lines were dropped");
    }
}
