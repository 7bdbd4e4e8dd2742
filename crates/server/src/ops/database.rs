//! Choosing and opening the store named by `DATABASE_URL`, and the token secret that goes
//! with it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use conduit_store::{Cached, Store};
use conduit_store_postgres::{PgStore, PoolSettings};
use conduit_store_sqlite::{SqliteSettings, SqliteStore};
use rand::Rng;

use crate::config::{Config, MIN_SECRET_LEN};

/// Which database a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// `sqlite://PATH`; `path` is `None` for an in-memory database.
    Sqlite {
        path: Option<PathBuf>,
    },
    Postgres,
}

impl Database {
    pub fn from_url(url: &str) -> anyhow::Result<Database> {
        let scheme = url.split_once(':').map(|(scheme, _)| scheme).unwrap_or_default();
        match scheme {
            "sqlite" => {
                if url.contains(":memory:") || url.contains("mode=memory") {
                    return Ok(Database::Sqlite { path: None });
                }
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
                    .map_err(|e| anyhow!("invalid DATABASE_URL '{url}': {e}"))?;
                Ok(Database::Sqlite { path: Some(options.get_filename().to_path_buf()) })
            }
            "postgres" | "postgresql" => Ok(Database::Postgres),
            _ => bail!(
                "unsupported DATABASE_URL '{}': use sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DATABASE",
                redact(url)
            ),
        }
    }
}

/// The URL with any password replaced, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("****"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Whether the store is wrapped in a [`Cached`] (on PostgreSQL: listening for change notices).
/// The server does, and so do the `conduit user` commands: a store that listens also waits,
/// after changing a user, until every listening instance has dropped that user, so the change
/// holds on every running server by the time the command returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    On,
    Off,
}

/// Opens the configured database and brings its schema up to date.
pub async fn open(config: &Config, caching: Caching) -> anyhow::Result<Arc<dyn Store>> {
    let url = &config.database_url;
    Ok(match Database::from_url(url)? {
        Database::Sqlite { .. } => {
            let defaults = SqliteSettings::default();
            let settings = SqliteSettings {
                readers: config.db_pool_size.unwrap_or(defaults.readers),
                acquire_timeout: config.db_acquire_timeout,
            };
            let store = SqliteStore::connect_with(url, settings).await?;
            store.migrate().await?;
            match (caching, store.commit_watch()) {
                (Caching::On, Some(watch)) => Arc::new(Cached::start(store, watch, config.db_acquire_timeout).await),
                // In memory: no other process can change it, but nothing tells of commits either.
                _ => Arc::new(store),
            }
        }
        Database::Postgres => {
            let settings = PoolSettings {
                max_connections: config.db_pool_size.unwrap_or(16),
                acquire_timeout: config.db_acquire_timeout,
            };
            let store = PgStore::connect(url, settings).await?;
            store.migrate().await?;
            match caching {
                Caching::On => {
                    let notices = store.notice_feed();
                    Arc::new(Cached::start(store, notices, config.db_acquire_timeout).await)
                }
                Caching::Off => Arc::new(store),
            }
        }
    })
}

/// The token signing secret: the configured one, or on SQLite one generated on first start
/// and kept beside the database file, so tokens survive a restart. PostgreSQL deployments may
/// run several instances, which must share a secret: there it has to be configured.
pub fn jwt_secret(config: &Config) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = &config.jwt_secret {
        return Ok(secrecy::ExposeSecret::expose_secret(secret).as_bytes().to_vec());
    }
    match Database::from_url(&config.database_url)? {
        Database::Postgres => bail!(
            "CONDUIT_JWT_SECRET is not set: on PostgreSQL every instance must share one secret; \
             set CONDUIT_JWT_SECRET to at least {MIN_SECRET_LEN} random characters (e.g. `openssl rand -hex 32`)"
        ),
        Database::Sqlite { path: None } => {
            tracing::warn!("in-memory database and no CONDUIT_JWT_SECRET: tokens will not survive a restart");
            Ok(random_secret().into_bytes())
        }
        Database::Sqlite { path: Some(db) } => persisted_secret(&secret_path(&db)),
    }
}

pub fn secret_path(db: &Path) -> PathBuf {
    beside(db, ".jwt-secret")
}

/// The file beside `path` whose name is `path`'s with `suffix` added: the secret, lock and
/// scratch files beside a database, the partial file beside a backup.
pub fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

fn random_secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads the secret file, creating it (readable by the owner only) if it does not exist.
/// `create_new` makes two processes starting at once agree on one secret.
fn persisted_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            let secret = random_secret();
            file.write_all(secret.as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("cannot write token secret to {}", path.display()))?;
            tracing::info!(path = %path.display(), "generated a token secret for this database");
            Ok(secret.into_bytes())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let secret = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read token secret {}", path.display()))?;
            let secret = secret.trim();
            if secret.len() < MIN_SECRET_LEN {
                bail!(
                    "token secret file {} holds fewer than {MIN_SECRET_LEN} characters: delete it to generate a new one",
                    path.display()
                );
            }
            Ok(secret.as_bytes().to_vec())
        }
        Err(e) => Err(anyhow!("cannot create token secret file {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_database() {
        assert_eq!(
            Database::from_url("sqlite://conduit.db").unwrap(),
            Database::Sqlite { path: Some("conduit.db".into()) }
        );
        assert_eq!(Database::from_url("sqlite::memory:").unwrap(), Database::Sqlite { path: None });
        assert_eq!(Database::from_url("postgres://u@h/db").unwrap(), Database::Postgres);
        assert_eq!(Database::from_url("postgresql://u@h/db").unwrap(), Database::Postgres);
        let e = Database::from_url("mysql://root:hunter2@h/db").unwrap_err().to_string();
        assert!(e.contains("unsupported DATABASE_URL") && !e.contains("hunter2"), "{e}");
    }

    #[test]
    fn sqlite_secret_is_generated_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("c.db");
        let path = secret_path(&db);
        assert_eq!(path, dir.path().join("c.db.jwt-secret"));
        let first = persisted_secret(&path).unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(persisted_secret(&path).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::write(&path, "short").unwrap();
        assert!(persisted_secret(&path).unwrap_err().to_string().contains("delete it"));
    }
}
