//! Whether anything was committed to the database since the last look, by any process: this
//! one, `conduit user ...`, or an operator's `sqlite3`. SQLite's WAL index (the `-shm` file
//! beside the database, <https://www.sqlite.org/walformat.html>) begins with a 48-byte header
//! that every commit rewrites (`iChange` counts transactions; `mxFrame` and the salts move too).
//! The header is read through a shared read-only mapping of the file, as SQLite itself reads
//! it: a memory read, not a system call, so a cache (`conduit_store::Cached`) can keep users and
//! article views in memory for as long as the header stands still, and drop them all when it
//! moves, at the cost of 48 bytes compared per cached read. (It was two system calls, `fstat`
//! and `pread`, per cached read: a third of a cached read's CPU time beside its instructions;
//! BENCHMARKS.md, the framework ceiling.)

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{RwLock, Weak};
use std::time::{Duration, Instant};

use conduit_store::{Cache, ChangeFeed};

const HEADER_LEN: usize = 48;

/// SQLite's [`ChangeFeed`]. From [`SqliteStore::commit_watch`](crate::SqliteStore::commit_watch).
pub struct CommitWatch {
    shm: PathBuf,
    /// Read-locked on every look (readers do not wait for each other), write-locked only to
    /// open the file or to record a new header.
    state: RwLock<Seen>,
}

struct Seen {
    file: Option<Mapped>,
    header: [u8; HEADER_LEN],
}

/// How often a look also asks whether the file is still the database's (see [`read_header`]).
const RECHECK: Duration = Duration::from_millis(50);

/// The outcome of a look: the header as it stands, when it differs from the recorded one.
enum Look {
    Unchanged,
    /// Drop what was cached, then [`CommitWatch::record`] this.
    Changed([u8; HEADER_LEN]),
    /// Cannot tell: cache nothing.
    Unknown,
}

impl CommitWatch {
    pub(crate) fn new(database: &std::path::Path) -> Self {
        let mut shm = database.as_os_str().to_owned();
        shm.push("-shm");
        Self { shm: shm.into(), state: RwLock::new(Seen { file: None, header: [0; HEADER_LEN] }) }
    }

    /// Whether the header is the recorded one: then nothing was committed since it was recorded.
    fn look(&self) -> Look {
        {
            let seen = self.state.read().unwrap_or_else(|p| p.into_inner());
            if let Some(file) = &seen.file {
                return match read_header(file) {
                    Some(now) if now == seen.header => Look::Unchanged,
                    Some(now) => Look::Changed(now),
                    None => Look::Unknown,
                };
            }
        }
        let mut seen = self.state.write().unwrap_or_else(|p| p.into_inner());
        if seen.file.is_none() {
            seen.file = File::open(&self.shm).ok().and_then(Mapped::new);
        }
        match seen.file.as_ref().and_then(read_header) {
            Some(now) => Look::Changed(now),
            None => {
                seen.file = None;
                Look::Unknown
            }
        }
    }

    /// Records the header a [`Look::Changed`] reported, once what was cached before it is gone.
    /// Until then other looks report the change too, so nobody serves what predates it.
    fn record(&self, header: [u8; HEADER_LEN]) {
        self.state.write().unwrap_or_else(|p| p.into_inner()).header = header;
    }
}

/// SQLite removes the file when its last connection closes, and a new one starts another: this
/// one would then stand still forever. The store keeps a connection open so that does not
/// happen, but a removed file must never read as unchanged for long: every [`RECHECK`], a look
/// also checks that the file still has a name.
fn read_header(file: &Mapped) -> Option<[u8; HEADER_LEN]> {
    if !file.still_named() {
        return None;
    }
    Some(file.header())
}

/// The WAL index header, mapped shared and read-only.
struct Mapped {
    file: File,
    /// A raw mapping rather than a [`memmap2::Mmap`]: a `Mmap` derefs to a `&[u8]`, which
    /// promises that nobody changes the bytes while it is borrowed, and SQLite changes them on
    /// every commit. The raw one only hands out a pointer, read with volatile reads.
    map: memmap2::MmapRaw,
    /// When the file was last seen to have a name (nanoseconds after `opened`).
    named_at: std::sync::atomic::AtomicU64,
    opened: Instant,
}

impl Mapped {
    /// Maps the header of `file`, if it holds a whole one.
    fn new(file: File) -> Option<Mapped> {
        if file.metadata().ok()?.len() < HEADER_LEN as u64 {
            return None;
        }
        let map = memmap2::MmapOptions::new().len(HEADER_LEN).map_raw_read_only(&file).ok()?;
        Some(Mapped { file, map, named_at: std::sync::atomic::AtomicU64::new(0), opened: Instant::now() })
    }

    /// The header as it is now. Each byte is read once, volatile: another process writes it.
    #[allow(unsafe_code)]
    fn header(&self) -> [u8; HEADER_LEN] {
        let base = self.map.as_ptr();
        let mut now = [0; HEADER_LEN];
        for (i, byte) in now.iter_mut().enumerate() {
            // SAFETY: `i < HEADER_LEN`, the mapping's length, and the mapping lives as long as
            // `self`. Nothing in this process writes through it; SQLite's writers (in any
            // process) change the bytes, which a volatile read of a `u8` tolerates. A read past
            // the file's end would fault (SIGBUS) only if the file were truncated below the
            // header, which SQLite does only when a first connection opens it, never while a
            // connection (ours: the store keeps one) has it open.
            *byte = unsafe { base.add(i).read_volatile() };
        }
        now
    }

    /// Whether the file still has a name, asked of the file system at most every [`RECHECK`].
    fn still_named(&self) -> bool {
        use std::sync::atomic::Ordering;
        let now = u64::try_from(self.opened.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let named_at = self.named_at.load(Ordering::Relaxed);
        if named_at != 0 && now.saturating_sub(named_at) < RECHECK.as_nanos() as u64 {
            return true;
        }
        let named = self.file.metadata().is_ok_and(|m| m.nlink() > 0);
        if named {
            self.named_at.store(now.max(1), Ordering::Relaxed);
        }
        named
    }
}

#[async_trait::async_trait]
impl ChangeFeed for CommitWatch {
    /// Nothing to start: the watch looks before each use of the cache.
    async fn start(&self, cache: Weak<Cache>, _wait: Duration) -> bool {
        if let Some(cache) = cache.upgrade() {
            cache.set_listening(true);
        }
        true
    }

    /// Any commit moves the header, a new article's too.
    fn tells_of_new_articles(&self) -> bool {
        true
    }

    /// Drops everything cached if anything was committed since the last look.
    fn catch_up(&self, cache: &Cache) {
        match self.look() {
            Look::Unchanged => {}
            Look::Changed(header) => {
                cache.anything_changed();
                self.record(header);
            }
            Look::Unknown => cache.anything_changed(),
        }
    }
}
