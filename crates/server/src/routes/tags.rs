//! `GET /api/tags`: every tag in use, most used first.
//!
//! Counting tags reads every row of the tag index, and the answer changes only when an article
//! is written, so the rendered answer is cached: dropped by every article write in this process,
//! and at most [`MAX_AGE`] old otherwise (writes made through other instances).

use std::sync::RwLock;
use std::time::{Duration, Instant};

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

const MAX_AGE: Duration = Duration::from_secs(1);

pub fn routes() -> Router<AppState> {
    Router::new().route("/tags", get(list))
}

#[derive(Serialize, ToSchema)]
pub struct TagsBody {
    tags: Vec<String>,
}

/// The last rendered `{"tags":[...]}` and when it was made.
#[derive(Default)]
pub struct TagsCache(RwLock<Option<(Instant, Bytes)>>);

impl TagsCache {
    fn fresh(&self) -> Option<Bytes> {
        let cached = self.0.read().unwrap_or_else(|p| p.into_inner());
        cached.as_ref().filter(|(at, _)| at.elapsed() < MAX_AGE).map(|(_, body)| body.clone())
    }

    /// Forgets the cached answer: call after any write that can change the tags.
    pub fn invalidate(&self) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = None;
    }
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
            // Stamped with the start of the read: a write that lands during it is not hidden
            // for longer than MAX_AGE.
            *state.tags.0.write().unwrap_or_else(|p| p.into_inner()) = Some((started, body.clone()));
            body
        }
    };
    Ok(([(CONTENT_TYPE, "application/json")], body))
}
