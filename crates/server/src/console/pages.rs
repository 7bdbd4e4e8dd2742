//! The console's pages. Each reads what it shows through the store calls the JSON API uses, by
//! keyset pages of 50, and no page counts rows of a large table: the totals shown are the
//! maintained counts the listings use.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use conduit_domain::User;
use conduit_store::moderation::{LogEntry, LogQuery, QueueEntry, Target, TargetKind};
use conduit_store::{ArticleQuery, Paging};
use serde::Deserialize;

use crate::console::Refusal;
use crate::console::session::Staff;
use crate::error::ApiError;
use crate::http::extract::profile_name;
use crate::state::AppState;

const PAGE: i64 = 50;

/// What every page's header needs: who is logged in, the logout form's token, where we are.
pub struct Nav {
    pub username: String,
    pub role: &'static str,
    pub admin: bool,
    pub csrf: String,
    pub here: &'static str,
}

impl Nav {
    fn of(staff: &Staff, here: &'static str) -> Self {
        Nav {
            username: staff.user.username.clone(),
            role: staff.user.role.as_str(),
            admin: staff.is_admin(),
            csrf: staff.csrf.clone(),
            here,
        }
    }
}

fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn when_unix(at: i64) -> String {
    DateTime::from_timestamp(at, 0).map(when).unwrap_or_default()
}

fn page(template: &impl Template) -> Result<Response, Refusal> {
    Ok(Html(template.render()?).into_response())
}

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

