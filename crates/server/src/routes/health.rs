//! `GET /health`: 200 when the database answers a ping within two seconds, else 503.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::state::AppState;

const PING_TIMEOUT: Duration = Duration::from_secs(2);

pub fn routes() -> Router<AppState> {
    Router::new().route("/health", get(health))
}

async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let database = match tokio::time::timeout(PING_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => "ok",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: database ping failed");
            "unavailable"
        }
        Err(_) => "timeout",
    };
    let status = if database == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let overall = if status == StatusCode::OK {
        "ok"
    } else {
        "unavailable"
    };
    (
        status,
        Json(json!({ "status": overall, "database": database, "backend": state.store.backend() })),
    )
}
