//! `/admin/reports` and `/admin/log`, and the moderation actions every console form posts:
//! through the JSON API's own `take_action` (the same checks, store call and log entry, with
//! the actor).

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use conduit_store::moderation::{LogEntry, LogQuery, QueueEntry};
use serde::Deserialize;

use crate::console::Refusal;
use crate::console::session::{Posted, Staff};
use crate::console::view::{Nav, PAGE, back_to, next_page, render, some, when, when_unix};
use crate::error::ApiError;
use crate::routes::moderation::{ActionInput, take_action};
use crate::state::AppState;

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

/// A queue entry as a row, with what its form needs.
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

impl QueueRow {
    /// How the moderation form names the target: a comment by id, the rest by slug or name.
    pub fn target(&self) -> String {
        if self.kind == "comment" { self.id.to_string() } else { self.label.clone() }
    }
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
pub struct CursorQuery {
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
    Query(query): Query<CursorQuery>,
) -> Result<Response, Refusal> {
    let entries: Vec<QueueRow> =
        state.store.report_queue(query.after, PAGE).await?.into_iter().map(Into::into).collect();
    let next = next_page(entries.len(), || entries.last().map(|e| format!("/admin/reports?after={}", e.first_report)));
    render(&ReportsPage { nav: Nav::of(&staff, "reports"), entries, next })
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
    Query(query): Query<CursorQuery>,
) -> Result<Response, Refusal> {
    let filter = LogQuery { operations: true, before: query.before, limit: PAGE, ..LogQuery::default() };
    let found = state.store.moderation_log(&filter).await?;
    let next = next_page(found.len(), || found.last().map(|e| format!("/admin/log?before={}", e.id)));
    let entries = found.into_iter().map(Into::into).collect();
    render(&LogPage { nav: Nav::of(&staff, "log"), entries, next })
}

/// A moderation action's form. Every field is text, as a form sends it.
#[derive(Deserialize)]
pub struct ActionForm {
    kind: String,
    #[serde(default)]
    article: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    profile: String,
    #[serde(default)]
    reason: String,
    /// For a suspension: a date (`YYYY-MM-DD`, the end of that day in UTC) or RFC 3339.
    #[serde(default)]
    until: String,
    #[serde(default)]
    report: String,
    #[serde(default)]
    password: String,
    back: Option<String>,
}

/// Actions that take something away need a recent login or the password again.
fn destructive(kind: &str) -> bool {
    matches!(kind, "hide" | "delete" | "suspend" | "purge")
}

pub(super) async fn act(
    State(state): State<AppState>,
    Posted { staff, form }: Posted<ActionForm>,
) -> Result<Response, Refusal> {
    if destructive(&form.kind) {
        staff.confirm(&state, some(&form.password)).await?;
    }
    let number = |field: &'static str, text: &str| -> Result<Option<i64>, Refusal> {
        some(text)
            .map(|t| t.parse().map_err(|_| Refusal::Page(ApiError::invalid(field, "must be a number"))))
            .transpose()
    };
    let until = some(&form.until).map(|u| if u.len() == 10 { format!("{u}T23:59:59Z") } else { u });
    let input = ActionInput {
        kind: Some(form.kind.clone()),
        article: some(&form.article),
        comment: number("comment", &form.comment)?,
        profile: some(&form.profile),
        reason: Some(form.reason.clone()),
        until,
        report: number("report", &form.report)?,
    };
    take_action(&state, &staff.user, input).await?;
    Ok(Redirect::to(&back_to(form.back.as_deref())).into_response())
}
