//! Health for orchestrators and load balancers.
//! - `GET /health/live`: 200 while the process runs (no dependency checked).
//! - `GET /health/ready`: 200 only when every dependency (the database, and Redis when
//!   configured) answers within two seconds, else 503; the body names each dependency's state.
//!   `GET /health` is the same check. With scheduled backups on (`CONDUIT_BACKUP_DIR`), the
//!   body also shows the last backup, the last verified one and the last failure: a failed
//!   backup does not make the server unready.

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
    if state.backups_scheduled {
        let backups = state.backups.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let status = if backups.failure.is_some() { "failing" } else { "ok" };
        let mut details = serde_json::to_value(&backups).unwrap_or_default();
        details["status"] = json!(status);
        checks["backup"] = details;
    }
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(json!({ "status": if ready { "ok" } else { "unavailable" }, "checks": checks })))
}
