//! The operator's console: server-rendered pages under `/admin` for admins and moderators,
//! served by `conduit serve` itself (askama templates compiled into the binary, one stylesheet,
//! no script at all).
//!
//! | file | what |
//! |---|---|
//! | `session.rs` | who may use it: the console's own session cookie, CSRF tokens, the same-origin check, password confirmation before destructive actions |
//! | `view.rs` | what every page shares: the header, dates, rendering, form fields |
//! | `dashboard.rs` | `/admin`: the site and this instance at a glance |
//! | `users.rs` | find people, open one, change an account (admins) |
//! | `moderation.rs` | the report queue, the moderation log, and the moderation form every page posts |
//! | `content.rs` | find articles, open one with its comments |
//! | `mail.rs` | the outbox and requeueing dead mail (admins) |
//! | `backups.rs` | this instance's backups: take, verify, download (admins) |
//!
//! Every response carries a Content-Security-Policy that allows no script, no inline style, no
//! framing and form posts only to this origin, and is never cached. Templates escape every value
//! (askama's HTML escaping), so a username or title holding markup is shown as text.

mod backups;
mod content;
mod dashboard;
mod mail;
mod moderation;
mod session;
mod users;
mod view;

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
        .route("/admin", get(dashboard::dashboard))
        .route("/admin/login", get(session::login_page).post(session::login))
        .route("/admin/logout", post(session::logout))
        .route("/admin/users", get(users::users))
        .route("/admin/users/{username}", get(users::user))
        .route("/admin/users/{username}/account", post(users::account))
        .route("/admin/users/{username}/verification", post(users::resend))
        .route("/admin/reports", get(moderation::reports))
        .route("/admin/log", get(moderation::log))
        .route("/admin/actions", post(moderation::act))
        .route("/admin/articles", get(content::articles))
        .route("/admin/articles/{slug}", get(content::article))
        .route("/admin/mail", get(mail::mail))
        .route("/admin/mail/requeue", post(mail::requeue))
        .route("/admin/backups", get(backups::backups))
        .route("/admin/backups/take", post(backups::take))
        .route("/admin/backups/verify", post(backups::verify))
        .route("/admin/backups/download", post(backups::download))
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

/// The API names the field a client sends; a person typed their password.
fn person_facing(field: &str) -> &str {
    if field == "currentPassword" { "Your password" } else { field }
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
                .flat_map(|(field, messages)| messages.iter().map(move |m| format!("{} {m}", person_facing(field))))
                .collect()
        };
        let page = RefusedPage { status: status.as_u16(), messages };
        match askama::Template::render(&page) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => status.into_response(),
        }
    }
}
