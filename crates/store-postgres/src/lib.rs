//! Conduit on PostgreSQL: shared state for several instances behind a load balancer.

mod articles;
mod change_notices;
mod comments;
mod connect;
mod profiles;
mod sessions;
/// Fresh databases for tests (feature `testing`).
#[cfg(feature = "testing")]
pub mod testing;
mod users;

use sqlx::PgPool;

pub use connect::{ConnectError, PoolSettings};

/// The embedded migrations, also run by `conduit migrate`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// For the user-change listener's own connection.
    options: sqlx::postgres::PgConnectOptions,
    /// Used once [`PgStore::start_caching`] listens for changes.
    cache: std::sync::Arc<conduit_store::Cache>,
}

// PostgreSQL handles concurrent writers itself: reads and writes share one pool.
conduit_store::delegate_store!(PgStore, backend = "postgres", read = pool, write = pool);
