//! Where log lines go: to stdout, written by a thread of their own, so that no request ever
//! waits for stdout. Each line is handed over through a bounded queue (8,192 lines); the writer
//! thread writes them through a buffer and flushes whenever the queue runs empty.
//!
//! When stdout is slower than the lines come (a stalled pipe, a slow log shipper), the queue
//! fills and further lines are dropped rather than blocking a worker thread; once it drains,
//! the writer notes how many were lost in a line of its own (`"log lines dropped"`).

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

/// Lines waiting for the writer thread at most; past it, lines are dropped and counted.
const QUEUE: usize = 8192;

/// The `MakeWriter` for the log layer: cheap to clone, one per subscriber.
#[derive(Clone)]
pub struct LogWriter {
    queue: SyncSender<Vec<u8>>,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    /// Lines handed over and not yet written and flushed.
    pending: AtomicUsize,
    /// Lines dropped since the last notice.
    dropped: AtomicU64,
}

impl LogWriter {
    /// Starts the writer thread, writing to `out`.
    pub fn spawn(out: impl Write + Send + 'static) -> LogWriter {
        let (queue, lines) = sync_channel(QUEUE);
        let counts = Arc::new(Counts::default());
        let thread_counts = counts.clone();
        std::thread::Builder::new()
            .name("conduit-log-writer".into())
            .spawn(move || write_lines(lines, out, &thread_counts))
            .expect("start the log writer thread");
        LogWriter { queue, counts }
    }

    /// Waits (at most `limit`) until every line handed over so far is written and flushed: at
    /// exit, so the last lines are not lost.
    pub fn drain(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.counts.pending.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn write_lines(lines: Receiver<Vec<u8>>, out: impl Write, counts: &Counts) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    let mut written = 0;
    while let Ok(line) = lines.recv() {
        // A failed write (stdout closed) loses the line; there is nowhere else to say so.
        let _ = out.write_all(&line);
        written += 1;
        let dropped = counts.dropped.swap(0, Ordering::AcqRel);
        if dropped > 0 {
            let notice = format!(
                "{{\"level\":\"WARN\",\"message\":\"log lines dropped\",\"dropped\":{dropped},\"reason\":\"stdout too slow\"}}\n"
            );
            let _ = out.write_all(notice.as_bytes());
        }
        // Nothing more queued right now (every pending line is one this loop wrote): flush.
        if counts.pending.load(Ordering::Acquire) <= written {
            let _ = out.flush();
            counts.pending.fetch_sub(written, Ordering::AcqRel);
            written = 0;
        }
    }
    let _ = out.flush();
}

/// One event's line, handed to the writer thread when the event is formatted.
pub struct Line<'a> {
    writer: &'a LogWriter,
    buffer: Vec<u8>,
}

impl Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line<'_> {
    fn drop(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let line = std::mem::take(&mut self.buffer);
        self.writer.counts.pending.fetch_add(1, Ordering::AcqRel);
        match self.writer.queue.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.writer.counts.pending.fetch_sub(1, Ordering::AcqRel);
                self.writer.counts.dropped.fetch_add(1, Ordering::AcqRel);
            }
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line { writer: self, buffer: Vec::with_capacity(256) }
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
        writer.drain(Duration::from_millis(100)); // the writer is now stuck in that write
        let started = Instant::now();
        for i in 0..(QUEUE + 1000) {
            log(&writer, &format!("line {i}\n"));
        }
        // Handing 9,192 lines over did not wait for the stuck output.
        assert!(started.elapsed() < Duration::from_secs(2), "the caller waited: {:?}", started.elapsed());
        log(&writer, "after the flood\n");
        writer.drain(Duration::from_secs(30));
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("\"message\":\"log lines dropped\""), "the loss is noted");
        assert!(text.lines().count() < QUEUE + 1000, "some lines were dropped");
    }
}
