use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use conduit_domain::model::{ArticleId, CommentId};
use conduit_domain::{Comment, Errors, User, validation as v};
use conduit_store::notifications::written_by;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::extract::{MaybeUser, RequireUser};
use crate::error::ErrorBody;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, RawPage, article_slug, next_cursor, paging};
use crate::limits::{Posting, held_for_review, posting_limits};
use crate::notify::About;
use crate::routes::articles::may_see_ref;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct CommentBody {
    comment: Comment,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommentsBody {
    comments: Vec<Comment>,
    /// Where the next page starts: pass it back as `cursor`. Absent on a page that was not
    /// full (the last one).
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// Comments come a page at a time too, but a large one: a client that knows nothing of paging
/// (the spec has none for comments) sees every comment of any article with fewer.
pub const DEFAULT_COMMENTS_LIMIT: i64 = 500;
pub const MAX_COMMENTS_LIMIT: i64 = 1000;

#[derive(Debug, Default, Deserialize)]
pub struct CommentsQuery {
    limit: Option<String>,
    offset: Option<String>,
    cursor: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct NewCommentRequest {
    comment: CommentInput,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = NewComment)]
pub struct CommentInput {
    #[schema(required, value_type = String, min_length = 1, max_length = 65536, pattern = r"\S")]
    body: Option<String>,
}

/// The article behind `slug`, if `viewer` may see it (a hidden one only its author and
/// moderators may).
async fn article_id(state: &AppState, slug: &str, viewer: Option<&User>) -> ApiResult<ArticleId> {
    let article = state.store.article_ref(&article_slug(slug)?).await?.ok_or(ApiError::NotFound("article"))?;
    if !may_see_ref(&article, viewer) {
        return Err(ApiError::NotFound("article"));
    }
    Ok(article.id)
}

/// An article's comments, oldest first, a page at a time. Auth is optional.
#[utoipa::path(get, path = "/articles/{slug}/comments", tag = "Comments", security((), ("Token" = [])),
    params(("slug" = String, Path, description = "Slug of the article"),
        ("limit" = Option<i32>, Query, minimum = 0, description = "Page size, default 500, capped at 1000; a page also ends once it holds 1 MiB of text (then nextCursor goes on)"),
        ("offset" = Option<i32>, Query, minimum = 0, maximum = 10000, description = "Comments to skip, default 0, at most 10,000 (then use cursor)"),
        ("cursor" = Option<String>, Query, description = "Where to start: the nextCursor of the previous page")),
    responses((status = 200, body = CommentsBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: MaybeUser,
    Path(slug): Path<String>,
    query: Result<Query<CommentsQuery>, QueryRejection>,
) -> ApiResult<Json<CommentsBody>> {
    let Query(query) = query.map_err(|e| ApiError::invalid("query", format!("is not valid: {}", e.body_text())))?;
    let mut errors = Errors::new();
    let raw =
        RawPage { limit: query.limit.as_deref(), offset: query.offset.as_deref(), cursor: query.cursor.as_deref() };
    let page = paging(raw, (DEFAULT_COMMENTS_LIMIT, MAX_COMMENTS_LIMIT), &mut errors);
    errors.into_result(()).map_err(ApiError::Invalid)?;
    let article = article_id(&state, &slug, caller.0.as_ref().map(|c| &c.user)).await?;
    let comments = state.store.comments(article, caller.id(), page).await?;
    let last = comments.last().map(|c| c.id.get());
    // A page cut short by its text budget goes on like a full one.
    let text: i64 = comments.iter().map(conduit_store::comment_bytes).sum();
    let next_cursor = if text >= conduit_store::COMMENT_PAGE_BYTES {
        last.map(conduit_domain::cursor::encode)
    } else {
        next_cursor(page, comments.len(), last)
    };
    Ok(Json(CommentsBody { comments, next_cursor }))
}

/// Comment on an article. A new account's comment with many links
/// (`CONDUIT_NEW_ACCOUNT_HOLD_LINKS`) is held for review, as an article is.
#[utoipa::path(post, path = "/articles/{slug}/comments", tag = "Comments", security(("Token" = [])), request_body = NewCommentRequest,
    params(("slug" = String, Path, description = "Slug of the article")),
    responses((status = 201, body = CommentBody), (status = 401, body = ErrorBody),
        (status = 403, description = "Suspended, or the article's author blocks you", body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, description = "The account posted its comments for this minute (CONDUIT_COMMENTS_PER_MINUTE)", body = ErrorBody)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: RequireUser,
    Path(slug): Path<String>,
    ApiJson(NewCommentRequest { comment: input }): ApiJson<NewCommentRequest>,
) -> ApiResult<(StatusCode, Json<CommentBody>)> {
    let mut errors = Errors::new();
    let body = errors.check("body", v::text(input.body.as_deref().unwrap_or_default(), v::COMMENT_MAX));
    let Some(body) = body else {
        return Err(errors.into());
    };
    let slug = article_slug(&slug)?;
    let article = state.store.article_ref(&slug).await?.ok_or(ApiError::NotFound("article"))?;
    if !may_see_ref(&article, Some(&caller.user)) {
        return Err(ApiError::NotFound("article"));
    }
    if !caller.user.moderates() && state.store.blocks(article.author, caller.user.id).await? {
        return Err(ApiError::Blocked("blocks you: you cannot comment on their articles"));
    }
    let limits = posting_limits(&state.limits, Posting::Comment, &caller.user, state.clock.now());
    state.limiter.reserve(&limits).await?.keep();
    let held = held_for_review(&state.limits, &caller.user, state.clock.now(), &[&body]);
    let (comment, written) =
        written_by(state.store.create_comment(article.id, caller.user.id, &body, held.as_deref())).await;
    let comment = comment?;
    let about = About {
        actor: &caller.user,
        article: Some((slug.as_str(), article.title.as_str())),
        comment: Some((comment.id.get(), body.as_str())),
    };
    state.notifier.committed(written, about);
    Ok((StatusCode::CREATED, Json(CommentBody { comment })))
}

/// Delete one of your comments.
#[utoipa::path(delete, path = "/articles/{slug}/comments/{id}", tag = "Comments", security(("Token" = [])),
    params(("slug" = String, Path, description = "Slug of the article"), ("id" = i64, Path, description = "Comment id")),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn remove(
    State(state): State<AppState>,
    caller: RequireUser,
    Path((slug, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let article = article_id(&state, &slug, Some(&caller.user)).await?;
    // A non-numeric id names no comment: that is a 404, not a malformed request.
    let id: CommentId = id.parse().map_err(|_| ApiError::NotFound("comment"))?;
    let author = state.store.comment_author(article, id).await?.ok_or(ApiError::NotFound("comment"))?;
    if author != caller.user.id {
        return Err(ApiError::Forbidden("comment"));
    }
    if state.store.delete_comment(id, caller.user.id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("comment"))
    }
}
