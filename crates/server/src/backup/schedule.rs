//! Scheduled backups inside `conduit serve` (`CONDUIT_BACKUP_DIR`, `CONDUIT_BACKUP_INTERVAL`,
//! `CONDUIT_BACKUP_KEEP`).
//!
//! Time is cut into slots of one interval each, counted from the epoch. At the start of a slot
//! every instance asks the store to claim it (`claim_backup_slot`, an insert only one caller
//! can make), so of several instances sharing a database exactly one takes each backup. It is
//! taken by a child `nice -n 19 conduit backup` (the copy and its checksum take CPU only when
//! the server leaves it), then verified by restoring it into a scratch SQLite database in a
//! child `nice -n 19 conduit restore`, which runs every check a restore makes. A verified one
//! makes the oldest beyond `CONDUIT_BACKUP_KEEP` go. A backup or verification that fails is logged,
//! counted (`conduit_backup_failures`), mailed to the active admins through the outbox, and
//! shown in `/health/ready` (which stays ready: a failed backup is not a failed server).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use conduit_store::{Outgoing, Store};
use serde::Serialize;

use crate::config::Config;
use crate::mail::compose::Composer;
use crate::ops::metrics::Metrics;

/// What `/health/ready` shows of the scheduled backups. That answer is public (load
/// balancers read it), so it tells when and how big, never where or why: the paths and the
/// error stay in the log, the metrics and the admins' mail.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupStatus {
    pub last_backup: Option<Finished>,
    pub last_verified: Option<Finished>,
    /// The last failure, until a backup is verified again.
    pub failure: Option<Failure>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finished {
    #[serde(skip)]
    pub path: PathBuf,
    pub at: DateTime<Utc>,
    pub bytes: u64,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub at: DateTime<Utc>,
    /// `backup` or `verification`.
    pub what: String,
}

/// The status, shared between the schedule and `/health/ready`.
pub type SharedStatus = Arc<Mutex<BackupStatus>>;

/// What the schedule needs from the running server, and what the console asks of it (take one
/// now, verify one, list them).
pub struct Scheduled {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub mail: Arc<Composer>,
    pub metrics: Arc<Metrics>,
    pub status: SharedStatus,
    /// One backup at a time in this process, scheduled or asked for.
    pub running: tokio::sync::Mutex<()>,
    /// The console's verifications, by file name: what each found.
    pub verified: Mutex<std::collections::HashMap<String, String>>,
}

/// One backup in the folder.
pub struct Listed {
    pub name: String,
    pub bytes: u64,
    pub modified: DateTime<Utc>,
}

/// Whether `name` is a backup's file name as the schedule writes them (nothing else in the
/// folder, and nothing outside it, is ever listed or served).
pub fn is_backup_name(name: &str) -> bool {
    name.starts_with("conduit-")
        && name.ends_with(".conduit-backup")
        && !name.contains(['/', '\\'])
        && !name.contains("..")
}

impl Scheduled {
    /// The backups' folder.
    pub fn folder(&self) -> Option<&Path> {
        self.config.backup.backup_dir.as_deref()
    }

    /// The backups in the folder, newest first.
    pub fn list(&self) -> Vec<Listed> {
        let Some(folder) = self.folder() else { return Vec::new() };
        let Ok(entries) = std::fs::read_dir(folder) else { return Vec::new() };
        let mut found: Vec<Listed> = entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok().filter(|n| is_backup_name(n))?;
                let meta = entry.metadata().ok()?;
                Some(Listed { name, bytes: meta.len(), modified: meta.modified().ok()?.into() })
            })
            .collect();
        found.sort_by(|a, b| b.name.cmp(&a.name));
        found
    }

    /// Takes a backup now, as the schedule would (verified, and the folder pruned after).
    pub async fn take_now(&self) {
        if let Some(folder) = self.folder() {
            self.run(folder, -1).await;
        }
    }

    /// Verifies the backup `name` by restoring it into a scratch database, and keeps what it
    /// found for the console.
    pub async fn verify_named(&self, name: &str) {
        let Some(folder) = self.folder() else { return };
        let found = {
            let _one = self.running.lock().await;
            let started = Instant::now();
            match verify(&self.config, &folder.join(name), folder).await {
                Ok(()) => {
                    format!("restores ({:.1} s, {})", started.elapsed().as_secs_f64(), Utc::now().format("%H:%M UTC"))
                }
                Err(e) => format!("failed: {e:#}"),
            }
        };
        tracing::info!(name, %found, "backup verified from the console");
        self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(name.to_owned(), found);
    }

    /// What the console's last verification of `name` found, if any.
    pub fn verification(&self, name: &str) -> Option<String> {
        self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(name).cloned()
    }
}

