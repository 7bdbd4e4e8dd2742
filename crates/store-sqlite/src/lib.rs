//! Conduit on SQLite: the zero-configuration default.
//!
//! SQLite allows one writer at a time. Rather than let several pooled connections fight for
//! the write lock (and fail with `SQLITE_BUSY` when a read transaction tries to upgrade), all
//! writes go through a pool of exactly one connection, while reads use a pool of several.
//! WAL mode lets those readers run alongside the writer.

mod articles;
mod comments;
mod commit_watch;
mod connect;
mod profiles;
mod sessions;
/// Fresh databases for tests (feature `testing`).
#[cfg(feature = "testing")]
pub mod testing;
mod users;

use sqlx::SqlitePool;

pub use connect::{ConnectError, SqliteSettings};

/// The embedded migrations, also run by `conduit migrate`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Clone)]
pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
    /// Users and anonymous article views, kept while `commits` sees nothing committed (by
    /// any process) and dropped whole when it does.
    cache: std::sync::Arc<conduit_store::Cache>,
    /// `None` for an in-memory database, which is then not cached.
    commits: Option<std::sync::Arc<commit_watch::CommitWatch>>,
}

conduit_store::delegate_store!(SqliteStore, backend = "sqlite", read = read, write = write);

impl SqliteStore {
    async fn users_changed(&self, id: Option<conduit_domain::model::UserId>, acks: conduit_store::cache::Acks) {
        // No other instance to wait for.
        self.cache.forget(id, acks, 0).await;
    }

    /// Whether `user_by_id(id)` would now be answered from memory (for tests).
    pub fn serves_cached_user(&self, id: conduit_domain::model::UserId) -> bool {
        self.refresh_cache();
        self.cache.users.get(&id).is_some()
    }

    /// Drops everything cached if anything was committed since the last look.
    fn refresh_cache(&self) {
        let Some(commits) = &self.commits else { return };
        match commits.look() {
            commit_watch::Look::Unchanged => {}
            commit_watch::Look::Changed(header) => {
                self.cache.heard(None);
                commits.record(header);
            }
            commit_watch::Look::Unknown => self.cache.heard(None),
        }
    }
}
