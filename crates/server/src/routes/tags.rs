use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::error::ApiResult;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/tags", get(list))
}

#[derive(Serialize)]
struct TagsBody {
    tags: Vec<String>,
}

async fn list(State(state): State<AppState>) -> ApiResult<Json<TagsBody>> {
    Ok(Json(TagsBody { tags: state.store.tags().await? }))
}
