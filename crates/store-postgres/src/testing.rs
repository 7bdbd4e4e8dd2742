//! Fresh databases for tests. Each call creates a new database on the PostgreSQL server named
//! by `CONDUIT_TEST_PG_URL` (an admin connection URL), already migrated, and drops it again
//! when the returned guard goes out of scope, even if the test panicked.
//!
//! Each is a copy (`CREATE DATABASE ... TEMPLATE`) of a template migrated once per set of
//! migrations (`conduit_template_<hash>`, kept on the server for later runs), rather than
//! migrated test by test.
//!
//! `scripts/test` starts a throwaway server and sets the variable; see the README.

use std::str::FromStr;

use rand::Rng;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

use conduit_store::Cached;

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
    /// A new database with every migration applied.
    pub async fn create() -> Self {
        let admin = admin_url();
        let template = migrated_template(&admin).await;
        let name = format!("conduit_test_{:016x}", rand::rng().random::<u64>());
        let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect to test PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
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

/// The template database for the current migrations, made on first use by whichever test
/// process gets there first (the others wait on an advisory lock). It is built under another
/// name and renamed when complete, so a build cut short is never copied.
async fn migrated_template(admin: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for migration in crate::MIGRATOR.iter() {
        (migration.version, &migration.checksum[..]).hash(&mut hasher);
    }
    let name = format!("conduit_template_{:016x}", hasher.finish());
    let options = PgConnectOptions::from_str(admin).expect("admin URL");
    let mut conn = sqlx::PgConnection::connect(admin).await.expect("connect to test PostgreSQL");
    // Any fixed key: one template is built at a time on this server.
    sqlx::query("SELECT pg_advisory_lock(20261130)").execute(&mut conn).await.expect("lock");
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(&name)
        .fetch_one(&mut conn)
        .await
        .expect("look for the template");
    if !exists {
        let building = format!("{name}_building");
        for statement in
            [format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"), format!("CREATE DATABASE {building}")]
        {
            sqlx::query(&statement).execute(&mut conn).await.expect("create the template");
        }
        let url = options.clone().database(&building).to_url_lossy().to_string();
        let store = PgStore::connect(&url, PoolSettings { max_connections: 1, ..PoolSettings::default() })
            .await
            .expect("connect to the template");
        store.migrate().await.expect("migrate the template");
        store.write.close().await;
        // A closed connection's backend may linger a moment (longer on a loaded machine), and a
        // database cannot be renamed while anyone is connected: end them.
        let mut attempts = 0;
        loop {
            sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
                .bind(&building)
                .execute(&mut conn)
                .await
                .expect("end the template's connections");
            match sqlx::query(&format!("ALTER DATABASE {building} RENAME TO {name}")).execute(&mut conn).await {
                Ok(_) => break,
                Err(e) => {
                    attempts += 1;
                    assert!(attempts < 300, "cannot name the template: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }
    sqlx::query("SELECT pg_advisory_unlock(20261130)").execute(&mut conn).await.ok();
    conn.close().await.ok();
    name
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime")
}

/// A store on a fresh database, as served: cached, so every test also checks the cache's
/// invalidation.
pub async fn fresh_store() -> (Cached<PgStore>, TestDatabase) {
    let db = TestDatabase::create().await;
    (cached_store(&db.url, 8).await, db)
}

/// Another cached store (another instance) on the database at `url`, listening for changes.
pub async fn cached_store(url: &str, max_connections: u32) -> Cached<PgStore> {
    let settings = PoolSettings { max_connections, ..PoolSettings::default() };
    let store = PgStore::connect(url, settings).await.expect("connect to test database");
    store.migrate().await.expect("migrate test database");
    let notices = store.notice_feed();
    let store = Cached::start(store, notices, std::time::Duration::from_secs(10)).await;
    assert!(store.is_caching(), "listen for changes");
    store
}
