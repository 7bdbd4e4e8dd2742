use axum::Json;
use axum::extract::{Path, State};
use conduit_domain::Profile;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::extract::{MaybeUser, RequireUser};
use crate::error::ErrorBody;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::profile_name;
use crate::state::AppState;

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

/// Follow a user (idempotent).
#[utoipa::path(post, path = "/profiles/{username}/follow", tag = "Profile", security(("Token" = [])),
    params(("username" = String, Path, description = "Username to follow")),
    responses((status = 200, body = ProfileBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn follow(
    State(state): State<AppState>,
    caller: RequireUser,
    Path(username): Path<String>,
) -> ApiResult<Json<ProfileBody>> {
    found(state.store.follow(caller.user.id, &profile_name(&username)?).await?)
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
