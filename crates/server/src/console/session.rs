//! Who may use the console, and how a form proves it was posted from it.
//!
//! - **Login** through the accounts' own check (same rate limits and timing as the API's), only
//!   for admins and moderators, into a session of the console's own: cookie `conduit_admin`,
//!   `Path=/admin`, `SameSite=Strict`, HttpOnly, `Secure` over HTTPS, a new id at each login.
//!   Sessions live where the API's do (the database, or Redis), so every instance knows them, and
//!   a logout, a password change or a deactivation ends them there.
//! - **Every post** ([`Posted`]) must carry the session's CSRF token (a random 128-bit value made
//!   at login, in a hidden field of every form) and, when the browser names one, come from this
//!   server's own origin.
//! - **Destructive actions** ([`Staff::confirm`]) need a login or a password confirmation within
//!   `CONDUIT_REAUTH_WINDOW`, as an email or password change does in the API.

use axum::RequestPartsExt;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use conduit_domain::User;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::auth::extract::check_suspended;
use crate::auth::login::Login;
use crate::auth::sessions::{self, AuthSession};
use crate::console::Refusal;
use crate::error::ApiError;
use crate::http::client_addr::ClientIp;
use crate::limits::hash_queue::Admission;
use crate::routes::users::confirm_identity;
use crate::state::AppState;

/// The session key of the console's CSRF token.
const CSRF: &str = "console.csrf";

/// A logged-in admin or moderator.
pub struct Staff {
    pub user: User,
    /// The token every form of this session carries.
    pub csrf: String,
    auth_time: i64,
    session: tower_sessions::Session,
    ip: std::net::IpAddr,
}

fn session_failed(e: impl std::fmt::Display) -> Refusal {
    tracing::warn!(error = %e, "console session store failed");
    Refusal::Page(ApiError::SessionUnavailable)
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Refusal> {
        let auth = AuthSession::from_request_parts(parts, state).await.map_err(|(_, e)| session_failed(e))?;
        let ClientIp(ip) = parts.extract_with_state::<ClientIp, AppState>(state).await.map_err(Refusal::Page)?;
        let Some(user) = auth.user else {
            return Err(Refusal::Login);
        };
        let user = user.user;
        if !user.moderates() {
            return Err(Refusal::Page(ApiError::NotModerator(
                "is not a moderator or admin: the console is for them (conduit user promote NAME --role moderator)",
            )));
        }
        if parts.method != Method::GET && parts.method != Method::HEAD {
            same_origin(parts)?;
        }
        check_suspended(parts, state, &user)?;
        let csrf = auth.session.get::<String>(CSRF).await.map_err(session_failed)?.unwrap_or_default();
        let auth_time = sessions::grant(&auth.session).await?.auth_time;
        Ok(Staff { user, csrf, auth_time, session: auth.session, ip })
    }
}

impl Staff {
    /// The address the request came from (as the API's limits see it).
    pub fn ip(&self) -> std::net::IpAddr {
        self.ip
    }

    pub fn is_admin(&self) -> bool {
        self.user.role == conduit_domain::model::Role::Admin
    }

    /// Refuses a moderator what only admins may do.
    pub fn require_admin(&self) -> Result<(), Refusal> {
        if self.is_admin() { Ok(()) } else { Err(Refusal::Page(ApiError::Forbidden("admin"))) }
    }

    /// A destructive action goes ahead within `CONDUIT_REAUTH_WINDOW` of a login, or with the
    /// password typed again (which renews the window, and counts as a login attempt when wrong).
    pub async fn confirm(&self, state: &AppState, password: Option<String>) -> Result<(), Refusal> {
        let password = password.filter(|p| !p.is_empty());
        match confirm_identity(state, &self.user, self.auth_time, self.ip, password).await {
            Ok((auth_time, true)) => Ok(sessions::record_login(&self.session, auth_time, false).await?),
            Ok(_) => Ok(()),
            Err(ApiError::CurrentPassword(_)) => Err(Refusal::Page(ApiError::CurrentPassword(
                "is needed for this action: type it again (a login more than CONDUIT_REAUTH_WINDOW ago)",
            ))),
            Err(e) => Err(e.into()),
        }
    }
}

