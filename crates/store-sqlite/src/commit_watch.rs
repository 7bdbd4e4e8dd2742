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

/// The first page of the WAL index, mapped shared and read-only.
struct Mapped {
    file: File,
    address: std::ptr::NonNull<libc::c_void>,
    /// When the file was last seen to have a name (nanoseconds after `opened`).
    named_at: std::sync::atomic::AtomicU64,
    opened: Instant,
}

// SAFETY: the mapping is only read, with volatile reads, and unmapped once, on drop.
#[allow(unsafe_code)]
unsafe impl Send for Mapped {}
// SAFETY: as above; concurrent volatile reads of shared memory are fine.
#[allow(unsafe_code)]
unsafe impl Sync for Mapped {}

impl Mapped {
    /// Maps the first page of `file`, if it holds a whole header.
    #[allow(unsafe_code)]
    fn new(file: File) -> Option<Mapped> {
        use std::os::fd::AsRawFd;
        if file.metadata().ok()?.len() < HEADER_LEN as u64 {
            return None;
        }
        // SAFETY: a fresh read-only shared mapping of one page of a file we hold open; nothing
        // in this process writes through it. SQLite maps the same file the same way. A read
        // past the file's end would fault (SIGBUS) only if the file were truncated below the
        // header, which SQLite does only when a first connection opens it, never while a
        // connection (ours: the store keeps one) has it open.
        let address = unsafe {
            libc::mmap(std::ptr::null_mut(), HEADER_LEN, libc::PROT_READ, libc::MAP_SHARED, file.as_raw_fd(), 0)
        };
        if address == libc::MAP_FAILED {
            return None;
        }
        let address = std::ptr::NonNull::new(address)?;
        Some(Mapped { file, address, named_at: std::sync::atomic::AtomicU64::new(0), opened: Instant::now() })
    }

    /// The header as it is now. Each byte is read once, volatile: another process writes it.
    #[allow(unsafe_code)]
    fn header(&self) -> [u8; HEADER_LEN] {
        let base = self.address.as_ptr().cast::<u8>();
        let mut now = [0; HEADER_LEN];
        for (i, byte) in now.iter_mut().enumerate() {
            // SAFETY: `i < HEADER_LEN`, within the mapping, which lives as long as `self`.
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

impl Drop for Mapped {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping made in `new`, once; nothing reads it after this.
        unsafe {
            libc::munmap(self.address.as_ptr(), HEADER_LEN);
        }
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
