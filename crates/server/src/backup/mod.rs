//! Backups taken online, restores that prove themselves, and the move between backends.
//!
//! One archive format for both backends: a SQLite database with Conduit's SQLite schema, in
//! the file [`file`] describes (a manifest and checksums after it). Taking one from SQLite is
//! `VACUUM INTO` (one read transaction: writers go on); from PostgreSQL, every table read in
//! one `REPEATABLE READ` snapshot and written into a fresh archive. A restore checks the file,
//! copies the database out, checks that copy (integrity, counts against the manifest,
//! counters against counting; again after migrating it when it is older), and only then loads
//! the target: on SQLite by renaming the checked copy into place, on PostgreSQL with `COPY` in
//! one transaction, after which PostgreSQL is checked the same way. Then it looks users up
//! through the store. So a backup moves a
//! deployment from one backend to the other in either direction.
//!
//! [`schedule`] takes and verifies backups inside `conduit serve`.
//!
//! Imports: `config`, `ops` and `mail`.

pub mod file;
pub mod schedule;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use conduit_domain::names::Email;
use conduit_store::backup::{TABLES, Transfer};
use conduit_store::{DbError, Store, Uncached};
use conduit_store_postgres::{PgStore, PoolSettings};
use conduit_store_sqlite::archive::{self as sqlite_archive, Archive};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::ops::database::{self, Database, beside, redact};
use crate::ops::in_use::{self, Use};
use file::Manifest;

/// A backup written.
#[derive(Debug)]
pub struct Taken {
    pub path: PathBuf,
    pub manifest: Manifest,
    pub duration: Duration,
}

/// How fast a backup of PostgreSQL reads (a SQLite snapshot is one statement, paced by nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// At half speed, leaving the serving instances their share of both databases' CPU.
    Gentle,
    /// At full speed: for a database nothing serves (the final backup of a move).
    Fast,
}

/// Takes a backup of the database at `database_url`, which may be serving, into a new file
/// `to`. Nothing is left at `to` unless the whole archive is (it is written beside it as
/// `TO.partial`, synced, and renamed).
pub async fn take(database_url: &str, to: &Path, pace: Pace) -> anyhow::Result<Taken> {
    let started = Instant::now();
    if to.exists() {
        bail!("{} exists already: name a new file (a backup never overwrites one)", to.display());
    }
    if let Some(folder) = to.parent().filter(|p| !p.as_os_str().is_empty())
        && !folder.is_dir()
    {
        bail!("the folder {} does not exist: create it, or name another with --to", folder.display());
    }
    let partial = file::partial_path(to);
    let _ = std::fs::remove_file(&partial);
    let written = async {
        let source_backend = write_partial(database_url, &partial, pace).await?;
        let archive = Archive::open(&partial).await?;
        let described =
            async { Ok::<_, DbError>((archive.schema_version().await?, archive.table_counts().await?)) }.await;
        archive.close().await;
        let (schema_version, tables) = described?;
        let manifest = Manifest {
            format: file::FORMAT,
            conduit_version: env!("CARGO_PKG_VERSION").to_owned(),
            schema_version,
            source_backend: source_backend.to_owned(),
            taken_at: chrono::Utc::now(),
            tables,
            payload_bytes: 0,
            payload_sha256: String::new(),
        };
        let (partial, to) = (partial.clone(), to.to_owned());
        // Hashing a large archive takes seconds: off the async threads.
        tokio::task::spawn_blocking(move || file::seal(&partial, manifest, &to)).await?
    }
    .await;
    match written {
        Ok(manifest) => Ok(Taken { path: to.to_owned(), manifest, duration: started.elapsed() }),
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e.context(format!("backup failed; nothing was written at {}", to.display())))
        }
    }
}

