use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use conduit_domain::Profile;
use serde::Serialize;

use crate::auth::{MaybeUser, RequireUser};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/profiles/{username}", get(show))
        .route("/profiles/{username}/follow", post(follow).delete(unfollow))
}

#[derive(Serialize)]
struct ProfileBody {
    profile: Profile,
}

fn found(profile: Option<Profile>) -> ApiResult<Json<ProfileBody>> {
    profile.map(|profile| Json(ProfileBody { profile })).ok_or(ApiError::NotFound("profile"))
}

async fn show(
    State(state): State<AppState>,
    caller: MaybeUser,
    Path(username): Path<String>,
) -> ApiResult<Json<ProfileBody>> {
    found(state.store.profile(&username, caller.id()).await?)
}

async fn follow(
    State(state): State<AppState>,
    caller: RequireUser,
    Path(username): Path<String>,
) -> ApiResult<Json<ProfileBody>> {
    found(state.store.follow(caller.user.id, &username).await?)
}

async fn unfollow(
    State(state): State<AppState>,
    caller: RequireUser,
    Path(username): Path<String>,
) -> ApiResult<Json<ProfileBody>> {
    found(state.store.unfollow(caller.user.id, &username).await?)
}
