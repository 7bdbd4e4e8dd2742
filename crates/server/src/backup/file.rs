//! The archive file: a SQLite database (the backup itself) followed by a trailer that says what
//! it holds and proves it whole.
//!
//! ```text
//! [database: payload_bytes bytes][manifest: JSON][SHA-256 of the manifest: 32 bytes]
//! [manifest length: 8 bytes, little-endian][CONDUIT-BACKUP-1]
//! ```
//!
//! The trailer goes last so a backup is written in one pass and a file cut short anywhere has
//! none: a truncated or half-written archive never looks complete. The manifest carries the
//! payload's SHA-256 and its own is beside it, so one flipped byte anywhere is caught before
//! anything is loaded. To read the database with `sqlite3`, restore it into a file
//! (`DATABASE_URL=sqlite://copy.db conduit restore ARCHIVE`) or cut the trailer off
//! (`head -c PAYLOAD_BYTES`).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const MAGIC: &[u8; 16] = b"CONDUIT-BACKUP-1";
/// The archive format this build writes and reads.
pub const FORMAT: u32 = 1;
/// A manifest is a few hundred bytes; anything much longer is not one.
const MANIFEST_MAX: u64 = 1 << 20;

/// What an archive holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// The Conduit that wrote it.
    pub conduit_version: String,
    /// The archive database's schema: the version of its last SQLite migration.
    pub schema_version: i64,
    /// Where it was taken from: `sqlite` or `postgres`.
    pub source_backend: String,
    pub taken_at: chrono::DateTime<chrono::Utc>,
    /// Rows per table (a maintained counter is one row, whatever its stripes).
    pub tables: BTreeMap<String, i64>,
    pub payload_bytes: u64,
    pub payload_sha256: String,
}

/// Where a backup is written until it is whole: renamed to `to` only once synced.
pub fn partial_path(to: &Path) -> PathBuf {
    crate::ops::database::beside(to, ".partial")
}

/// Seals the database at `partial` into an archive at `to`: hashes it, appends the trailer,
/// syncs, renames, and syncs the folder. `manifest`'s payload fields are filled in here.
pub fn seal(partial: &Path, mut manifest: Manifest, to: &Path) -> anyhow::Result<Manifest> {
    let mut file = OpenOptions::new().read(true).append(true).open(partial).context("cannot reopen the backup")?;
    let (bytes, sha256) = hash(&mut file, u64::MAX)?;
    manifest.payload_bytes = bytes;
    manifest.payload_sha256 = sha256;
    let json = serde_json::to_vec(&manifest).expect("a manifest serializes");
    let mut trailer = json.clone();
    trailer.extend_from_slice(&Sha256::digest(&json));
    trailer.extend_from_slice(&(json.len() as u64).to_le_bytes());
    trailer.extend_from_slice(MAGIC);
    file.write_all(&trailer).context("cannot write the backup's manifest")?;
    file.sync_all().context("cannot sync the backup to disk")?;
    drop(file);
    std::fs::rename(partial, to).with_context(|| format!("cannot rename the backup to {}", to.display()))?;
    sync_folder(to);
    Ok(manifest)
}

/// Makes a rename in `path`'s folder durable (best effort: some filesystems refuse).
pub fn sync_folder(path: &Path) {
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && let Ok(folder) = File::open(folder)
    {
        let _ = folder.sync_all();
    }
}

/// Reads and checks an archive's trailer: `Err` with one line when `path` is missing, not a
/// Conduit backup, cut short, or its manifest is damaged. The payload is checked by
/// [`extract`].
pub fn read_manifest(path: &Path) -> anyhow::Result<Manifest> {
    let mut file = File::open(path).with_context(|| format!("cannot open the backup {}", path.display()))?;
    let length = file.metadata()?.len();
    let not_whole = || {
        anyhow::anyhow!(
            "{} is not a whole Conduit backup: it does not end with a backup trailer (cut short, still being \
             written, or not a backup)",
            path.display()
        )
    };
    if length < 56 {
        return Err(not_whole());
    }
    let mut tail = [0u8; 24];
    file.seek(SeekFrom::End(-24))?;
    file.read_exact(&mut tail)?;
    if &tail[8..] != MAGIC {
        return Err(not_whole());
    }
    let json_len = u64::from_le_bytes(tail[..8].try_into().expect("8 bytes"));
    if json_len > MANIFEST_MAX || json_len + 56 > length {
        bail!("{} is damaged: its manifest's length is wrong", path.display());
    }
    let mut json = vec![0u8; json_len as usize];
    let mut sha = [0u8; 32];
    file.seek(SeekFrom::End(-24 - 32 - json_len as i64))?;
    file.read_exact(&mut json)?;
    file.read_exact(&mut sha)?;
    if Sha256::digest(&json)[..] != sha[..] {
        bail!("{} is damaged: its manifest does not match its checksum", path.display());
    }
    let manifest: Manifest = serde_json::from_slice(&json)
        .with_context(|| format!("{} has a manifest this Conduit cannot read", path.display()))?;
    if manifest.format != FORMAT {
        bail!(
            "{} is a backup of format {}; this Conduit reads format {FORMAT}: restore it with the Conduit that wrote it ({})",
            path.display(),
            manifest.format,
            manifest.conduit_version
        );
    }
    if manifest.payload_bytes + json_len + 56 != length {
        bail!("{} is damaged: it is {length} bytes, its manifest says otherwise", path.display());
    }
    Ok(manifest)
}

/// Copies the archive's database out to `to` (created afresh), checking it against the
/// manifest's checksum on the way; `to` is removed when they differ.
pub fn extract(path: &Path, manifest: &Manifest, to: &Path) -> anyhow::Result<()> {
    let mut from = File::open(path).with_context(|| format!("cannot open the backup {}", path.display()))?;
    let _ = std::fs::remove_file(to);
    let mut out = File::create(to).with_context(|| format!("cannot create {}", to.display()))?;
    let copied = (|| -> anyhow::Result<()> {
        let (bytes, sha256) = copy_hashing(&mut from, &mut out, manifest.payload_bytes)?;
        if bytes != manifest.payload_bytes || sha256 != manifest.payload_sha256 {
            bail!("{} is damaged: its database does not match the manifest's checksum", path.display());
        }
        out.sync_all()?;
        Ok(())
    })();
    if copied.is_err() {
        let _ = std::fs::remove_file(to);
    }
    copied
}

/// The SHA-256 (hex) and length of the first `limit` bytes of `file` from its start.
fn hash(file: &mut File, limit: u64) -> anyhow::Result<(u64, String)> {
    file.seek(SeekFrom::Start(0))?;
    copy_hashing(file, &mut std::io::sink(), limit)
}

fn copy_hashing(from: &mut File, to: &mut impl Write, limit: u64) -> anyhow::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut total = 0u64;
    let mut reader = from.take(limit);
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        to.write_all(&buffer[..n])?;
        total += n as u64;
    }
    Ok((total, hex(&hasher.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
