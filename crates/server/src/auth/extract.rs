//! Who is calling: `Authorization: Token <jwt>` (or `Bearer <jwt>`), or else the session cookie.
//! The user is loaded on every request (from a cache kept exact by change notices), so
//! deactivation, a password change and a logout end the credentials they end at once.
//! Cookie-authenticated changes must come from the server's own origin or an allowed one (CSRF).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::{AUTHORIZATION, HOST, ORIGIN, REFERER};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, Method, Uri};
use conduit_domain::User;
use conduit_domain::token::{Grant, TokenError};

use crate::auth::sessions::AuthSession;
use crate::config::UnverifiedPolicy;
use crate::error::ApiError;
use crate::state::AppState;

/// The authenticated caller and the token they presented (for session callers, a fresh one).
#[derive(Debug, Clone)]
pub struct RequireUser {
    pub user: User,
    pub token: String,
    /// When the caller last logged in, and the browser session their credential belongs to.
    pub grant: Grant,
    /// The token's own id (`jti`), when it has one.
    pub token_id: Option<String>,
    /// Authenticated by the session cookie rather than a token.
    pub via_session: bool,
}

/// The caller if a valid token or session cookie was sent, else anonymous. On the routes where
/// the spec makes authentication optional, a token that is invalid, expired or revoked is
/// served as if it had not been sent: the RealWorld frontends log the user out on any 401, so a
/// stale token left in a browser's storage must not break browsing.
#[derive(Debug, Clone)]
pub struct MaybeUser(pub Option<RequireUser>);

impl MaybeUser {
    pub fn id(&self) -> Option<conduit_domain::model::UserId> {
        self.0.as_ref().map(|u| u.user.id)
    }
}

fn presented_token(parts: &Parts) -> Result<Option<&str>, ApiError> {
    let Some(value) = parts.headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ApiError::Token("is invalid"))?;
    let token = value
        .strip_prefix("Token ")
        .or_else(|| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Token("is invalid"))?;
    Ok(Some(token))
}

async fn authenticate(state: &AppState, token: &str) -> Result<RequireUser, ApiError> {
    let claims = state.tokens.check(token).map_err(|e| match e {
        TokenError::Expired => ApiError::Token("has expired"),
        TokenError::Invalid | TokenError::Claims(_) => ApiError::Token("is invalid"),
    })?;
    let id = claims.user_id().ok_or(ApiError::Token("is invalid"))?;
    let user = state.store.user_by_id(id).await?.ok_or(ApiError::Token("is invalid"))?;
    if !user.active {
        return Err(ApiError::Token("belongs to a deactivated account"));
    }
    // A password change or deactivation revokes every earlier token; the one that changed the
    // password without `currentPassword` outlives it only until its login's re-authentication
    // window closes (within which its holder could change the password anyway).
    let graced = user
        .grace_token
        .as_ref()
        .is_some_and(|(id, until)| claims.jti.as_ref() == Some(id) && state.clock.now().timestamp() <= *until);
    if claims.ver != user.token_version && !graced {
        return Err(ApiError::Token("has been revoked"));
    }
    // A logout ends the tokens its session handed out.
    if claims.sid.as_ref().is_some_and(|sid| user.ended_sessions.contains(sid)) {
        return Err(ApiError::Token("has been revoked"));
    }
    let grant = Grant { auth_time: claims.auth_time, session: claims.sid };
    Ok(RequireUser { user, token: token.to_owned(), grant, token_id: claims.jti, via_session: false })
}

/// The session's user, if the request carries a live session cookie. axum-login has already
/// checked the session against the user's current token version and active flag. The token
/// handed out names the session, so it ends with it.
async fn session_user(parts: &Parts, state: &AppState) -> Result<Option<RequireUser>, ApiError> {
    let Some(auth) = parts.extensions.get::<AuthSession>() else {
        return Ok(None);
    };
    let Some(user) = auth.user.clone() else {
        return Ok(None);
    };
    if matches!(parts.method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE) {
        check_origin(parts, state)?;
    }
    let grant = crate::auth::sessions::grant(&auth.session).await?;
    let user = user.user;
    let token = state.tokens.mint(user.id, user.token_version, &grant, chrono::Utc::now());
    Ok(Some(RequireUser { user, token, grant, token_id: None, via_session: true }))
}

/// Whether the request reached us over HTTPS: directly, or through a trusted proxy that says so.
pub fn is_https(uri: &Uri, headers: &HeaderMap, extensions: &Extensions, state: &AppState) -> bool {
    if uri.scheme_str() == Some("https") {
        return true;
    }
    let from_trusted_proxy = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(peer)| crate::config::is_trusted_proxy(&state.http.trusted_proxies, peer.ip()));
    // The nearest proxy's word: the last line, and its last entry (a proxy appends its own).
    from_trusted_proxy
        && headers
            .get_all("x-forwarded-proto")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|line| line.rsplit(',').next())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

