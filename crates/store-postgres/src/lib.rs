//! Conduit on PostgreSQL: shared state for several instances behind a load balancer.
//!
//! The statements and `impl Store` are shared with SQLite and live in `crates/store/shared/`
//! (each file is compiled here as a module of this crate and checked against PostgreSQL);
//! only [`dialect`] is PostgreSQL's own.
//!
//! The schema as the migrations (`migrations/`) leave it is in `schema.sql` beside `Cargo.toml`,
//! for reading: every table, index, trigger and function. `tests/schema.rs` fails when a
//! migration changed the schema and the file was not regenerated:
//! `CONDUIT_BLESS_SCHEMA=1 cargo test -p conduit-store-postgres --test schema`.

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
mod connect;
mod dialect;
#[path = "../../store/shared/listings.rs"]
mod listings;
#[path = "../../store/shared/moderation.rs"]
mod moderation;
mod notice_feed;
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

use sqlx::PgPool;

pub use connect::{ConnectError, PoolSettings};
pub use notice_feed::NoticeFeed;

/// The embedded migrations, also run by `conduit migrate`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

// The names the shared code (crates/store/shared/) uses for this backend.
type Db = sqlx::Postgres;
type Connection = sqlx::PgConnection;
type Pool = PgPool;
/// The store the shared `impl Store for ThisStore` (crates/store/shared/store.rs) is for: here
/// [`PgStore`], below; in the other backend crate `SqliteStore` (crates/store-sqlite).
type ThisStore = PgStore;
const BACKEND: &str = "postgres";

#[derive(Clone)]
pub struct PgStore {
    /// PostgreSQL handles concurrent writers itself: `read` and `write` are one pool, named
    /// twice for the shared code.
    read: PgPool,
    write: PgPool,
    /// For the change listener's own connection.
    options: sqlx::postgres::PgConnectOptions,
}
