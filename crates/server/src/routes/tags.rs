//! `GET /api/tags`: the tags in use, most used first, at most 100. The store caches the list (see
//! `conduit_store::Cached`).

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiResult;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct TagsBody {
    tags: Vec<String>,
}

/// The tags in use, most used first: at most 100.
#[utoipa::path(get, path = "/tags", tag = "Tags", responses((status = 200, body = TagsBody)))]
pub(crate) async fn list(State(state): State<AppState>) -> ApiResult<Json<TagsBody>> {
    Ok(Json(TagsBody { tags: state.store.tags().await? }))
}
