//! Notifications: the inbox (a page, the unread count, marking read) and the live stream
//! (Server-Sent Events). README "Notifications" says what a client does with them.
//!
//! The stream: `event: notification` with `id:` the notification's id, in id order; first, on
//! a reconnect (`Last-Event-ID`), what was missed, or `event: reset` when some of that is no
//! longer kept; then `event: ready` with the unread count and an id that a later reconnect
//! resumes from. Keep-alive comments every `CONDUIT_NOTIFICATIONS_KEEP_ALIVE` (30 s). The
//! stream's text is written by `notify::sse`.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use conduit_domain::Errors;
use conduit_store::notifications::Resume;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::extract::RequireUser;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::http::extract::{PageQuery, page_of, query_of};
use crate::notify::sse;
use crate::notify::view::NotificationView;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationsBody {
    notifications: Vec<NotificationView>,
    unread_count: i64,
    /// Give it back as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnreadBody {
    unread_count: i64,
}

/// One event of the stream, as a reader of `text/event-stream` sees it (the document's schema
/// for the stream is this, per event).
#[derive(Serialize, ToSchema)]
pub struct StreamEvent {
    /// `notification`, `ready` or `reset`.
    event: String,
    /// Where a reconnect resumes from (on `notification` and `ready`).
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    /// JSON: a Notification, `{"unreadCount": n}` (`ready`) or `{}` (`reset`).
    data: String,
}

#[derive(Deserialize, IntoParams)]
pub struct ReadQuery {
    /// Mark read only notifications up to this id (the newest the client showed), so one that
    /// arrived meanwhile stays unread. All when absent.
    through: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
pub struct StreamQuery {
    /// Where to resume, for a client that cannot send the `Last-Event-ID` header (the header
    /// wins when both are sent).
    last_event_id: Option<String>,
}

/// An id a client sent: a whole number, not negative.
fn event_id(field: &'static str, raw: &str) -> ApiResult<i64> {
    raw.trim()
        .parse::<i64>()
        .ok()
        .filter(|id| *id >= 0)
        .ok_or_else(|| ApiError::invalid(field, "must be a notification id (a whole number, 0 or more)"))
}

/// Your notifications, newest first, with the unread count.
#[utoipa::path(get, path = "/notifications", tag = "Notifications", security(("Token" = [])), params(PageQuery),
    responses((status = 200, body = NotificationsBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: RequireUser,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<Json<NotificationsBody>> {
    let query = query_of(query)?;
    let mut errors = Errors::new();
    let page = page_of(query.limit.as_deref(), query.cursor.as_deref(), &mut errors);
    errors.into_result(()).map_err(ApiError::Invalid)?;
    let user = caller.user.id;
    let (found, next) = state.store.notifications(user, page.cursor, page.limit).await?;
    let unread_count = state.store.unread_notifications(user).await?;
    Ok(Json(NotificationsBody {
        notifications: found.into_iter().map(Into::into).collect(),
        unread_count,
        next_cursor: next.map(conduit_domain::cursor::encode),
    }))
}

/// Mark one notification read.
#[utoipa::path(post, path = "/notifications/{id}/read", tag = "Notifications", security(("Token" = [])),
    params(("id" = i64, Path, description = "The notification's id")),
    responses((status = 200, body = UnreadBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn read_one(
    State(state): State<AppState>,
    caller: RequireUser,
    Path(id): Path<String>,
) -> ApiResult<Json<UnreadBody>> {
    let id = event_id("id", &id)?;
    if !state.store.mark_notification_read(caller.user.id, id).await? {
        return Err(ApiError::NotFound("notification"));
    }
    Ok(Json(UnreadBody { unread_count: state.store.unread_notifications(caller.user.id).await? }))
}

/// Mark your notifications read: all, or up to `through`.
#[utoipa::path(post, path = "/notifications/read", tag = "Notifications", security(("Token" = [])), params(ReadQuery),
    responses((status = 200, body = UnreadBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn read_all(
    State(state): State<AppState>,
    caller: RequireUser,
    query: Result<Query<ReadQuery>, QueryRejection>,
) -> ApiResult<Json<UnreadBody>> {
    let through = query_of(query)?.through.map(|raw| event_id("through", &raw)).transpose()?;
    state.store.mark_notifications_read(caller.user.id, through).await?;
    Ok(Json(UnreadBody { unread_count: state.store.unread_notifications(caller.user.id).await? }))
}

/// Your notifications as they happen (Server-Sent Events; see the module's doc, and README
/// "Notifications").
#[utoipa::path(get, path = "/notifications/stream", tag = "Notifications", security(("Token" = [])),
    params(StreamQuery, ("Last-Event-ID" = Option<String>, Header, description = "The id of the last event received: what came after it is sent first")),
    responses((status = 200, description = "`text/event-stream`: events `notification` (data: a Notification, id: its id), `reset` and `ready` (data: {\"unreadCount\": n})", content_type = "text/event-stream", body = StreamEvent),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, description = "The account holds the most streams allowed", body = ErrorBody)))]
pub(crate) async fn stream(
    State(state): State<AppState>,
    caller: RequireUser,
    headers: HeaderMap,
    query: Result<Query<StreamQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let query = query_of(query)?;
    let header = headers.get("last-event-id").map(|v| v.to_str().unwrap_or("?").to_owned());
    let last = match header.or(query.last_event_id) {
        Some(raw) if raw.trim().is_empty() => None,
        Some(raw) => Some(event_id("Last-Event-ID", &raw)?),
        None => None,
    };
    let user = caller.user.id;
    // Subscribed before `through` is read: whatever is handed out after, this stream gets;
    // up to `through`, it reads from the database.
    let subscription = state.notifier.hub.subscribe(user).ok_or(ApiError::TooManyStreams)?;
    state.notifier.stream_opened();
    let through = state.notifier.hub.delivered();
    let mut first = Vec::new();
    if let Some(last) = last.filter(|last| *last < through) {
        let missed = match state.store.notifications_resume(user, last).await? {
            Resume::TooOld => None,
            Resume::Exact => state.store.notifications_replay(user, last, through, sse::REPLAY_LIMIT).await?,
        };
        match missed {
            Some(missed) => first.extend(missed.into_iter().filter_map(|(id, n)| n.map(|n| sse::notification(id, n)))),
            None => first.push(sse::frame("reset", None, "{}")),
        }
    }
    // A client already past `through` (it was served by an instance further along) resumes
    // from where it is.
    let from = last.map_or(through, |last| last.max(through));
    let unread = state.store.unread_notifications(user).await?;
    first.push(sse::frame("ready", Some(from), &format!("{{\"unreadCount\":{unread}}}")));
    Ok(sse::response(first, subscription, state.store.clone(), from, state.notifier.keep_alive))
}
