use crate::extract::article_slug;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use conduit_domain::model::{ArticleId, CommentId};
use conduit_domain::{Comment, Errors, validation as v};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{MaybeUser, RequireUser};
use crate::error::ErrorBody;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/articles/{slug}/comments", get(list).post(create))
        .route("/articles/{slug}/comments/{id}", delete(remove))
}

#[derive(Serialize, ToSchema)]
pub struct CommentBody {
    comment: Comment,
}

#[derive(Serialize, ToSchema)]
pub struct CommentsBody {
    comments: Vec<Comment>,
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

async fn article_id(state: &AppState, slug: &str) -> ApiResult<ArticleId> {
    Ok(state.store.article_ref(&article_slug(slug)?).await?.ok_or(ApiError::NotFound("article"))?.id)
}

/// An article's comments, oldest first. Auth is optional.
#[utoipa::path(get, path = "/articles/{slug}/comments", tag = "Comments", security((), ("Token" = [])),
    params(("slug" = String, Path, description = "Slug of the article")),
    responses((status = 200, body = CommentsBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: MaybeUser,
    Path(slug): Path<String>,
) -> ApiResult<Json<CommentsBody>> {
    let article = article_id(&state, &slug).await?;
    Ok(Json(CommentsBody { comments: state.store.comments(article, caller.id()).await? }))
}

/// Comment on an article.
#[utoipa::path(post, path = "/articles/{slug}/comments", tag = "Comments", security(("Token" = [])), request_body = NewCommentRequest,
    params(("slug" = String, Path, description = "Slug of the article")),
    responses((status = 201, body = CommentBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
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
    let article = article_id(&state, &slug).await?;
    let comment = state.store.create_comment(article, caller.user.id, &body).await?;
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
    let article = article_id(&state, &slug).await?;
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
