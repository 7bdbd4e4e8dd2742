//! Conduit on SQLite: the zero-configuration default.
//!
//! SQLite allows one writer at a time. Rather than let several pooled connections fight for
//! the write lock (and fail with `SQLITE_BUSY` when a read transaction tries to upgrade), all
//! writes go through a pool of exactly one connection, while reads use a pool of several.
//! WAL mode lets those readers run alongside the writer.
//!
//! The statements and `impl Store` are shared with PostgreSQL and live in `crates/store/shared/`
//! (each file is compiled here as a module of this crate and checked against SQLite); only
//! [`dialect`] is SQLite's own.
//!
//! The schema as the migrations (`migrations/`) leave it is in `schema.sql` beside `Cargo.toml`,
//! for reading: every table, index and trigger. `tests/schema.rs` fails when a
//! migration changed the schema and the file was not regenerated:
//! `CONDUIT_BLESS_SCHEMA=1 cargo test -p conduit-store-sqlite --test schema`.

#[path = "../../store/shared/account.rs"]
mod account;
#[path = "../../store/shared/addresses.rs"]
mod addresses;
pub mod archive;
#[path = "../../store/shared/articles.rs"]
mod articles;
#[path = "../../store/shared/audit.rs"]
mod audit;
#[path = "../../store/shared/backups.rs"]
mod backups;
#[path = "../../store/shared/comments.rs"]
mod comments;
mod commit_watch;
mod connect;
mod dialect;
#[path = "../../store/shared/listings.rs"]
mod listings;
#[path = "../../store/shared/moderation.rs"]
mod moderation;
#[path = "../../store/shared/notifications.rs"]
mod notifications;
#[path = "../../store/shared/outbox.rs"]
mod outbox;
#[path = "../../store/shared/profiles.rs"]
mod profiles;
#[path = "../../store/shared/search.rs"]
mod search;
#[path = "../../store/shared/seed.rs"]
mod seed;
#[path = "../../store/shared/sessions.rs"]
mod sessions;
#[path = "../../store/shared/store.rs"]
mod store;
/// Fresh databases for tests (feature `testing`).
#[cfg(feature = "testing")]
pub mod testing;
#[path = "../../store/shared/users.rs"]
mod users;

use std::path::PathBuf;

use sqlx::SqlitePool;

pub use commit_watch::CommitWatch;
pub use connect::{ConnectError, SqliteSettings};

/// The embedded migrations, also run by `conduit migrate`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

// The names the shared code (crates/store/shared/) uses for this backend.
type Db = sqlx::Sqlite;
type Connection = sqlx::SqliteConnection;
type Pool = SqlitePool;
/// The store the shared `impl Store for ThisStore` (crates/store/shared/store.rs) is for: here
/// [`SqliteStore`], below; in the other backend crate `PgStore` (crates/store-postgres).
type ThisStore = SqliteStore;
const BACKEND: &str = "sqlite";

#[derive(Clone)]
pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
    /// The database file; `None` for an in-memory database.
    path: Option<PathBuf>,
}

impl SqliteStore {
    /// What tells a cache of this database's commits (see `conduit_store::Cached`); `None` for
    /// an in-memory database, which is then not cached.
    pub fn commit_watch(&self) -> Option<CommitWatch> {
        self.path.as_deref().map(CommitWatch::new)
    }
}
