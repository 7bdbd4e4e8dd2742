//! "Conduit is using this database": every `conduit serve` marks its database as in use for as
//! long as it runs, and `conduit restore` takes the database for itself, so a restore never
//! loads a database a server is serving, and no server starts on one being restored.
//!
//! On SQLite the mark is a lock (`flock`) on a file beside the database, `PATH.conduit-lock`
//! (not the database file itself: closing any other handle on it would drop SQLite's own
//! locks). On PostgreSQL it is an advisory lock, held on a connection of its own. Either goes
//! when the process does, however it ends.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use conduit_store::Uncached;
use conduit_store_postgres::archive::DatabaseLock;
use conduit_store_postgres::{PgStore, PoolSettings};

use super::database::{Database, redact};

/// Held while the database is in use; dropping it lets go.
pub enum InUse {
    File(#[allow(dead_code)] File),
    Postgres(#[allow(dead_code)] DatabaseLock),
    /// An in-memory database: no other process can reach it.
    Nothing,
}

/// What the lock is taken for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Shared: any number of servers.
    Serve,
    /// Alone: no server, no other restore.
    Restore,
}

/// The SQLite lock file of the database at `path`.
pub fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".conduit-lock");
    path.with_file_name(name)
}

/// Marks the database at `url` as in use for `what`; `Err` with one line naming who holds it.
pub async fn claim(url: &str, what: Use) -> anyhow::Result<InUse> {
    match Database::from_url(url)? {
        Database::Sqlite { path: None } => Ok(InUse::Nothing),
        Database::Sqlite { path: Some(path) } => {
            let lock = lock_path(&path);
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock)
                .with_context(|| format!("cannot create the lock file {}", lock.display()))?;
            let taken = match what {
                Use::Serve => file.try_lock_shared(),
                Use::Restore => file.try_lock(),
            };
            match taken {
                Ok(()) => Ok(InUse::File(file)),
                Err(TryLockError::WouldBlock) => bail!("{}", held_message(what, &path.display().to_string())),
                Err(TryLockError::Error(e)) => Err(e).with_context(|| format!("cannot lock {}", lock.display())),
            }
        }
        Database::Postgres => {
            let settings = PoolSettings { max_connections: 1, acquire_timeout: std::time::Duration::from_secs(10) };
            let store = PgStore::connect(url, settings).await?;
            let held = match what {
                Use::Serve => store.hold_serving().await,
                Use::Restore => store.hold_for_restore().await,
            };
            store.close().await;
            match held? {
                Some(lock) => Ok(InUse::Postgres(lock)),
                None => bail!("{}", held_message(what, &redact(url))),
            }
        }
    }
}

fn held_message(what: Use, database: &str) -> String {
    match what {
        Use::Serve => {
            format!("a `conduit restore` is loading the database at {database}; start the server when it has finished")
        }
        Use::Restore => format!(
            "`conduit serve` is running on the database at {database}: stop every server using it before restoring \
             (a restore replaces what they serve)"
        ),
    }
}
