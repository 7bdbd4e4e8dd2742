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
}

conduit_store::delegate_store!(SqliteStore, backend = "sqlite", read = read, write = write);
