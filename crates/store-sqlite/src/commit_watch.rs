//! Whether anything was committed to the database since the last look, by any process: this
//! one, `conduit user ...`, or an operator's `sqlite3`. SQLite's WAL index (the `-shm` file
//! beside the database, <https://www.sqlite.org/walformat.html>) begins with a 48-byte header
//! that every commit rewrites (`iChange` counts transactions; `mxFrame` and the salts move too).
//! Reading it is one `pread`, against a query's round trip to a connection's worker thread, so
//! a cache (`conduit_store::Cached`) can keep users and article views in memory for as long
//! as the header stands still, and drop them all when it moves.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::{RwLock, Weak};
use std::time::Duration;

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
    file: Option<File>,
    header: [u8; HEADER_LEN],
}

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
            seen.file = File::open(&self.shm).ok();
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
/// happen, but a removed file must never read as unchanged.
fn read_header(file: &File) -> Option<[u8; HEADER_LEN]> {
    let mut now = [0; HEADER_LEN];
    let live = file.metadata().is_ok_and(|m| m.nlink() > 0);
    (live && file.read_exact_at(&mut now, 0).is_ok()).then_some(now)
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