pub(super) async fn dashboard(State(state): State<AppState>, staff: Staff) -> Result<Response, Refusal> {
    let listing = ArticleQuery { page: Paging { limit: 1, ..Paging::default() }, ..ArticleQuery::default() };
    let articles = state.store.list_articles(&listing, None).await?.total;
    let users = state.store.list_users(None, Paging { limit: 1, ..Paging::default() }).await?.total;
    let (requests, server_errors) = state.metrics.request_totals();
    let backups = state.backups.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let describe =
        |f: &crate::backup::schedule::Finished| format!("{} ({} bytes, {:.1} s)", when(f.at), f.bytes, f.seconds);
    let open_targets = state.store.report_queue(None, PAGE).await?.len();
    page(&Dashboard {
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

/// A user as a row of the list and as the head of their page.
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub role: &'static str,
    pub verified: bool,
    pub active: bool,
    pub suspended: Option<String>,
    pub joined: String,
}

impl UserRow {
    fn of(user: &User, now: i64) -> Self {
        UserRow {
            id: user.id.get(),
            username: user.username.clone(),
            email: user.email.clone(),
            role: user.role.as_str(),
            verified: user.email_verified,
            active: user.active,
            suspended: user.suspended_at(now).map(|s| format!("until {}: {}", when_unix(s.until), s.reason)),
            joined: when(user.created_at),
        }
    }
}

#[derive(Deserialize)]
pub struct UsersQuery {
    name: Option<String>,
    active: Option<String>,
    after: Option<i64>,
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage {
    nav: Nav,
    users: Vec<UserRow>,
    total: i64,
    active: String,
    next: Option<String>,
}

pub(super) async fn users(
    State(state): State<AppState>,
    staff: Staff,
    Query(query): Query<UsersQuery>,
) -> Result<Response, Refusal> {
    if let Some(name) = query.name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        let path =
            format!("/admin/users/{}", percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC));
        return Ok(Redirect::to(&path).into_response());
    }
    let active = match query.active.as_deref() {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => None,
    };
    let found = state.store.list_users(active, Paging { limit: PAGE, offset: 0, cursor: query.after }).await?;
    let now = state.clock.now().timestamp();
    let users: Vec<UserRow> = found.items.iter().map(|u| UserRow::of(u, now)).collect();
    let filter = query.active.as_deref().filter(|a| matches!(*a, "true" | "false")).unwrap_or_default().to_owned();
    let next = (users.len() as i64 == PAGE)
        .then(|| users.last().map(|u| format!("/admin/users?active={filter}&after={}", u.id)))
        .flatten();
    page(&UsersPage { nav: Nav::of(&staff, "users"), users, total: found.total, active: filter, next })
}

/// A moderation log entry as a row.
pub struct LogRow {
    pub at: String,
    pub moderator: String,
    pub action: String,
    pub kind: &'static str,
    pub target: String,
    pub user: String,
    pub reason: String,
}

impl From<LogEntry> for LogRow {
    fn from(e: LogEntry) -> Self {
        let action = match e.until {
            Some(until) => format!("{} until {}", e.action, when_unix(until)),
            None => e.action,
        };
        LogRow {
            at: when(e.at),
            moderator: e.moderator,
            action,
            kind: e.target.kind.as_str(),
            target: e.label,
            user: e.user.unwrap_or_default(),
            reason: e.reason,
        }
    }
}

#[derive(Template)]
#[template(path = "console/user.html")]
struct UserPage {
    nav: Nav,
    user: UserRow,
    history: Vec<LogRow>,
    /// May this staff member act on the account (suspend, purge)? Not on moderators or admins.
    actionable: bool,
}

pub(super) async fn user(
    State(state): State<AppState>,
    staff: Staff,
    Path(username): Path<String>,
) -> Result<Response, Refusal> {
    let name = profile_name(&username)?;
    let id = state.store.user_id_by_name(&name).await?.ok_or(ApiError::NotFound("profile"))?;
    let user = state.store.user_by_id(id).await?.ok_or(ApiError::NotFound("profile"))?;
    let target = Target { kind: TargetKind::Profile, id: id.get() };
    let history = LogQuery { target: Some(target), moderator: None, action: None, before: None, limit: PAGE };
    let history = state.store.moderation_log(&history).await?.into_iter().map(Into::into).collect();
    page(&UserPage {
        nav: Nav::of(&staff, "users"),
        actionable: !user.moderates(),
        user: UserRow::of(&user, state.clock.now().timestamp()),
        history,
    })
}

/// A queue entry as a row, with what its forms need.
pub struct QueueRow {
    pub kind: &'static str,
    pub id: i64,
    pub label: String,
    pub user: String,
    pub open: i64,
    pub first_report: i64,
    pub since: String,
    pub reason: String,
    pub details: String,
    pub gone: bool,
}

impl From<QueueEntry> for QueueRow {
    fn from(e: QueueEntry) -> Self {
        QueueRow {
            kind: e.target.kind.as_str(),
            id: e.target.id,
            gone: e.label.is_none(),
            label: e.label.unwrap_or_else(|| "(gone)".into()),
            user: e.user.unwrap_or_default(),
            open: e.open_reports,
            first_report: e.first_report,
            since: when(e.first_reported_at),
            reason: e.reason,
            details: e.details,
        }
    }
}

#[derive(Deserialize)]
pub struct AfterQuery {
    after: Option<i64>,
    before: Option<i64>,
}

#[derive(Template)]
#[template(path = "console/reports.html")]
struct ReportsPage {
    nav: Nav,
    entries: Vec<QueueRow>,
    next: Option<String>,
}

pub(super) async fn reports(
    State(state): State<AppState>,
    staff: Staff,
    Query(query): Query<AfterQuery>,
) -> Result<Response, Refusal> {
    let entries: Vec<QueueRow> =
        state.store.report_queue(query.after, PAGE).await?.into_iter().map(Into::into).collect();
    let next = (entries.len() as i64 == PAGE)
        .then(|| entries.last().map(|e| format!("/admin/reports?after={}", e.first_report)))
        .flatten();
    page(&ReportsPage { nav: Nav::of(&staff, "reports"), entries, next })
}

#[derive(Template)]
#[template(path = "console/log.html")]
struct LogPage {
    nav: Nav,
    entries: Vec<LogRow>,
    next: Option<String>,
}

pub(super) async fn log(
    State(state): State<AppState>,
    staff: Staff,
    Query(query): Query<AfterQuery>,
) -> Result<Response, Refusal> {
    let filter = LogQuery { target: None, moderator: None, action: None, before: query.before, limit: PAGE };
    let found = state.store.moderation_log(&filter).await?;
    let next =
        (found.len() as i64 == PAGE).then(|| found.last().map(|e| format!("/admin/log?before={}", e.id))).flatten();
    let entries = found.into_iter().map(Into::into).collect();
    page(&LogPage { nav: Nav::of(&staff, "log"), entries, next })
}