/// Writes the archive's database at `partial`; returns the source's backend.
async fn write_partial(database_url: &str, partial: &Path, pace: Pace) -> anyhow::Result<&'static str> {
    match Database::from_url(database_url)? {
        Database::Sqlite { path: None } => {
            bail!("an in-memory database cannot be backed up: it lives only inside its server")
        }
        Database::Sqlite { path: Some(path) } => {
            sqlite_archive::snapshot(&path, partial).await?;
            Ok("sqlite")
        }
        Database::Postgres => {
            let store = PgStore::connect(database_url, small_pool()).await?;
            let dumped = dump_postgres(&store, partial, pace).await;
            store.close().await;
            dumped?;
            Ok("postgres")
        }
    }
}

fn small_pool() -> PoolSettings {
    PoolSettings { max_connections: 2, acquire_timeout: Duration::from_secs(10) }
}

async fn dump_postgres(store: &PgStore, partial: &Path, pace: Pace) -> anyhow::Result<()> {
    let (have, want) = (store.schema_version().await?, PgStore::latest_schema_version());
    if have != want {
        bail!(
            "the PostgreSQL database's schema is version {have}, this Conduit's is {want}: back it up with the \
             Conduit that serves it, or bring it up to date first (`conduit migrate`)"
        );
    }
    let (archive, triggers) = Archive::create(partial).await?;
    let (sender, mut receiver) = mpsc::channel(4);
    let dumping = async move {
        let dumped = store.dump(&sender).await;
        drop(sender);
        dumped
    };
    let target = &archive;
    // Gently: after each batch the writer rests as long as it took, and the reader, its
    // channel full, rests with it. At full speed the dump kept a core of PostgreSQL's and one
    // of ours busy for its whole minute (a million articles), and the server's writes waited:
    // their p99 went from 13 ms to 35-45 ms. At half speed the backup takes longer instead.
    let writing = async move {
        loop {
            match receiver.recv().await {
                Some(Transfer::Rows(batch)) => {
                    let started = Instant::now();
                    target.write(&batch).await?;
                    if pace == Pace::Gentle {
                        tokio::time::sleep(started.elapsed()).await;
                    }
                }
                Some(Transfer::Done) => return Ok(()),
                None => return Err(DbError::Other("the database's rows stopped before their end".into())),
            }
        }
    };
    let (dumped, written) = tokio::join!(dumping, writing);
    dumped?;
    written?;
    archive.finish(triggers).await?;
    Ok(())
}

/// A restore done.
#[derive(Debug)]
pub struct Restored {
    pub manifest: Manifest,
    /// The schema version the archive was migrated from, when it was older.
    pub migrated_from: Option<i64>,
    pub users_checked: usize,
    pub duration: Duration,
}

/// Restores the archive at `archive` into the database `config` names, which must be empty
/// unless `replace`, and which no `conduit serve` may be using. Every check runs on a scratch
/// copy before the target is touched; after loading, the target is checked again.
pub async fn restore(config: &Config, archive: &Path, replace: bool) -> anyhow::Result<Restored> {
    let started = Instant::now();
    let manifest = file::read_manifest(archive)?;
    let latest = sqlite_archive::latest_schema_version();
    if manifest.schema_version > latest {
        bail!(
            "{} comes from a newer Conduit ({}, schema {}); this one knows schema {latest} at most: restore it with \
             Conduit {} or newer",
            archive.display(),
            manifest.conduit_version,
            manifest.schema_version,
            manifest.conduit_version
        );
    }
    let url = &config.database_url;
    let in_use = in_use::claim(url, Use::Restore).await?;
    let restored = async {
        let (migrated_from, samples) = match Database::from_url(url)? {
            Database::Sqlite { path: None } => {
                bail!("cannot restore into an in-memory database: set DATABASE_URL=sqlite://PATH")
            }
            Database::Sqlite { path: Some(path) } => restore_sqlite(archive, &manifest, &path, replace).await?,
            Database::Postgres => restore_postgres(url, archive, &manifest, replace).await?,
        };
        // Through the store, as the server will read it: the same users, the same password hashes.
        let store = database::open(config, database::Caching::Off).await?;
        let looked_up = look_up(store.as_ref(), &samples).await;
        store.close().await;
        anyhow::Ok((migrated_from, looked_up?))
    }
    .await;
    // Let go before returning, not when the process ends: `conduit restore && conduit serve`
    // must find the database free.
    in_use.release().await;
    let (migrated_from, users_checked) = restored?;
    Ok(Restored { manifest, migrated_from, users_checked, duration: started.elapsed() })
}

