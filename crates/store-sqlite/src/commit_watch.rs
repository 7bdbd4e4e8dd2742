//! Whether anything was committed to the database since the last look, by any process: this
//! one, `conduit user ...`, or an operator's `sqlite3`. SQLite's WAL index (the `-shm` file
//! beside the database, <https://www.sqlite.org/walformat.html>) begins with a 48-byte header
//! that every commit rewrites (`iChange` counts transactions; `mxFrame` and the salts move too).
//! Reading it is one `pread`, against a query's round trip to a connection's worker thread, so
//! the store can keep users and article views in memory for as long as the header stands
//! still, and drop them all when it moves.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::Mutex;

const HEADER_LEN: usize = 48;

pub(crate) struct CommitWatch {
    shm: PathBuf,
    state: Mutex<Seen>,
}

struct Seen {
    file: Option<File>,
    header: [u8; HEADER_LEN],
}

impl CommitWatch {
    pub(crate) fn new(database: &std::path::Path) -> Self {
        let mut shm = database.as_os_str().to_owned();
        shm.push("-shm");
        Self { shm: shm.into(), state: Mutex::new(Seen { file: None, header: [0; HEADER_LEN] }) }
    }

    /// True when the header is what the previous call saw: nothing was committed in between.
    /// False on the first call, after any commit, and whenever the header cannot be read (then
    /// nothing can be kept).
    pub(crate) fn unchanged(&self) -> bool {
        let mut seen = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if seen.file.is_none() {
            seen.file = File::open(&self.shm).ok();
        }
        let Some(file) = &seen.file else { return false };
        // SQLite removes the file when its last connection closes, and a new one starts another:
        // this one would then stand still forever. The store keeps a connection open so that
        // does not happen, but a removed file must never read as "unchanged".
        let mut now = [0; HEADER_LEN];
        let readable = file.metadata().is_ok_and(|m| m.nlink() > 0) && file.read_exact_at(&mut now, 0).is_ok();
        if !readable {
            seen.file = None;
            return false;
        }
        let same = now == seen.header;
        seen.header = now;
        same
    }
}
