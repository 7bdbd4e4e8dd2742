//! Conduit on SQLite: the zero-configuration default.
//!
//! SQLite allows one writer at a time. Rather than let several pooled connections fight for
//! the write lock (and fail with `SQLITE_BUSY` when a read transaction tries to upgrade), all
//! writes go through a pool of exactly one connection, while reads use a pool of several.
//! WAL mode lets those readers run alongside the writer.

mod articles;
mod comments;
mod connect;
mod profiles;
mod sessions;
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
    /// Never listening, so never used: another process (`conduit user ...`) can change the file
    /// without this one hearing of it.
    cache: std::sync::Arc<conduit_store::Cache>,
}

conduit_store::delegate_store!(SqliteStore, backend = "sqlite", read = read, write = write);

impl SqliteStore {
    async fn users_changed(&self, id: Option<conduit_domain::model::UserId>, acks: conduit_store::cache::Acks) {
        // Nobody listens: nothing to wait for.
        self.cache.forget(id, acks, 0).await;
    }
}