/// Starts the schedule when a backup folder is configured.
pub fn start(scheduled: Option<Arc<Scheduled>>) -> Option<tokio::task::JoinHandle<()>> {
    let scheduled = scheduled?;
    let folder = scheduled.config.backup.backup_dir.clone()?;
    Some(tokio::spawn(async move {
        let instance = format!("pid {} at {}", std::process::id(), Utc::now().to_rfc3339());
        let every = scheduled.config.backup.backup_interval.as_millis().max(1) as i64;
        loop {
            let now = Utc::now().timestamp_millis();
            let slot = now / every;
            match scheduled.store.claim_backup_slot(slot, &instance, now / 1000).await {
                Ok(true) => scheduled.run(&folder, slot).await,
                Ok(false) => {}
                Err(e) => scheduled.failed("backup", &format!("cannot claim the scheduled backup: {e}")).await,
            }
            let next = (slot + 1) * every;
            let wait = (next - Utc::now().timestamp_millis()).max(0) as u64;
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
    }))
}

impl Scheduled {
    /// Takes the backup of `slot` into `folder` (`-1`: asked for in the console), verifies it,
    /// and prunes the folder.
    async fn run(&self, folder: &Path, slot: i64) {
        let _one = self.running.lock().await;
        if let Err(e) = std::fs::create_dir_all(folder) {
            return self.failed("backup", &format!("cannot create {}: {e}", folder.display())).await;
        }
        // What a backup killed with its server left behind.
        for entry in std::fs::read_dir(folder).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().ends_with(".conduit-backup.partial") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let name = format!("conduit-{}.conduit-backup", Utc::now().format("%Y%m%d-%H%M%S%.3f"));
        let taken = match take(&self.config.database_url, &folder.join(name)).await {
            Ok(taken) => taken,
            Err(e) => return self.failed("backup", &format!("{e:#}")).await,
        };
        let backups = &self.metrics.backups;
        let done = Finished {
            path: taken.path.clone(),
            at: Utc::now(),
            bytes: taken.manifest.payload_bytes,
            seconds: taken.duration.as_secs_f64(),
        };
        backups.last_success.set(done.at.timestamp_millis() as f64 / 1000.0);
        backups.size_bytes.set(done.bytes as i64);
        backups.duration.set(done.seconds);
        tracing::info!(path = %taken.path.display(), slot, bytes = done.bytes, seconds = done.seconds, "scheduled backup taken");
        self.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner).last_backup = Some(done.clone());

        let started = Instant::now();
        if let Err(e) = verify(&self.config, &taken.path, folder).await {
            return self.failed("verification", &format!("{} did not restore: {e:#}", taken.path.display())).await;
        }
        let verified = Finished { at: Utc::now(), seconds: started.elapsed().as_secs_f64(), ..done };
        backups.last_verified.set(verified.at.timestamp_millis() as f64 / 1000.0);
        backups.verify_duration.set(verified.seconds);
        tracing::info!(path = %verified.path.display(), seconds = verified.seconds, "scheduled backup verified");
        {
            let mut status = self.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            status.last_verified = Some(verified);
            status.failure = None;
        }
        prune(folder, self.config.backup.backup_keep);
    }

    /// Logs, counts, shows and mails a failure.
    async fn failed(&self, what: &str, error: &str) {
        tracing::error!(error, "scheduled {what} failed");
        self.metrics.backups.failures.inc();
        self.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner).failure =
            Some(Failure { at: Utc::now(), what: what.to_owned() });
        let admins = match self.store.admin_emails().await {
            Ok(admins) => admins,
            Err(e) => return tracing::error!(error = %e, "cannot list the admins to tell of a failed backup"),
        };
        let mut outgoing = Outgoing::default();
        for admin in admins {
            let mail = self.mail.backup_failed(&admin, what, error);
            match self.store.queue_mail(&mail).await {
                Ok(()) => outgoing.mails.push(mail),
                Err(e) => tracing::error!(error = %e, "cannot queue the mail of a failed backup"),
            }
        }
        self.mail.queued(&self.metrics, &outgoing);
    }
}

