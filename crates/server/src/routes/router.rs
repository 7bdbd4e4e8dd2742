//! Every route the server answers, once, next to its handler: read this file to find where a
//! request goes. The layers around every route (request ids, limits, sessions, ...) are in
//! `http/edge.rs`. The operator's console (`/admin/...`) has its own table in `console/mod.rs`.
//!
//! Admin operations live under `/api/admin/`, so no username can shadow them: a user named
//! `login` or `verify` is still `PUT /api/admin/users/login`, never `POST /api/users/login`.

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::ApiError;
use crate::http::edge;
use crate::routes::openapi::ApiDoc;
use crate::routes::{
    account, admin, articles, comments, export, feeds, health, moderation, notifications, profiles, session, tags,
    users,
};
use crate::state::AppState;

/// The API under `/api`, without the layers around it.
fn api() -> Router<AppState> {
    Router::new()
        // users and authentication (the RealWorld spec)
        .route("/users", post(users::register))
        .route("/users/login", post(users::login))
        .route("/user", get(users::current).put(users::update).delete(account::delete))
        // browser sessions
        .route("/session", post(session::login).delete(session::logout))
        // the account lifecycle by mail
        .route("/users/verify", post(account::verify))
        .route("/users/verify/resend", post(account::resend))
        .route("/users/password-reset", post(account::request_reset))
        .route("/users/password-reset/confirm", post(account::confirm_reset))
        .route("/users/email-change/revert", post(account::revert_email))
        .route("/user/export", get(export::export))
        // profiles
        .route("/profiles/{username}", get(profiles::show))
        .route("/profiles/{username}/follow", post(profiles::follow).delete(profiles::unfollow))
        .route("/profiles/{username}/block", post(profiles::block).delete(profiles::unblock))
        .route("/user/blocks", get(profiles::blocks))
        // articles, favorites and comments
        .route("/articles", get(articles::list).post(articles::create))
        .route("/articles/feed", get(articles::feed))
        .route("/articles/{slug}", get(articles::show).put(articles::update).delete(articles::delete))
        .route("/articles/{slug}/favorite", post(articles::favorite).delete(articles::unfavorite))
        .route("/articles/{slug}/comments", get(comments::list).post(comments::create))
        .route("/articles/{slug}/comments/{id}", delete(comments::remove))
        .route("/tags", get(tags::list))
        // RSS and Atom
        .route("/feeds/{format}", get(feeds::all))
        .route("/feeds/tag/{tag}/{format}", get(feeds::tag))
        .route("/feeds/author/{username}/{format}", get(feeds::author))
        // moderation: reports by anyone, the queue, actions and the log for moderators
        .route("/articles/{slug}/report", post(moderation::report_article))
        .route("/articles/{slug}/comments/{id}/report", post(moderation::report_comment))
        .route("/profiles/{username}/report", post(moderation::report_profile))
        .route("/user/reports", get(moderation::my_reports))
        .route("/moderation/queue", get(moderation::queue))
        .route("/moderation/actions", post(moderation::act))
        .route("/moderation/log", get(moderation::log))
        // notifications: the inbox and its live stream
        .route("/notifications", get(notifications::list))
        .route("/notifications/read", post(notifications::read_all))
        .route("/notifications/{id}/read", post(notifications::read_one))
        .route("/notifications/stream", get(notifications::stream))
        // administration
        .route("/admin/users", get(admin::list))
        .route("/admin/users/{username}", put(admin::update))
}

/// The whole application, ready to serve: every route, and `pages` (the operator's console,
/// `/admin`: `crate::console`, a room above this one), with the edge's layers around them.
pub fn app(state: AppState, pages: Router<AppState>) -> Router {
    let mut router = Router::new()
        .merge(pages)
        .nest("/api", api())
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/health", get(health::ready))
        // `/api/openapi.json` and the interactive docs at `/docs` (assets in the binary)
        .merge(SwaggerUi::new("/docs").url("/api/openapi.json", ApiDoc::openapi()));
    if state.metrics_on_main {
        router = router.route("/metrics", get(metrics));
    }
    let router =
        router.fallback(unknown_route).method_not_allowed_fallback(method_not_allowed).with_state(state.clone());
    edge::wrap(router, &state)
}

/// `/metrics` alone, for `CONDUIT_METRICS_BIND`.
pub fn metrics_app(state: AppState) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(state)
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    state.metrics.notification_streams.set(i64::try_from(state.notifier.hub.open()).unwrap_or(i64::MAX));
    ([(CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.render(&state.store))
}

async fn unknown_route() -> ApiError {
    ApiError::NotFound("route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
