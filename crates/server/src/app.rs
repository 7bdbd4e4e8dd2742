//! The whole application: the handlers, the API documents, and the layers around them.

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::error::ApiError;
use crate::state::AppState;
use crate::{layers, openapi, routes};

/// The whole application, ready to serve. Separate from [`crate::serve`] so tests can drive it
/// on any listener.
pub fn app(state: AppState) -> Router {
    let mut router = routes::routes().merge(openapi::routes());
    if state.metrics_on_main {
        router = router.route("/metrics", get(metrics));
    }
    let router =
        router.fallback(unknown_route).method_not_allowed_fallback(method_not_allowed).with_state(state.clone());
    layers::wrap(router, &state)
}

/// `/metrics` alone, for `CONDUIT_METRICS_BIND`.
pub fn metrics_app(state: AppState) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(state)
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.render(&state.store))
}

async fn unknown_route() -> ApiError {
    ApiError::NotFound("route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
