//! Conduit on PostgreSQL: shared state for several instances behind a load balancer.

mod articles;
mod comments;
mod connect;
mod profiles;
mod sessions;
pub mod testing;
mod users;

use sqlx::PgPool;

pub use connect::{ConnectError, PoolSettings};

/// The embedded migrations, also run by `conduit migrate`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

// PostgreSQL handles concurrent writers itself: reads and writes share one pool.
conduit_store::delegate_store!(PgStore, backend = "postgres", read = pool, write = pool);
