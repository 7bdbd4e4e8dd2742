//! "Conduit is using this database": every `conduit serve` marks its database as in use for as
//! long as it runs, and `conduit restore` takes the database for itself, so a restore never
//! loads a database a server is serving, and no server starts on one being restored.
//!
//! On SQLite the mark is a lock (`flock`) on a file beside the database, `PATH.conduit-lock`
//! (not the database file itself: closing any other handle on it would drop SQLite's own
//! locks). On PostgreSQL it is an advisory lock, held on a connection of its own, checked every
//! two seconds and taken again when PostgreSQL dropped it (a restart ends every session, and
//! their locks with them). Either goes when the process does, however it ends.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use conduit_store::Uncached;
use conduit_store_postgres::archive::DatabaseLock;
use conduit_store_postgres::{PgStore, PoolSettings};

use super::database::{Database, beside, redact};

/// Held while the database is in use; dropping it lets go.
pub enum InUse {
    File(#[allow(dead_code)] File),
    /// A restore's lock.
    Postgres(#[allow(dead_code)] DatabaseLock),
    /// A server's lock, kept by a task (aborted when this drops).
    PostgresKept(KeptLock),
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
    beside(path, ".conduit-lock")
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
            match (held?, what) {
                (Some(lock), Use::Serve) => Ok(InUse::PostgresKept(KeptLock(tokio::spawn(keep(url.to_owned(), lock))))),
                (Some(lock), Use::Restore) => Ok(InUse::Postgres(lock)),
                (None, _) => bail!("{}", held_message(what, &redact(url))),
            }
        }
    }
}

impl InUse {
    /// Lets go now rather than when the process ends. A PostgreSQL lock dropped with its
    /// connection goes only once the server notices the connection closed; under load a
    /// `conduit serve` started straight after a restore was refused by the restore's lock
    /// (seen in CI).
    pub async fn release(self) {
        if let InUse::Postgres(lock) = self {
            lock.release().await;
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

/// The task that keeps a server's lock.
pub struct KeptLock(tokio::task::JoinHandle<()>);

impl Drop for KeptLock {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Every two seconds, checks the server's lock and takes it again when its connection died.
/// While PostgreSQL is down it tries again each time; if a restore took the database in
/// between (it could, with no server's lock held), that is logged as the error it is.
async fn keep(url: String, mut lock: DatabaseLock) {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        if lock.alive().await {
            continue;
        }
        let settings = PoolSettings { max_connections: 1, acquire_timeout: std::time::Duration::from_secs(2) };
        let Ok(store) = PgStore::connect(&url, settings).await else { continue };
        let held = store.hold_serving().await;
        store.close().await;
        match held {
            Ok(Some(again)) => {
                tracing::info!("the database's in-use lock was lost with its connection and is held again");
                lock = again;
            }
            Ok(None) => tracing::error!("a `conduit restore` holds the database this server is serving"),
            Err(_) => {}
        }
    }
}
