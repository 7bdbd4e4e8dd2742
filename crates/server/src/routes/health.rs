//! Health for orchestrators and load balancers.
//! - `GET /health/live`: 200 while the process runs (no dependency checked).
//! - `GET /health/ready`: 200 only when every dependency (the database, and Redis when
//!   configured) answers within two seconds, else 503; the body names each dependency's state.
//!   `GET /health` is the same check.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::state::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// "ok", "unavailable" or "timeout", for one dependency's check.
async fn check<E: std::fmt::Display>(name: &str, ping: impl Future<Output = Result<(), E>>) -> &'static str {
    match tokio::time::timeout(CHECK_TIMEOUT, ping).await {
        Ok(Ok(())) => "ok",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, dependency = name, "readiness check failed");
            "unavailable"
        }
        Err(_) => "timeout",
    }
}

pub(crate) async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let database = check("database", state.store.ping()).await;
    let mut checks = json!({ "database": { "status": database, "backend": state.store.backend() } });
    let mut ready = database == "ok";
    if let Some(redis) = &state.redis {
        let redis = check("redis", crate::ops::redis::ping(redis)).await;
        checks["redis"] = json!({ "status": redis });
        ready &= redis == "ok";
    }
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(json!({ "status": if ready { "ok" } else { "unavailable" }, "checks": checks })))
}
