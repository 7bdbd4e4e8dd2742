//! Profiles, follows and blocks.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use conduit_domain::{Errors, Profile};
use conduit_store::BlockedUser;
use conduit_store::notifications::written_by;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::extract::{MaybeUser, RequireUser};
use crate::error::ErrorBody;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{DEFAULT_LIMIT, MAX_LIMIT, RawPage, next_cursor, paging, profile_name};
use crate::notify::About;
use crate::state::AppState;

/// The most users one account may block: a list a person keeps, not a filter of the site.
pub const MAX_BLOCKS: i64 = 10_000;

#[derive(Serialize, ToSchema)]
pub struct ProfileBody {
    profile: Profile,
}

fn found(profile: Option<Profile>) -> ApiResult<Json<ProfileBody>> {
    profile.map(|profile| Json(ProfileBody { profile })).ok_or(ApiError::NotFound("profile"))
}

/// A user's profile. Auth is optional: with a token, `following` is the caller's.
#[utoipa::path(get, path = "/profiles/{username}", tag = "Profile", security((), ("Token" = [])),
    params(("username" = String, Path, description = "Username of the profile")),
    responses((status = 200, body = ProfileBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    caller: MaybeUser,
    Path(username): Path<String>,
) -> ApiResult<Json<ProfileBody>> {
    found(state.store.profile(&profile_name(&username)?, caller.id()).await?)
}

/// Follow a user (idempotent). Refused while either blocks the other.
#[utoipa::path(post, path = "/profiles/{username}/follow", tag = "Profile", security(("Token" = [])),
    params(("username" = String, Path, description = "Username to follow")),
    responses((status = 200, body = ProfileBody), (status = 401, body = ErrorBody), (status = 403, description = "A block stands between you", body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn follow(
    State(state): State<AppState>,
    caller: RequireUser,
    Path(username): Path<String>,
) -> ApiResult<Json<ProfileBody>> {
    let name = profile_name(&username)?;
    let followee = state.store.user_id_by_name(&name).await?.ok_or(ApiError::NotFound("profile"))?;
    // Moderators are not exempt: a block keeps their follows out like anyone's.
    if state.store.blocks(followee, caller.user.id).await? {
        return Err(ApiError::Blocked("blocks you: you cannot follow them"));
    }
    if caller.user.blocking > 0 && state.store.blocks(caller.user.id, followee).await? {
        return Err(ApiError::Blocked("is blocked by you: unblock them first (DELETE its /block)"));
    }
    let (profile, written) = written_by(state.store.follow(caller.user.id, &name)).await;
    state.notifier.committed(written, About { actor: &caller.user, article: None, comment: None });
    found(profile?)
}

/// Stop following a user (idempotent).
#[utoipa::path(delete, path = "/profiles/{username}/follow", tag = "Profile", security(("Token" = [])),
    params(("username" = String, Path, description = "Username to unfollow")),
    responses((status = 200, body = ProfileBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn unfollow(
    State(state): State<AppState>,
    caller: RequireUser,
    Path(username): Path<String>,
) -> ApiResult<Json<ProfileBody>> {
    found(state.store.unfollow(caller.user.id, &profile_name(&username)?).await?)
}

/// Block a user (idempotent): their articles and comments leave your listings, search and
/// comment threads; the follows between you end, and they can no longer follow you or comment
/// on your articles. Moderators' own listings are not filtered.
#[utoipa::path(post, path = "/profiles/{username}/block", tag = "Profile", security(("Token" = [])),
    params(("username" = String, Path, description = "Username to block")),
    responses((status = 200, body = ProfileBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "Yourself, or more than 10,000 blocks", body = ErrorBody)))]
pub(crate) async fn block(
    State(state): State<AppState>,
    caller: RequireUser,
    Path(username): Path<String>,
) -> ApiResult<Json<ProfileBody>> {
    let name = profile_name(&username)?;
    if name.as_str() == caller.user.username {
        return Err(ApiError::invalid("profile", "is yours: you cannot block yourself"));
    }
    if caller.user.blocking >= MAX_BLOCKS {
        return Err(ApiError::invalid("profile", format!("cannot be blocked: you block {MAX_BLOCKS} users already")));
    }
    if !state.store.block(caller.user.id, &name).await? {
        return Err(ApiError::NotFound("profile"));
    }
    found(state.store.profile(&name, Some(caller.user.id)).await?)
}

/// Stop blocking a user (idempotent).
#[utoipa::path(delete, path = "/profiles/{username}/block", tag = "Profile", security(("Token" = [])),
    params(("username" = String, Path, description = "Username to unblock")),
    responses((status = 200, body = ProfileBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn unblock(
    State(state): State<AppState>,
    caller: RequireUser,
    Path(username): Path<String>,
) -> ApiResult<Json<ProfileBody>> {
    let name = profile_name(&username)?;
    if !state.store.unblock(caller.user.id, &name).await? {
        return Err(ApiError::NotFound("profile"));
    }
    found(state.store.profile(&name, Some(caller.user.id)).await?)
}

/// A user you block.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = BlockedProfile)]
pub struct BlockedView {
    username: String,
    bio: Option<String>,
    image: Option<String>,
    blocked_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlocksBody {
    blocks: Vec<BlockedView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
pub struct BlocksQuery {
    /// Page size, default 20, capped at 100.
    limit: Option<String>,
    /// Where to start: the nextCursor of the previous page.
    cursor: Option<String>,
}

/// The users you block, in the order of their accounts.
#[utoipa::path(get, path = "/user/blocks", tag = "Profile", security(("Token" = [])), params(BlocksQuery),
    responses((status = 200, body = BlocksBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn blocks(
    State(state): State<AppState>,
    caller: RequireUser,
    query: Result<Query<BlocksQuery>, QueryRejection>,
) -> ApiResult<Json<BlocksBody>> {
    let Query(query) = query.map_err(|e| ApiError::invalid("query", format!("is not valid: {}", e.body_text())))?;
    let mut errors = Errors::new();
    let raw = RawPage { limit: query.limit.as_deref(), offset: None, cursor: query.cursor.as_deref() };
    let page = paging(raw, (DEFAULT_LIMIT, MAX_LIMIT), &mut errors);
    errors.into_result(()).map_err(ApiError::Invalid)?;
    let found: Vec<BlockedUser> = state.store.blocked_users(caller.user.id, page.cursor, page.limit).await?;
    let next_cursor = next_cursor(page, found.len(), found.last().map(|b| b.id));
    let blocks = found
        .into_iter()
        .map(|b| BlockedView { username: b.username, bio: b.bio, image: b.image, blocked_at: b.blocked_at })
        .collect();
    Ok(Json(BlocksBody { blocks, next_cursor }))
}
