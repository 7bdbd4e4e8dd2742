//! `conduit backup` and `conduit restore`: the commands around `crate::backup`.

use std::path::PathBuf;

use clap::Args;

use crate::backup;
use crate::config::Config;
use crate::ops::database::redact;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The archive to write (a new file) [default: ./conduit-backup-UTC_DATE_TIME.conduit-backup]
    #[arg(long, value_name = "PATH")]
    to: Option<PathBuf>,
    /// Read PostgreSQL at full speed, for a database nothing is serving (the final backup of a
    /// move); by default a backup of PostgreSQL goes at half speed, to spare the servers
    #[arg(long)]
    fast: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The archive to restore (written by `conduit backup`)
    #[arg(value_name = "ARCHIVE")]
    archive: PathBuf,
    /// Replace what the target database holds; without it, a database that holds any user,
    /// article or other row is refused
    #[arg(long)]
    replace: bool,
}

/// The default name of a backup taken now.
pub fn default_name() -> PathBuf {
    PathBuf::from(format!("conduit-backup-{}.conduit-backup", chrono::Utc::now().format("%Y%m%d-%H%M%S")))
}

pub async fn backup(config: Config, args: BackupArgs) -> anyhow::Result<()> {
    let to = args.to.unwrap_or_else(default_name);
    println!("backing up the database at {} to {} ...", redact(&config.database_url), to.display());
    let pace = if args.fast { backup::Pace::Fast } else { backup::Pace::Gentle };
    let taken = backup::take(&config.database_url, &to, pace).await?;
    let m = &taken.manifest;
    println!(
        "backed up the {} database to {} in {:.1} s: {} bytes, {}; schema {}, sha256 {}",
        m.source_backend,
        taken.path.display(),
        taken.duration.as_secs_f64(),
        m.payload_bytes,
        rows(&m.tables),
        m.schema_version,
        m.payload_sha256
    );
    Ok(())
}

pub async fn restore(config: Config, args: RestoreArgs) -> anyhow::Result<()> {
    println!("restoring {} into the database at {} ...", args.archive.display(), redact(&config.database_url));
    let restored = backup::restore(&config, &args.archive, args.replace).await?;
    let m = &restored.manifest;
    let migrated = restored.migrated_from.map(|from| format!(", migrated from schema {from}")).unwrap_or_default();
    println!(
        "restored {} (taken from {} at {}) into the database at {} in {:.1} s: {}{migrated}; verified: integrity, \
         every table's rows, the maintained counters, and users read back through the store ({} of them)",
        args.archive.display(),
        m.source_backend,
        m.taken_at.to_rfc3339(),
        redact(&config.database_url),
        restored.duration.as_secs_f64(),
        rows(&m.tables),
        restored.users_checked
    );
    Ok(())
}

fn rows(tables: &std::collections::BTreeMap<String, i64>) -> String {
    tables.iter().map(|(table, n)| format!("{n} {table}")).collect::<Vec<_>>().join(", ")
}