/// CSRF defence for cookie-authenticated changes: the `Origin` (or, lacking it, the `Referer`'s
/// origin) must be this server's own or one in `CONDUIT_ALLOWED_ORIGINS`.
fn check_origin(parts: &Parts, state: &AppState) -> Result<(), ApiError> {
    let claimed = match parts.headers.get(ORIGIN) {
        Some(origin) => origin.to_str().ok().map(str::to_owned),
        None => parts
            .headers
            .get(REFERER)
            .and_then(|r| r.to_str().ok())
            .and_then(|r| url::Url::parse(r).ok())
            .map(|u| u.origin().ascii_serialization()),
    };
    let Some(claimed) = claimed else {
        return Err(ApiError::OriginNotAllowed);
    };
    let scheme = if is_https(&parts.uri, &parts.headers, &parts.extensions, state) { "https" } else { "http" };
    let own = parts.headers.get(HOST).and_then(|h| h.to_str().ok()).map(|host| format!("{scheme}://{host}"));
    if own.as_deref() == Some(claimed.as_str()) || state.http.allowed_origins.contains(&claimed) {
        Ok(())
    } else {
        tracing::warn!(origin = %claimed, "cookie-authenticated change from another origin refused");
        Err(ApiError::OriginNotAllowed)
    }
}

impl FromRequestParts<AppState> for RequireUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = match presented_token(parts)? {
            Some(token) => authenticate(state, token).await?,
            None => session_user(parts, state).await?.ok_or(ApiError::Token("is missing"))?,
        };
        check_verified(parts, state, &caller.user)?;
        check_suspended(parts, state, &caller.user)?;
        Ok(caller)
    }
}

/// A suspended user may read, export and log out, and write nothing else until the suspension
/// ends: every other write answers 403 naming its end and reason. The user is read fresh on each
/// request (from a cache every instance drops on the suspension before the moderator's request
/// returns), so a suspension holds everywhere from then on; a write already past this check when
/// it was made may still land.
pub(crate) fn check_suspended(parts: &Parts, state: &AppState, user: &User) -> Result<(), ApiError> {
    let Some(suspension) = user.suspended_at(state.clock.now().timestamp()) else {
        return Ok(());
    };
    let writes = matches!(parts.method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE);
    let path =
        parts.extensions.get::<axum::extract::OriginalUri>().map_or(parts.uri.path(), |original| original.0.path());
    // Logging out is no change: from the API's sessions or the console's. Nor is marking
    // one's own notifications read.
    if !writes || path == "/api/session" || path == "/admin/logout" || path.starts_with("/api/notifications/") {
        return Ok(());
    }
    let until = chrono::DateTime::from_timestamp(suspension.until, 0)
        .map_or_else(|| suspension.until.to_string(), |at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    Err(ApiError::Suspended { until, reason: suspension.reason.clone() })
}

/// Under `CONDUIT_UNVERIFIED_USERS=read` (or `none`, for the registration's own token), a user
/// whose address is not verified may read, and change only their own account (verify it, ask for
/// a new link, change or delete it, log out), nothing else.
fn check_verified(parts: &Parts, state: &AppState, user: &User) -> Result<(), ApiError> {
    if user.email_verified || state.accounts.unverified_users == UnverifiedPolicy::All {
        return Ok(());
    }
    let writes = matches!(parts.method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE);
    // Handlers under `/api` see the path without it: the original says where the request went.
    let path =
        parts.extensions.get::<axum::extract::OriginalUri>().map_or(parts.uri.path(), |original| original.0.path());
    let own_account = path == "/api/user"
        || path.starts_with("/api/notifications/")
        || path.starts_with("/api/user/")
        || path.starts_with("/api/users/")
        || path == "/api/session";
    if writes && !own_account { Err(ApiError::Unverified) } else { Ok(()) }
}

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = presented_token(parts).unwrap_or(None);
        if let Some(token) = token {
            match authenticate(state, token).await {
                Ok(user) => return Ok(MaybeUser(Some(user))),
                // Forgiven: served as though no token had been sent.
                Err(ApiError::Token(why)) => tracing::debug!(why, "bad token on an optional-auth route"),
                Err(other) => return Err(other),
            }
        }
        Ok(MaybeUser(session_user(parts, state).await?))
    }
}

/// An authenticated moderator or admin: 401 without a valid token or session, 403 for anyone
/// else.
#[derive(Debug, Clone)]
pub struct RequireModerator(pub RequireUser);

impl FromRequestParts<AppState> for RequireModerator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = RequireUser::from_request_parts(parts, state).await?;
        if !caller.user.moderates() {
            return Err(ApiError::NotModerator("is not a moderator: only moderators and admins may do this"));
        }
        Ok(RequireModerator(caller))
    }
}

/// An authenticated admin: 401 without a valid token or session, 403 for anyone else.
#[derive(Debug, Clone)]
pub struct RequireAdmin(pub RequireUser);

impl FromRequestParts<AppState> for RequireAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = RequireUser::from_request_parts(parts, state).await?;
        if caller.user.role != conduit_domain::model::Role::Admin {
            return Err(ApiError::Forbidden("user"));
        }
        Ok(RequireAdmin(caller))
    }
}