type Samples = Vec<(i64, String, String)>;

/// Checks the scratch copy of an archive's database: intact, as many rows as the manifest
/// says; migrated when it is older; counters that agree with counting. Returns the
/// version it was migrated from, if it was.
async fn check_copy(copy: &Archive, manifest: &Manifest) -> anyhow::Result<Option<i64>> {
    copy.integrity_check().await?;
    same_counts("the archive", &copy.table_counts().await?, manifest, false)?;
    let version = copy.schema_version().await?;
    if version < sqlite_archive::latest_schema_version() {
        copy.migrate().await?;
        // A migration must keep every row; the counters are audited in the schema the audit is
        // written for (an older one may lack a table it names, such as `hidden_articles`).
        same_counts("the migrated archive", &copy.table_counts().await?, manifest, true)?;
        no_disagreement("the migrated archive", copy.audit().await?)?;
        return Ok(Some(version));
    }
    no_disagreement("the archive", copy.audit().await?)?;
    Ok(None)
}

/// Every table holds the rows the manifest counted. After a migration (`migrated`), `counts` may
/// hold more: a migration may backfill a new kind of counter (derived rows, which the audit
/// checks where it knows them); no table may hold fewer.
fn same_counts(what: &str, counts: &BTreeMap<String, i64>, manifest: &Manifest, migrated: bool) -> anyhow::Result<()> {
    for table in TABLES {
        let have = counts.get(table.name).copied().unwrap_or(0);
        let want = manifest.tables.get(table.name).copied().unwrap_or(0);
        let derived_grew = migrated && table.name == "counts" && have > want;
        if have != want && !derived_grew {
            bail!("{what} has {have} rows in {}, its manifest says {want}", table.name);
        }
    }
    Ok(())
}

fn no_disagreement(what: &str, disagreements: Vec<conduit_store::backup::Disagreement>) -> anyhow::Result<()> {
    if let Some((kind, key, counted, kept)) = disagreements.first() {
        bail!(
            "{what}'s maintained counters disagree with counting ({} of them; first: {kind} '{key}' counts {counted} \
             rows but keeps {kept})",
            disagreements.len()
        );
    }
    Ok(())
}

/// Whether a database with these counts holds anything (the counters alone are not data: the
/// migrations start some).
fn holds_data(counts: &BTreeMap<String, i64>) -> Option<String> {
    let held: Vec<String> = TABLES
        .iter()
        .filter(|t| !t.striped)
        .filter_map(|t| counts.get(t.name).filter(|n| **n > 0).map(|n| format!("{n} {}", t.name)))
        .collect();
    (!held.is_empty()).then(|| held.join(", "))
}

