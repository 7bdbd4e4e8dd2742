//! The operator's console: server-rendered pages under `/admin` for admins and moderators,
//! served by `conduit serve` itself (askama templates compiled into the binary, one stylesheet,
//! no script at all).
//!
//! | file | what |
//! |---|---|
//! | `session.rs` | who may use it: the console's own session cookie, CSRF tokens, the same-origin check, password confirmation before destructive actions |
//! | `pages.rs` | the pages: dashboard, users, a user, the report queue, the moderation log |
//! | `actions.rs` | the forms' targets: moderation actions and account changes, through the same code as the JSON API |
//!
//! Every response carries a Content-Security-Policy that allows no script, no inline style, no
//! framing and form posts only to this origin, and is never cached. Templates escape every value
//! (askama's HTML escaping), so a username or title holding markup is shown as text.

mod actions;
mod pages;
mod session;

use axum::Router;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::error::ApiError;
use crate::state::AppState;

/// No script from anywhere, styles only from this origin, forms only to it, never in a frame.
const POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                      frame-ancestors 'none'; base-uri 'none'";

/// The console's routes, with its session and its headers around them.
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/admin", get(pages::dashboard))
        .route("/admin/login", get(session::login_page).post(session::login))
        .route("/admin/logout", post(session::logout))
        .route("/admin/users", get(pages::users))
        .route("/admin/users/{username}", get(pages::user))
        .route("/admin/users/{username}/account", post(actions::account))
        .route("/admin/reports", get(pages::reports))
        .route("/admin/log", get(pages::log))
        .route("/admin/actions", post(actions::moderate))
        .route("/admin/console.css", get(stylesheet))
        .layer(crate::auth::sessions::console_layer(state))
        .layer(axum::middleware::map_response(headers))
}

async fn headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn stylesheet() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/css; charset=utf-8"), (CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../templates/console/console.css"),
    )
}

/// Why a console request was not served: not logged in (to the login page), or refused with
/// the API's reason, shown as a page.
pub enum Refusal {
    Login,
    Page(ApiError),
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal::Page(e)
    }
}

impl From<conduit_store::DbError> for Refusal {
    fn from(e: conduit_store::DbError) -> Self {
        Refusal::Page(e.into())
    }
}

impl From<askama::Error> for Refusal {
    fn from(e: askama::Error) -> Self {
        Refusal::Page(ApiError::Internal(format!("console template: {e}")))
    }
}

#[derive(askama::Template)]
#[template(path = "console/refused.html")]
struct RefusedPage {
    status: u16,
    messages: Vec<String>,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let error = match self {
            Refusal::Login => return Redirect::to("/admin/login").into_response(),
            Refusal::Page(error) => error,
        };
        let status = error.status();
        if status.is_server_error() {
            // The API's answer logs it and hides its detail; so does this page.
            tracing::error!(%error, "console request failed");
        }
        let messages = if status == StatusCode::INTERNAL_SERVER_ERROR {
            vec!["Something went wrong on the server; it is in the log.".to_owned()]
        } else {
            error
                .errors()
                .iter()
                .flat_map(|(field, messages)| messages.iter().map(move |m| format!("{field} {m}")))
                .collect()
        };
        let page = RefusedPage { status: status.as_u16(), messages };
        match askama::Template::render(&page) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => status.into_response(),
        }
    }
}
