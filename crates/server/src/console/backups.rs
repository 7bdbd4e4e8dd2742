//! `/admin/backups` (admins): this instance's backups folder (`CONDUIT_BACKUP_DIR`), a backup
//! taken now, a backup verified by restoring it, a backup downloaded (with the password again:
//! it is the whole database).

use askama::Template;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::response::{IntoResponse, Redirect, Response};
use conduit_store::moderation::BackupAction;
use serde::Deserialize;

use crate::backup::schedule::{Scheduled, is_backup_name};
use crate::console::Refusal;
use crate::console::session::{Nothing, Posted, Staff};
use crate::console::view::{Nav, render, some, when};
use crate::error::ApiError;
use crate::state::AppState;

pub struct BackupRow {
    pub name: String,
    pub bytes: u64,
    pub taken: String,
    pub verification: String,
}

#[derive(Template)]
#[template(path = "console/backups.html")]
struct BackupsPage {
    nav: Nav,
    scheduled: bool,
    folder: String,
    backups: Vec<BackupRow>,
    last_verified: Option<String>,
    failure: Option<String>,
}

fn runner(state: &AppState) -> Result<&std::sync::Arc<Scheduled>, Refusal> {
    state.backup_runner.as_ref().ok_or(Refusal::Page(ApiError::invalid(
        "backups",
        "are not configured on this instance: set CONDUIT_BACKUP_DIR",
    )))
}

pub(super) async fn backups(State(state): State<AppState>, staff: Staff) -> Result<Response, Refusal> {
    staff.require_admin()?;
    let status = state.backups.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let (folder, backups) = match &state.backup_runner {
        Some(runner) => (
            runner.folder().map(|f| f.display().to_string()).unwrap_or_default(),
            runner
                .list()
                .into_iter()
                .map(|b| BackupRow {
                    verification: runner.verification(&b.name).unwrap_or_default(),
                    taken: when(b.modified),
                    bytes: b.bytes,
                    name: b.name,
                })
                .collect(),
        ),
        None => (String::new(), Vec::new()),
    };
    render(&BackupsPage {
        nav: Nav::of(&staff, "backups"),
        scheduled: state.backup_runner.is_some(),
        folder,
        backups,
        last_verified: status.last_verified.map(|v| when(v.at)),
        failure: status.failure.map(|f| format!("the last {} failed at {} (see the log)", f.what, when(f.at))),
    })
}

/// Starts a backup in the background (one at a time); the page lists it when it is written.
pub(super) async fn take(
    State(state): State<AppState>,
    Posted { staff, form: Nothing {} }: Posted<Nothing>,
) -> Result<Response, Refusal> {
    staff.require_admin()?;
    let runner = runner(&state)?.clone();
    state.store.log_backup(staff.user.id, BackupAction::Take, "(a new one)").await?;
    tokio::spawn(async move { runner.take_now().await });
    Ok(Redirect::to("/admin/backups").into_response())
}

#[derive(Deserialize)]
pub struct NamedForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

fn named(runner: &Scheduled, name: &str) -> Result<std::path::PathBuf, Refusal> {
    let folder = runner.folder().ok_or(Refusal::Page(ApiError::NotFound("backup")))?;
    let path = folder.join(name);
    if !is_backup_name(name) || !path.is_file() {
        return Err(Refusal::Page(ApiError::NotFound("backup")));
    }
    Ok(path)
}

/// Verifies one backup in the background; the page shows what it found.
pub(super) async fn verify(
    State(state): State<AppState>,
    Posted { staff, form }: Posted<NamedForm>,
) -> Result<Response, Refusal> {
    staff.require_admin()?;
    let runner = runner(&state)?.clone();
    named(&runner, &form.name)?;
    state.store.log_backup(staff.user.id, BackupAction::Verify, &form.name).await?;
    runner.verified.lock().unwrap_or_else(|p| p.into_inner()).insert(form.name.clone(), "verifying".into());
    tokio::spawn(async move { runner.verify_named(&form.name).await });
    Ok(Redirect::to("/admin/backups").into_response())
}

/// Sends one backup's file, streamed (it can be as large as the database).
pub(super) async fn download(
    State(state): State<AppState>,
    Posted { staff, form }: Posted<NamedForm>,
) -> Result<Response, Refusal> {
    staff.require_admin()?;
    staff.confirm(&state, some(&form.password)).await?;
    let runner = runner(&state)?;
    let path = named(runner, &form.name)?;
    let file =
        tokio::fs::File::open(&path).await.map_err(|e| ApiError::Internal(format!("{}: {e}", path.display())))?;
    let length = file.metadata().await.map_err(|e| ApiError::Internal(e.to_string()))?.len();
    state.store.log_backup(staff.user.id, BackupAction::Download, &form.name).await?;
    let chunks = futures::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut buffer = vec![0; 64 * 1024];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(buffer)), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    Ok((
        [
            (CONTENT_TYPE, "application/octet-stream".to_owned()),
            (CONTENT_LENGTH, length.to_string()),
            (CONTENT_DISPOSITION, format!("attachment; filename=\"{}\"", form.name)),
        ],
        Body::from_stream(chunks),
    )
        .into_response())
}
