//! `GET /api/tags`: every tag in use, most used first.
//!
//! The rendered answer is cached ([`crate::tag_cache`]): dropped by every article write in this
//! process, and at most a second old otherwise (writes made through other instances).

use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiResult;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/tags", get(list))
}

#[derive(Serialize, ToSchema)]
pub struct TagsBody {
    tags: Vec<String>,
}

/// Every tag in use, most used first.
#[utoipa::path(get, path = "/tags", tag = "Tags", responses((status = 200, body = TagsBody)))]
pub(crate) async fn list(State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    let body = match state.tags.fresh() {
        Some(body) => body,
        None => {
            let started = Instant::now();
            let tags = state.store.tags().await?;
            let body = Bytes::from(
                serde_json::to_vec(&TagsBody { tags }).map_err(|e| crate::error::ApiError::Internal(e.to_string()))?,
            );
            state.tags.keep(started, body.clone());
            body
        }
    };
    Ok(([(CONTENT_TYPE, "application/json")], body))
}
