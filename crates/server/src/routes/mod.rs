//! The router: one file per resource.

mod articles;
mod comments;
mod health;
mod profiles;
mod tags;
mod users;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::extract::BODY_LIMIT;
use crate::state::AppState;

/// The whole application, ready to serve. Separate from [`crate::serve`] so tests can drive it
/// on any listener.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .merge(users::routes())
        .merge(profiles::routes())
        .merge(articles::routes())
        .merge(comments::routes())
        .merge(tags::routes());
    Router::new()
        .nest("/api", api)
        .merge(health::routes())
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(CatchPanicLayer::custom(|_| ApiError::Internal("handler panicked".into()).into_response()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
                })
                .on_response(|res: &Response, latency: Duration, _span: &tracing::Span| {
                    tracing::info!(status = res.status().as_u16(), latency_us = latency.as_micros() as u64, "response");
                }),
        )
}

async fn unknown_route() -> ApiError {
    ApiError::NotFound("route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