async fn restore_sqlite(
    archive: &Path,
    manifest: &Manifest,
    path: &Path,
    replace: bool,
) -> anyhow::Result<(Option<i64>, Samples)> {
    if path.exists() && std::fs::metadata(path)?.len() > 0 && !replace {
        let existing = Archive::open_read_only(path).await?;
        let counts = existing.table_counts().await;
        existing.close().await;
        if let Some(held) = holds_data(&counts?) {
            bail!(
                "the database at {} holds data ({held}): restore into an empty one, or pass --replace to replace it",
                path.display()
            );
        }
    }
    // A restore killed before its rename leaves this behind: it is only ever a scratch copy.
    let scratch = beside(path, ".restoring");
    extract(archive, manifest, &scratch).await?;
    let checked = async {
        let copy = Archive::open(&scratch).await?;
        // The checked copy becomes the database as it is: its statistics go with it.
        let checked = async {
            let migrated_from = check_copy(&copy, manifest).await?;
            copy.analyze().await?;
            Ok::<_, anyhow::Error>((migrated_from, copy.sample_users().await?))
        }
        .await;
        copy.close().await;
        checked
    }
    .await;
    let (migrated_from, samples) = match checked {
        Ok(checked) => checked,
        Err(e) => {
            let _ = std::fs::remove_file(&scratch);
            return Err(e);
        }
    };
    for old in [beside(path, "-wal"), beside(path, "-shm"), beside(path, "-journal")] {
        let _ = std::fs::remove_file(old);
    }
    std::fs::rename(&scratch, path)
        .with_context(|| format!("cannot move the restored database to {}", path.display()))?;
    file::sync_folder(path);
    Ok((migrated_from, samples))
}

async fn restore_postgres(
    url: &str,
    archive: &Path,
    manifest: &Manifest,
    replace: bool,
) -> anyhow::Result<(Option<i64>, Samples)> {
    let store = PgStore::connect(url, small_pool()).await?;
    let restored = async {
        store.migrate().await?;
        if !replace && let Some(held) = holds_data(&store.table_counts().await?) {
            bail!(
                "the PostgreSQL database at {} holds data ({held}): restore into an empty one, or pass --replace to \
                 replace it",
                redact(url)
            );
        }
        let scratch = std::env::temp_dir().join(format!("conduit-restore-{}.db", std::process::id()));
        extract(archive, manifest, &scratch).await?;
        let loaded = async {
            let copy = Archive::open(&scratch).await?;
            let loaded = async {
                let migrated_from = check_copy(&copy, manifest).await?;
                let samples = copy.sample_users().await?;
                let (sender, receiver) = mpsc::channel(4);
                let source = &copy;
                let reading = async move {
                    let read = source.read(&sender).await;
                    drop(sender);
                    read
                };
                let (read, load) = tokio::join!(reading, store.load(receiver));
                read?;
                load?;
                Ok::<_, anyhow::Error>((migrated_from, samples))
            }
            .await;
            copy.close().await;
            loaded
        }
        .await;
        let _ = std::fs::remove_file(&scratch);
        let (migrated_from, samples) = loaded?;
        store.analyze().await?;
        same_counts("the restored database", &store.table_counts().await?, manifest, migrated_from.is_some())?;
        no_disagreement("the restored database", store.audit().await?)?;
        Ok((migrated_from, samples))
    }
    .await;
    store.close().await;
    restored
}

/// [`file::extract`], off the async threads (it reads and hashes the whole archive).
async fn extract(archive: &Path, manifest: &Manifest, scratch: &Path) -> anyhow::Result<()> {
    let (archive, manifest, scratch) = (archive.to_owned(), manifest.clone(), scratch.to_owned());
    tokio::task::spawn_blocking(move || file::extract(&archive, &manifest, &scratch)).await?
}

/// Looks each sampled user up by email through `store`: the same id, the same password hash
/// (so the same password logs in). Returns how many were checked.
async fn look_up(store: &dyn Store, samples: &Samples) -> anyhow::Result<usize> {
    for (id, email, hash) in samples {
        let parsed = Email::parse(email).map_err(|e| anyhow::anyhow!("user {id} has an unreadable email: {e}"))?;
        let found = store.credentials_by_email(&parsed).await?;
        match found {
            Some(credentials) if credentials.user.id.get() == *id && credentials.password_hash == *hash => {}
            Some(_) => bail!("user {id} ({email}) reads back changed from the restored database"),
            None => bail!("user {id} ({email}) is missing from the restored database"),
        }
    }
    Ok(samples.len())
}
