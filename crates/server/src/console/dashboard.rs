//! `/admin`: how the site and this instance are doing, at a glance.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use conduit_store::{ArticleQuery, Paging};

use crate::console::Refusal;
use crate::console::session::Staff;
use crate::console::view::{Nav, PAGE, render, when};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "console/dashboard.html")]
struct Dashboard {
    nav: Nav,
    articles: i64,
    users: i64,
    requests: u64,
    server_errors: u64,
    mail: Vec<(&'static str, u64)>,
    backups_scheduled: bool,
    last_backup: Option<String>,
    last_verified: Option<String>,
    backup_failure: Option<String>,
    open_targets: usize,
}

/// The totals are the maintained counts the listings use (no rows are counted here).
pub(super) async fn dashboard(State(state): State<AppState>, staff: Staff) -> Result<Response, Refusal> {
    let listing = ArticleQuery { page: Paging { limit: 1, ..Paging::default() }, ..ArticleQuery::default() };
    let articles = state.store.list_articles(&listing, None).await?.total;
    let users = state.store.list_users(None, Paging { limit: 1, ..Paging::default() }).await?.total;
    let (requests, server_errors) = state.metrics.request_totals();
    let backups = state.backups.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let describe =
        |f: &crate::backup::schedule::Finished| format!("{} ({} bytes, {:.1} s)", when(f.at), f.bytes, f.seconds);
    let open_targets = state.store.report_queue(None, PAGE).await?.len();
    render(&Dashboard {
        nav: Nav::of(&staff, "dashboard"),
        articles,
        users,
        requests,
        server_errors,
        mail: state.metrics.mail_totals(),
        backups_scheduled: state.backups_scheduled,
        last_backup: backups.last_backup.as_ref().map(describe),
        last_verified: backups.last_verified.as_ref().map(describe),
        backup_failure: backups.failure.map(|f| format!("{} failed at {}", f.what, when(f.at))),
        open_targets,
    })
}