/// Takes a backup as `conduit backup` does, in a child `nice -n 19 conduit backup` when this
/// process is the `conduit` binary (in this process otherwise, as in the tests' in-process
/// servers): the copy and its checksum then take CPU only when the server leaves it.
async fn take(database_url: &str, to: &Path) -> anyhow::Result<super::Taken> {
    let started = Instant::now();
    let mut args = vec![std::ffi::OsString::from("backup"), "--to".into()];
    args.push(to.as_os_str().to_owned());
    match nice_conduit(args, database_url, to.parent().unwrap_or(Path::new("."))).await {
        Some(done) => {
            done?;
            let manifest = super::file::read_manifest(to)?;
            Ok(super::Taken { path: to.to_owned(), manifest, duration: started.elapsed() })
        }
        None => super::take(database_url, to, super::Pace::Gentle).await,
    }
}

/// Verifies `archive` by restoring it into a scratch SQLite database in `folder/.verify`,
/// removed after: a child `nice -n 19 conduit restore`, every check of a restore at the lowest
/// CPU priority (in this process, at normal priority, inside another program).
async fn verify(config: &Config, archive: &Path, folder: &Path) -> anyhow::Result<()> {
    let scratch = folder.join(".verify");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;
    let database_url = format!("sqlite://{}", scratch.join("verify.db").display());
    let mut args = vec![std::ffi::OsString::from("restore"), "--replace".into()];
    args.push(archive.as_os_str().to_owned());
    let result = match nice_conduit(args, &database_url, &scratch).await {
        Some(done) => done,
        None => {
            let mut scratch_config = config.clone();
            scratch_config.database_url = database_url;
            super::restore(&scratch_config, archive, true).await.map(|_| ())
        }
    };
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// Runs `conduit ARGS` on `database_url` in `dir` under `nice -n 19`, when this process is the
/// `conduit` binary; `None` when it is not. `Err` carries the child's error line.
async fn nice_conduit(args: Vec<std::ffi::OsString>, database_url: &str, dir: &Path) -> Option<anyhow::Result<()>> {
    let exe = std::env::current_exe().ok()?;
    if exe.file_stem().is_none_or(|stem| stem != "conduit") {
        return None;
    }
    let mut child = std::process::Command::new("nice");
    child
        .args(["-n", "19"])
        .arg(&exe)
        .args(&args)
        .env("DATABASE_URL", database_url)
        .env_remove("CONDUIT_CONFIG")
        .current_dir(dir)
        .stdin(Stdio::null());
    let output = match tokio::task::spawn_blocking(move || child.output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => return Some(Err(anyhow::anyhow!("cannot run nice {}: {e}", exe.display()))),
        Err(e) => return Some(Err(e.into())),
    };
    if output.status.success() {
        return Some(Ok(()));
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Some(Err(anyhow::anyhow!("{}", stderr.trim().trim_start_matches("conduit: error: "))))
}

/// Deletes the oldest scheduled backups beyond `keep` (by name, which sorts by time).
fn prune(folder: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(folder) else { return };
    let mut backups: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("conduit-") && n.ends_with(".conduit-backup"))
        })
        .collect();
    backups.sort();
    let excess = backups.len().saturating_sub(keep);
    for old in &backups[..excess] {
        match std::fs::remove_file(old) {
            Ok(()) => tracing::info!(path = %old.display(), "old scheduled backup deleted"),
            Err(e) => tracing::warn!(path = %old.display(), error = %e, "cannot delete an old scheduled backup"),
        }
    }
}
