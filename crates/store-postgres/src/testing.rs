//! Fresh databases for tests. Each call creates a new database on the PostgreSQL server named
//! by `CONDUIT_TEST_PG_URL` (an admin connection URL), migrates it, and drops it again when
//! the returned guard goes out of scope, even if the test panicked.
//!
//! `scripts/test` starts a throwaway server and sets the variable; see the README.

use std::str::FromStr;

use rand::Rng;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::{PgStore, PoolSettings};

pub const ADMIN_URL_VAR: &str = "CONDUIT_TEST_PG_URL";

/// The admin URL, or a panic that says how to get one.
pub fn admin_url() -> String {
    std::env::var(ADMIN_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{ADMIN_URL_VAR} is not set. Run the tests with scripts/test (it starts a throwaway \
             PostgreSQL), or set {ADMIN_URL_VAR}=postgres://USER@HOST:PORT/postgres"
        )
    })
}

/// Drops its database when dropped.
pub struct TestDatabase {
    admin: String,
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let admin = admin_url();
        let name = format!("conduit_test_{:016x}", rand::rng().random::<u64>());
        let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect to test PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create test database");
        conn.close().await.ok();
        let url = PgConnectOptions::from_str(&admin).expect("admin URL").database(&name).to_url_lossy().to_string();
        Self { admin, name, url }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on; use a thread with
        // its own small runtime.
        let dropped = std::thread::spawn(move || {
            let rt = tokio_runtime();
            rt.block_on(async move {
                let mut conn = sqlx::PgConnection::connect(&admin).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await?;
                conn.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime")
}

pub async fn fresh_store() -> (PgStore, TestDatabase) {
    let db = TestDatabase::create().await;
    let settings = PoolSettings { max_connections: 8, ..PoolSettings::default() };
    let store = PgStore::connect(&db.url, settings).await.expect("connect to test database");
    store.migrate().await.expect("migrate test database");
    // As served: with users cached, so every test also checks the cache's invalidation.
    assert!(store.start_caching(std::time::Duration::from_secs(10)).await, "listen for user changes");
    (store, db)
}
