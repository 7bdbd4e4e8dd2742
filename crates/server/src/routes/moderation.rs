//! Moderation over HTTP: reports by any (verified) user, and for moderators the report queue,
//! the actions and the moderation log (README "Moderation"). Every action goes through one
//! store call, `Store::moderate`, which writes its log entry in the action's transaction.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use conduit_domain::{Errors, User};
use conduit_store::Outgoing;
use conduit_store::moderation::{
    ACTIONS, Action, LOGGED_ACTIONS, LogEntry, LogQuery, MAX_REASON_CHARS, Moderated, ModerationAction, NewReport,
    QueueEntry, REPORT_REASONS, Report, Target, TargetKind,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::extract::{RequireModerator, RequireUser};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::http::extract::{ApiJson, PageQuery, article_slug, next_cursor, page_of, profile_name, query_of};
use crate::limits::{Posting, posting_limits};
use crate::state::AppState;

/// What a report or an action is about, as the API names it.
#[derive(Serialize, ToSchema)]
pub struct TargetView {
    /// `article`, `comment` or `profile`; in the log, also `mail` (an admin requeued it) and
    /// `backup` (an admin took, verified or downloaded one), which only moderators see.
    kind: &'static str,
    /// The article's, comment's or user's id (a message's; 0 for every dead message or a backup).
    id: i64,
}

impl From<Target> for TargetView {
    fn from(t: Target) -> Self {
        TargetView { kind: t.kind.as_str(), id: t.id }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Report)]
pub struct ReportView {
    id: i64,
    target: TargetView,
    reason: String,
    details: String,
    /// `open`, `dismissed` or `actioned`.
    state: String,
    created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resolved_at: Option<DateTime<Utc>>,
}

impl From<Report> for ReportView {
    fn from(r: Report) -> Self {
        ReportView {
            id: r.id,
            target: r.target.into(),
            reason: r.reason,
            details: r.details,
            state: r.state,
            created_at: r.created_at,
            resolved_at: r.resolved_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ReportBody {
    report: ReportView,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportsBody {
    reports: Vec<ReportView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct NewReportRequest {
    report: ReportInput,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = NewReport)]
pub struct ReportInput {
    /// One of spam, harassment, illegal, other.
    #[schema(required, value_type = String)]
    reason: Option<String>,
    /// Anything the moderators should know; up to 1,000 characters.
    #[schema(value_type = Option<String>, max_length = 1000)]
    details: Option<String>,
}

/// One entry of the report queue: a reported target and its open reports.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = QueueEntry)]
pub struct QueueView {
    target: TargetView,
    /// The article's slug (also for a comment: the article it is on) or the username; absent
    /// once the target is gone.
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<String>,
    /// Whose content or account it is; absent once gone.
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    open_reports: i64,
    /// The oldest open report: pass its id as `report` when acting on it.
    first_report: i64,
    first_reported_at: DateTime<Utc>,
    /// The oldest open report's reason and details.
    reason: String,
    details: String,
}

impl From<QueueEntry> for QueueView {
    fn from(e: QueueEntry) -> Self {
        QueueView {
            target: e.target.into(),
            label: e.label,
            user: e.user,
            open_reports: e.open_reports,
            first_report: e.first_report,
            first_reported_at: e.first_reported_at,
            reason: e.reason,
            details: e.details,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueBody {
    entries: Vec<QueueView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// One action of the moderation log.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ModerationLogEntry)]
pub struct LogView {
    id: i64,
    at: DateTime<Utc>,
    /// Who acted; left out of the public log.
    #[serde(skip_serializing_if = "Option::is_none")]
    moderator: Option<String>,
    action: String,
    target: TargetView,
    /// The target as it was named then.
    label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    reason: String,
    /// A suspension's end.
    #[serde(skip_serializing_if = "Option::is_none")]
    until: Option<DateTime<Utc>>,
    /// The report it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<i64>,
}

impl LogView {
    fn of(e: LogEntry, with_moderator: bool) -> Self {
        LogView {
            id: e.id,
            at: e.at,
            moderator: Some(e.moderator).filter(|_| with_moderator),
            action: e.action,
            target: e.target.into(),
            label: e.label,
            user: e.user,
            reason: e.reason,
            until: e.until.and_then(|until| DateTime::from_timestamp(until, 0)),
            report: e.report,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct LogEntryBody {
    entry: LogView,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogBody {
    entries: Vec<LogView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct ActionRequest {
    action: ActionInput,
}

/// Exactly one of `article`, `comment` and `profile` names the target.
#[derive(Deserialize, ToSchema, Default)]
#[schema(as = ModerationAction)]
pub struct ActionInput {
    /// dismiss, hide, unhide, delete (an article or comment), suspend, unsuspend, purge (the
    /// profile's user, or the author of the article or comment).
    #[schema(required, value_type = String)]
    pub(crate) kind: Option<String>,
    /// An article's slug.
    pub(crate) article: Option<String>,
    /// A comment's id.
    pub(crate) comment: Option<i64>,
    /// A username.
    pub(crate) profile: Option<String>,
    /// Why (kept in the log; a suspension's notice tells the user). Up to 1,000 characters.
    #[schema(required, value_type = String, max_length = 1000)]
    pub(crate) reason: Option<String>,
    /// For suspend: when it ends (RFC 3339), in the future.
    pub(crate) until: Option<String>,
    /// The report this answers: it must still be open (409 when another moderator answered
    /// it first). Every open report of the target is closed either way.
    pub(crate) report: Option<i64>,
}

#[derive(Deserialize, IntoParams)]
pub struct LogFilter {
    /// Only actions on this article (slug).
    article: Option<String>,
    /// Only actions on this comment (id).
    comment: Option<String>,
    /// Only actions on this profile (username).
    profile: Option<String>,
    /// Only this moderator's actions (moderators only).
    moderator: Option<String>,
    /// Only this kind of action.
    action: Option<String>,
    /// Page size, default 20, capped at 100.
    limit: Option<String>,
    /// Where to start: the nextCursor of the previous page.
    cursor: Option<String>,
}

// --- reports ---

async fn file_report(
    state: &AppState,
    caller: &RequireUser,
    target: Target,
    input: ReportInput,
) -> ApiResult<(StatusCode, Json<ReportBody>)> {
    let mut errors = Errors::new();
    let reason = match input.reason.as_deref() {
        Some(raw) => REPORT_REASONS.iter().copied().find(|r| *r == raw),
        None => None,
    };
    if reason.is_none() {
        errors.add("reason", format!("must be one of {}", REPORT_REASONS.join(", ")));
    }
    let details = input.details.unwrap_or_default().trim().to_owned();
    if details.chars().count() > MAX_REASON_CHARS {
        errors.add("details", format!("is too long (at most {MAX_REASON_CHARS} characters)"));
    }
    let Some(reason) = reason.filter(|_| errors.is_empty()) else {
        return Err(errors.into());
    };
    state
        .limiter
        .reserve(&posting_limits(&state.limits, Posting::Report, &caller.user, state.clock.now()))
        .await?
        .keep();
    let new = NewReport { reporter: caller.user.id, target, reason, details };
    let report = state.store.report(&new).await?.ok_or(ApiError::NotFound(target.kind.as_str()))?;
    Ok((StatusCode::CREATED, Json(ReportBody { report: report.into() })))
}

async fn article_target(state: &AppState, slug: &str, viewer: &RequireUser) -> ApiResult<Target> {
    let article = state.store.article_ref(&article_slug(slug)?).await?.ok_or(ApiError::NotFound("article"))?;
    if !crate::routes::articles::may_see_ref(&article, Some(&viewer.user)) {
        return Err(ApiError::NotFound("article"));
    }
    Ok(Target { kind: TargetKind::Article, id: article.id.get() })
}

async fn profile_target(state: &AppState, username: &str) -> ApiResult<Target> {
    let id = state.store.user_id_by_name(&profile_name(username)?).await?.ok_or(ApiError::NotFound("profile"))?;
    Ok(Target { kind: TargetKind::Profile, id: id.get() })
}

async fn comment_target(state: &AppState, slug: &str, id: &str, viewer: &RequireUser) -> ApiResult<Target> {
    let article = article_target(state, slug, viewer).await?;
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound("comment"))?;
    let comment = conduit_domain::model::CommentId::new(id);
    state
        .store
        .comment_author(conduit_domain::model::ArticleId::new(article.id), comment)
        .await?
        .ok_or(ApiError::NotFound("comment"))?;
    Ok(Target { kind: TargetKind::Comment, id })
}

/// Report an article to the moderators.
#[utoipa::path(post, path = "/articles/{slug}/report", tag = "Moderation", security(("Token" = [])), request_body = NewReportRequest,
    params(("slug" = String, Path, description = "Slug of the article")),
    responses((status = 201, body = ReportBody), (status = 401, body = ErrorBody), (status = 403, description = "Suspended, or unverified where that is required", body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "You already have an open report of it", body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, description = "Too many reports this hour", body = ErrorBody)))]
pub(crate) async fn report_article(
    State(state): State<AppState>,
    caller: RequireUser,
    Path(slug): Path<String>,
    ApiJson(NewReportRequest { report }): ApiJson<NewReportRequest>,
) -> ApiResult<(StatusCode, Json<ReportBody>)> {
    let target = article_target(&state, &slug, &caller).await?;
    file_report(&state, &caller, target, report).await
}

/// Report a comment to the moderators.
#[utoipa::path(post, path = "/articles/{slug}/comments/{id}/report", tag = "Moderation", security(("Token" = [])), request_body = NewReportRequest,
    params(("slug" = String, Path, description = "Slug of the article"), ("id" = i64, Path, description = "Comment id")),
    responses((status = 201, body = ReportBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(crate) async fn report_comment(
    State(state): State<AppState>,
    caller: RequireUser,
    Path((slug, id)): Path<(String, String)>,
    ApiJson(NewReportRequest { report }): ApiJson<NewReportRequest>,
) -> ApiResult<(StatusCode, Json<ReportBody>)> {
    let target = comment_target(&state, &slug, &id, &caller).await?;
    file_report(&state, &caller, target, report).await
}

/// Report a profile to the moderators.
#[utoipa::path(post, path = "/profiles/{username}/report", tag = "Moderation", security(("Token" = [])), request_body = NewReportRequest,
    params(("username" = String, Path, description = "The user")),
    responses((status = 201, body = ReportBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(crate) async fn report_profile(
    State(state): State<AppState>,
    caller: RequireUser,
    Path(username): Path<String>,
    ApiJson(NewReportRequest { report }): ApiJson<NewReportRequest>,
) -> ApiResult<(StatusCode, Json<ReportBody>)> {
    let target = profile_target(&state, &username).await?;
    file_report(&state, &caller, target, report).await
}

/// Your reports and what became of them, newest first.
#[utoipa::path(get, path = "/user/reports", tag = "Moderation", security(("Token" = [])), params(PageQuery),
    responses((status = 200, body = ReportsBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn my_reports(
    State(state): State<AppState>,
    caller: RequireUser,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<Json<ReportsBody>> {
    let query = query_of(query)?;
    let mut errors = Errors::new();
    let page = page_of(query.limit.as_deref(), query.cursor.as_deref(), &mut errors);
    errors.into_result(()).map_err(ApiError::Invalid)?;
    let found = state.store.reports_of(caller.user.id, page.cursor, page.limit).await?;
    let next_cursor = next_cursor(page, found.len(), found.last().map(|r| r.id));
    Ok(Json(ReportsBody { reports: found.into_iter().map(Into::into).collect(), next_cursor }))
}

// --- moderators ---

/// The report queue: one entry per reported target, oldest open report first (moderators).
#[utoipa::path(get, path = "/moderation/queue", tag = "Moderation", security(("Token" = [])), params(PageQuery),
    responses((status = 200, body = QueueBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn queue(
    State(state): State<AppState>,
    _moderator: RequireModerator,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<Json<QueueBody>> {
    let query = query_of(query)?;
    let mut errors = Errors::new();
    let page = page_of(query.limit.as_deref(), query.cursor.as_deref(), &mut errors);
    errors.into_result(()).map_err(ApiError::Invalid)?;
    let found = state.store.report_queue(page.cursor, page.limit).await?;
    let next_cursor = next_cursor(page, found.len(), found.last().map(|e| e.first_report));
    Ok(Json(QueueBody { entries: found.into_iter().map(Into::into).collect(), next_cursor }))
}

/// Act on an article, comment or profile, answering its reports (moderators). The action, its
/// log entry and the closing of the target's open reports are one transaction; a hidden
/// article, a suspension or a purge holds on every instance when this returns.
#[utoipa::path(post, path = "/moderation/actions", tag = "Moderation", security(("Token" = [])), request_body = ActionRequest,
    responses((status = 200, body = LogEntryBody), (status = 401, body = ErrorBody),
        (status = 403, description = "Not a moderator; or suspending or purging a moderator or admin", body = ErrorBody),
        (status = 404, description = "The target is gone", body = ErrorBody),
        (status = 409, description = "The report was answered by another moderator first: nothing changed", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub(crate) async fn act(
    State(state): State<AppState>,
    RequireModerator(caller): RequireModerator,
    ApiJson(ActionRequest { action: input }): ApiJson<ActionRequest>,
) -> ApiResult<Json<LogEntryBody>> {
    let entry = take_action(&state, &caller.user, input).await?;
    Ok(Json(LogEntryBody { entry: LogView::of(entry, true) }))
}

/// Checks and takes a moderator's action, for the API and the console alike: the same checks,
/// the same store call, the same log entry.
pub(crate) async fn take_action(state: &AppState, moderator: &User, input: ActionInput) -> ApiResult<LogEntry> {
    let now = state.clock.now();
    let mut errors = Errors::new();
    let reason = input.reason.as_deref().unwrap_or_default().trim().to_owned();
    if reason.is_empty() {
        errors.add("reason", "can't be blank: say why (it is kept in the moderation log)");
    } else if reason.chars().count() > MAX_REASON_CHARS {
        errors.add("reason", format!("is too long (at most {MAX_REASON_CHARS} characters)"));
    }
    let action = match input.kind.as_deref() {
        Some("dismiss") => Some(Action::Dismiss),
        Some("hide") => Some(Action::Hide),
        Some("unhide") => Some(Action::Unhide),
        Some("delete") => Some(Action::Delete),
        Some("unsuspend") => Some(Action::Unsuspend),
        Some("purge") => Some(Action::Purge),
        Some("suspend") => match input.until.as_deref().map(DateTime::parse_from_rfc3339) {
            Some(Ok(until)) if until.with_timezone(&Utc) > now => Some(Action::Suspend { until: until.timestamp() }),
            Some(Ok(_)) => {
                errors.add("until", "must be in the future");
                None
            }
            Some(Err(_)) => {
                errors.add("until", "must be a date and time (RFC 3339), like 2027-01-31T00:00:00Z");
                None
            }
            None => {
                errors.add("until", "can't be blank for a suspension: when does it end?");
                None
            }
        },
        _ => {
            errors.add("kind", format!("must be one of {}", ACTIONS.join(", ")));
            None
        }
    };
    let named = [input.article.is_some(), input.comment.is_some(), input.profile.is_some()];
    if named.iter().filter(|n| **n).count() != 1 {
        errors.add("target", "name exactly one of article (a slug), comment (an id) and profile (a username)");
    }
    let Some(action) = action.filter(|_| errors.is_empty()) else {
        return Err(errors.into());
    };
    let target = if let Some(slug) = &input.article {
        let article = state.store.article_ref(&article_slug(slug)?).await?.ok_or(ApiError::NotFound("article"))?;
        Target { kind: TargetKind::Article, id: article.id.get() }
    } else if let Some(id) = input.comment {
        Target { kind: TargetKind::Comment, id }
    } else {
        profile_target(state, input.profile.as_deref().unwrap_or_default()).await?
    };
    if matches!(action, Action::Hide | Action::Unhide | Action::Delete) && target.kind == TargetKind::Profile {
        return Err(ApiError::invalid(
            "kind",
            "hides or deletes an article or comment: name one, or suspend or purge the profile",
        ));
    }
    let mut outgoing = Outgoing::default();
    if let Action::Suspend { until } = action {
        let until = DateTime::from_timestamp(until, 0).map(|at| at.to_rfc3339()).unwrap_or_default();
        outgoing.mails.push(state.mail.suspended(&until, &reason));
    }
    let request = ModerationAction { moderator: moderator.id, action, target, reason, report: input.report, outgoing };
    let moderated = state.store.moderate(&request).await?;
    state.notifier.written();
    match moderated {
        Moderated::Done { entry, .. } => {
            state.mail.queued(&state.metrics, &request.outgoing);
            tracing::info!(moderator = %entry.moderator, action = %entry.action, target = %entry.label, "moderation action");
            Ok(*entry)
        }
        Moderated::TargetGone => Err(ApiError::NotFound(target.kind.as_str())),
        Moderated::ReportClosed => Err(ApiError::ReportClosed),
        Moderated::Protected => Err(ApiError::Forbidden("profile")),
    }
}

/// The moderation log, newest first. Moderators see it whole; other signed-in users see it
/// without the moderators' names when `CONDUIT_PUBLIC_MODERATION_LOG` is on (else 403).
#[utoipa::path(get, path = "/moderation/log", tag = "Moderation", security(("Token" = [])), params(LogFilter),
    responses((status = 200, body = LogBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn log(
    State(state): State<AppState>,
    caller: RequireUser,
    query: Result<Query<LogFilter>, QueryRejection>,
) -> ApiResult<Json<LogBody>> {
    let moderates = caller.user.moderates();
    if !moderates && !state.accounts.public_moderation_log {
        return Err(ApiError::NotModerator(
            "is not a moderator: this site's moderation log is for moderators (CONDUIT_PUBLIC_MODERATION_LOG is off)",
        ));
    }
    let query = query_of(query)?;
    let mut errors = Errors::new();
    let page = page_of(query.limit.as_deref(), query.cursor.as_deref(), &mut errors);
    let action = match query.action.as_deref() {
        None | Some("") => None,
        Some(raw) => {
            let found = LOGGED_ACTIONS.iter().copied().find(|a| *a == raw);
            if found.is_none() {
                errors.add("action", format!("must be one of {}", LOGGED_ACTIONS.join(", ")));
            }
            found
        }
    };
    if query.moderator.is_some() && !moderates {
        errors.add("moderator", "is a filter for moderators only");
    }
    let comment = match query.comment.as_deref().map(str::parse::<i64>) {
        None => None,
        Some(Ok(id)) => Some(Target { kind: TargetKind::Comment, id }),
        Some(Err(_)) => {
            errors.add("comment", "must be a comment's id");
            None
        }
    };
    errors.into_result(()).map_err(ApiError::Invalid)?;
    let target = if let Some(slug) = &query.article {
        let article = state.store.article_ref(&article_slug(slug)?).await?.ok_or(ApiError::NotFound("article"))?;
        Some(Target { kind: TargetKind::Article, id: article.id.get() })
    } else if let Some(username) = &query.profile {
        Some(profile_target(&state, username).await?)
    } else {
        comment
    };
    // The admins' operations on mail and backups are the staff's business, not the public's.
    let filter = LogQuery {
        target,
        operations: moderates,
        moderator: query.moderator,
        action,
        before: page.cursor,
        limit: page.limit,
    };
    let found = state.store.moderation_log(&filter).await?;
    let next_cursor = next_cursor(page, found.len(), found.last().map(|e| e.id));
    let entries = found.into_iter().map(|e| LogView::of(e, moderates)).collect();
    Ok(Json(LogBody { entries, next_cursor }))
}