/// A post is from this origin: its `Origin` (sent by every current browser on a POST) names this
/// host. Without one, the CSRF token alone vouches for it.
fn same_origin(parts: &Parts) -> Result<(), Refusal> {
    use axum::http::header::{HOST, ORIGIN};
    let Some(origin) = parts.headers.get(ORIGIN) else {
        return Ok(());
    };
    let host = parts.headers.get(HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin.to_str().ok().and_then(|o| url::Url::parse(o).ok()).map(|url| {
        let host = url.host_str().unwrap_or_default().to_owned();
        url.port().map_or(host.clone(), |port| format!("{host}:{port}"))
    });
    if host.is_some() && origin_host.as_deref() == host {
        Ok(())
    } else {
        tracing::warn!(origin = ?origin, "console post from another origin refused");
        Err(Refusal::Page(ApiError::OriginNotAllowed))
    }
}

/// A form posted by [`Staff`] with the session's CSRF token (field `csrf`), and its fields.
pub struct Posted<T> {
    pub staff: Staff,
    pub form: T,
}

#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

impl<T: serde::de::DeserializeOwned + Send> FromRequest<AppState> for Posted<T> {
    type Rejection = Refusal;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Refusal> {
        let (mut parts, body) = request.into_parts();
        let staff = Staff::from_request_parts(&mut parts, state).await?;
        let request = Request::from_parts(parts, body);
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|_| Refusal::Page(ApiError::invalid("form", "could not be read")))?;
        let sent: CsrfField = serde_urlencoded::from_bytes(&bytes).unwrap_or(CsrfField { csrf: String::new() });
        let expected = staff.csrf.as_bytes();
        if expected.is_empty() || !bool::from(sent.csrf.as_bytes().ct_eq(expected)) {
            tracing::warn!(user = %staff.user.username, "console post without its CSRF token refused");
            return Err(Refusal::Page(ApiError::invalid(
                "csrf",
                "token is missing or wrong: reload the page and try again",
            )));
        }
        let form = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| Refusal::Page(ApiError::invalid("form", format!("is not valid: {e}"))))?;
        Ok(Posted { staff, form })
    }
}

#[derive(askama::Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    error: Option<&'static str>,
}

fn login_form(status: StatusCode, error: Option<&'static str>) -> Result<Response, Refusal> {
    Ok((status, Html(askama::Template::render(&LoginPage { error })?)).into_response())
}

pub(super) async fn login_page(auth: AuthSession) -> Result<Response, Refusal> {
    if auth.user.as_ref().is_some_and(|u| u.user.moderates()) {
        return Ok(Redirect::to("/admin").into_response());
    }
    login_form(StatusCode::OK, None)
}

/// Logs an admin or moderator in. Anyone else is told the console is not for them, and gets
/// no session.
pub(super) async fn login(
    State(state): State<AppState>,
    mut auth: AuthSession,
    ClientIp(ip): ClientIp,
    admission: Admission,
    request: Request,
) -> Result<Response, Refusal> {
    let (parts, body) = request.into_parts();
    same_origin(&parts)?;
    let bytes = axum::body::Bytes::from_request(Request::from_parts(parts, body), &state)
        .await
        .map_err(|_| Refusal::Page(ApiError::invalid("form", "could not be read")))?;
    let login: Login = serde_urlencoded::from_bytes(&bytes)
        .map_err(|_| Refusal::Page(ApiError::invalid("form", "needs email and password")))?;
    let user = match auth.authenticate((ip, login, admission)).await {
        Ok(Some(user)) => user,
        Ok(None) | Err(axum_login::Error::Backend(ApiError::Credentials)) => {
            return login_form(StatusCode::UNAUTHORIZED, Some("Wrong email or password."));
        }
        Err(axum_login::Error::Backend(e)) => return Err(e.into()),
        Err(axum_login::Error::Session(e)) => return Err(session_failed(e)),
    };
    if !user.user.moderates() {
        return login_form(StatusCode::FORBIDDEN, Some("This console is for admins and moderators."));
    }
    auth.session.cycle_id().await.map_err(session_failed)?;
    auth.login(&user).await.map_err(session_failed)?;
    sessions::record_login(&auth.session, state.clock.now().timestamp(), true).await?;
    let csrf = format!("{:032x}", rand::random::<u128>());
    auth.session.insert(CSRF, csrf).await.map_err(session_failed)?;
    tracing::info!(user = %user.user.username, "console login");
    Ok(Redirect::to("/admin").into_response())
}

/// A form with nothing but its CSRF token.
#[derive(Deserialize)]
pub struct Nothing {}

/// Ends the console's session (on every instance: it is deleted where it is kept).
pub(super) async fn logout(mut auth: AuthSession, posted: Posted<Nothing>) -> Result<Response, Refusal> {
    tracing::info!(user = %posted.staff.user.username, "console logout");
    auth.logout().await.map_err(session_failed)?;
    Ok(Redirect::to("/admin/login").into_response())
}
