//! Health for orchestrators and load balancers.
//! - `GET /health/live`: 200 while the process runs (no dependency checked).
//! - `GET /health/ready`: 200 only when every dependency answers within two seconds, else 503;
//!   the body names each dependency's state. `GET /health` is the same check.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::state::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn routes() -> Router<AppState> {
    Router::new().route("/health/live", get(live)).route("/health/ready", get(ready)).route("/health", get(ready))
}

async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let database = match tokio::time::timeout(CHECK_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => "ok",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database ping failed");
            "unavailable"
        }
        Err(_) => "timeout",
    };
    let ready = database == "ok";
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({
        "status": if ready { "ok" } else { "unavailable" },
        "checks": { "database": { "status": database, "backend": state.store.backend() } },
    });
    (status, Json(body))
}
