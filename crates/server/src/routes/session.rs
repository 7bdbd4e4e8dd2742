//! Cookie sessions for browsers: `POST /api/session` logs in, `DELETE /api/session` logs out.

use axum::extract::State;
use axum::http::StatusCode;

use crate::auth::extract::MaybeUser;
use crate::auth::login::LoginRequest;
use crate::auth::sessions::{self, AuthSession};
use crate::error::ErrorBody;
use crate::error::{ApiError, ApiResult};
use crate::http::client_addr::ClientIp;
use crate::http::extract::ApiJson;
use crate::limits::hash_queue::Admission;
use crate::routes::users::UserBody;
use crate::state::AppState;

fn session_error(e: axum_login::Error<crate::auth::sessions::Accounts>) -> ApiError {
    match e {
        axum_login::Error::Backend(e) => e,
        axum_login::Error::Session(e) => {
            tracing::warn!(error = %e, "session store failed");
            ApiError::SessionUnavailable
        }
    }
}

/// Log in with email and password and get a session cookie (HttpOnly, SameSite=Lax, Secure over
/// HTTPS). The session id is new at every login. Same rules and rate limits as `/users/login`.
#[utoipa::path(post, path = "/session", tag = "User and Authentication", request_body = LoginRequest,
    responses((status = 200, body = UserBody, headers(("set-cookie" = String, description = "conduit_session=...; HttpOnly; SameSite=Lax"))),
        (status = 401, description = "Wrong email or password", body = ErrorBody),
        (status = 403, description = "The account is deactivated", body = ErrorBody),
        (status = 429, description = "Too many failed logins", body = ErrorBody)))]
pub(crate) async fn login(
    State(state): State<AppState>,
    mut auth: AuthSession,
    ClientIp(ip): ClientIp,
    admission: Admission,
    ApiJson(LoginRequest { user: input }): ApiJson<LoginRequest>,
) -> ApiResult<axum::Json<UserBody>> {
    let user = auth.authenticate((ip, input, admission)).await.map_err(session_error)?.ok_or(ApiError::Credentials)?;
    // A login over a live session starts a new one: the tokens the old one handed out end.
    end_session_tokens(&state, &auth).await?;
    // A new session id at every login, even over a live session: a session id fixed or leaked
    // before login is not the one logged in.
    auth.session.cycle_id().await.map_err(|e| session_error(axum_login::Error::Session(e)))?;
    auth.login(&user).await.map_err(session_error)?;
    let now = chrono::Utc::now();
    sessions::record_login(&auth.session, now.timestamp(), true).await?;
    let grant = sessions::grant(&auth.session).await?;
    let user = user.user;
    let token = state.tokens.mint(user.id, user.token_version, &grant, now);
    Ok(UserBody::new(user, token))
}

/// Ends the tokens the live session (if any) handed out, on every instance.
async fn end_session_tokens(state: &AppState, auth: &AuthSession) -> ApiResult<()> {
    if let Some(user) = &auth.user
        && let Some(token_session) = sessions::token_session(&auth.session).await?
    {
        // Tokens handed out to this session expire by then; until then, they are refused.
        let ttl = state.tokens.ttl().min(chrono::Duration::days(conduit_domain::token::SESSION_TOKEN_MAX_TTL_DAYS));
        let until = (chrono::Utc::now() + ttl).timestamp() + 1;
        state.store.end_session_tokens(user.user.id, &token_session, until).await?;
    }
    Ok(())
}

/// End the session, and every token it handed out, on every instance. Also for a session that
/// had already ended.
#[utoipa::path(delete, path = "/session", tag = "User and Authentication",
    responses((status = 204, description = "Logged out"), (status = 403, description = "From another site", body = ErrorBody)))]
pub(crate) async fn logout(
    State(state): State<AppState>,
    mut auth: AuthSession,
    _caller: MaybeUser,
) -> ApiResult<StatusCode> {
    // `MaybeUser` applies the origin check to a live session before it is ended.
    end_session_tokens(&state, &auth).await?;
    auth.logout().await.map_err(session_error)?;
    Ok(StatusCode::NO_CONTENT)
}
