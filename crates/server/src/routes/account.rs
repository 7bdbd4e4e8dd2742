//! The account lifecycle by mail: verify an address, reset a forgotten password, undo an email
//! change, delete the account, export its data. Every mail is queued in the transaction of the
//! change that causes it (see `mail::compose`); every token is single-use and compared in constant
//! time.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use conduit_domain::token::Grant;
use conduit_domain::{Email, Errors, User, validation as v};
use conduit_store::{DeletedContent, Outgoing, Redeem, TokenPurpose};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::extract::RequireUser;
use crate::auth::sessions::AuthSession;
use crate::config::DeletedContentPolicy;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::http::client_addr::ClientIp;
use crate::http::extract::ApiJson;
use crate::limits::hash_queue::Admission;
use crate::limits::{hash_limits, mail_limits, token_limits};
use crate::mail::compose::{Composer, split_token};
use crate::routes::users::{UserBody, confirm_identity};
use crate::state::AppState;

/// Every answer to a reset request takes at least this long, whether or not the account exists
/// (the lookup and the write happen only for one that does).
const RESET_ANSWER_FLOOR: Duration = Duration::from_millis(250);

/// A token from a mailed link.
#[derive(Deserialize, ToSchema)]
pub struct TokenRequest {
    /// The `token` parameter of the link.
    #[schema(value_type = String, min_length = 1)]
    token: Option<String>,
}

/// An account's address and whether it is verified.
#[derive(Serialize, ToSchema)]
pub struct AddressBody {
    user: AddressView,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Address)]
pub struct AddressView {
    username: String,
    email: String,
    email_verified: bool,
}

impl AddressBody {
    fn new(user: conduit_domain::User) -> Json<Self> {
        Json(AddressBody {
            user: AddressView { username: user.username, email: user.email, email_verified: user.email_verified },
        })
    }
}

/// What a mailing request answers: the same whatever happened.
#[derive(Serialize, ToSchema)]
pub struct AcceptedBody {
    message: &'static str,
}

const INVALID_TOKEN: &str = "is invalid, used or expired: ask for a new link";

/// The stored token a request's token names, and its selector, if its verifier matches in
/// constant time and it has not expired; otherwise 422 on `token`. Redeem it with its stored
/// `verifier_hash`. Each wrong token counts against the client's address (a right one does not):
/// past the limit, 429 before any lookup.
async fn checked_token<'a>(
    state: &AppState,
    ip: std::net::IpAddr,
    token: Option<&'a str>,
    purpose: TokenPurpose,
) -> ApiResult<(conduit_store::AccountToken, &'a str)> {
    let token = token.unwrap_or_default();
    if token.trim().is_empty() {
        return Err(ApiError::invalid("token", v::BLANK));
    }
    let reservation = state.limiter.reserve(&token_limits(&state.limits, ip)).await?;
    let (selector, verifier) = split_token(token).ok_or(ApiError::invalid("token", INVALID_TOKEN))?;
    let stored = state.store.account_token(selector, purpose).await?;
    match stored {
        Some(stored) if Composer::check(&stored, verifier, Utc::now().timestamp()) => {
            state.limiter.release(reservation).await;
            Ok((stored, selector))
        }
        _ => {
            reservation.keep();
            Err(ApiError::invalid("token", INVALID_TOKEN))
        }
    }
}

/// Redeems a checked token (see `Store::redeem_token`) and counts the mail it queued; 422 on
/// `token` when it was used, or its address moved on, in the meantime.
async fn redeem(state: &AppState, selector: &str, hash: &str, redeem: &Redeem) -> ApiResult<conduit_domain::User> {
    let user = state
        .store
        .redeem_token(selector, hash, Utc::now().timestamp(), redeem)
        .await?
        .ok_or(ApiError::invalid("token", INVALID_TOKEN))?;
    if let Redeem::ResetPassword { outgoing, .. } | Redeem::RevertEmail { outgoing } = redeem {
        state.mail.queued(&state.metrics, outgoing);
    }
    Ok(user)
}

/// Verify an email address with the token from the link mailed to it. Needs no login: the
/// token is the proof.
#[utoipa::path(post, path = "/users/verify", tag = "Account lifecycle", request_body = TokenRequest,
    responses((status = 200, body = AddressBody),
        (status = 422, description = "The token is missing, invalid, used, expired, or for an address the account no longer has", body = ErrorBody),
        (status = 429, description = "Too many wrong tokens from this client this minute", body = ErrorBody)))]
pub(crate) async fn verify(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(input): ApiJson<TokenRequest>,
) -> ApiResult<Json<AddressBody>> {
    let (stored, selector) = checked_token(&state, ip, input.token.as_deref(), TokenPurpose::VerifyEmail).await?;
    Ok(AddressBody::new(redeem(&state, selector, &stored.verifier_hash, &Redeem::VerifyEmail).await?))
}

/// Mail the current user a new verification link (the old one stops working). Limited per
/// address and per client, like every mailing endpoint.
#[utoipa::path(post, path = "/users/verify/resend", tag = "Account lifecycle", security(("Token" = [])),
    responses((status = 202, body = AcceptedBody), (status = 401, body = ErrorBody),
        (status = 422, description = "The address is already verified", body = ErrorBody),
        (status = 429, description = "Too many mails to this address or from this client this hour", body = ErrorBody)))]
pub(crate) async fn resend(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    caller: RequireUser,
) -> ApiResult<(StatusCode, Json<AcceptedBody>)> {
    send_verification(&state, &caller.user, ip).await?;
    Ok((StatusCode::ACCEPTED, Json(AcceptedBody { message: "A new verification link is on its way." })))
}

/// Mails `user` a new verification link (asked for by them, or for them in the console from
/// `ip`), under the limits of every mailing request.
pub(crate) async fn send_verification(state: &AppState, user: &User, ip: std::net::IpAddr) -> ApiResult<()> {
    if user.email_verified {
        return Err(ApiError::invalid("email", "is already verified"));
    }
    state.limiter.reserve(&mail_limits(&state.limits, &user.email, ip)).await?.keep();
    let outgoing = state.mail.verification(&user.username, &user.email);
    let email = Email::parse(&user.email).map_err(|e| ApiError::Internal(format!("stored email {e}")))?;
    if state.store.mail_account(&email, &outgoing).await?.is_some() {
        state.mail.queued(&state.metrics, &outgoing);
    }
    Ok(())
}

#[derive(Deserialize, ToSchema)]
pub struct ResetRequest {
    user: ResetUser,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = ResetUser)]
pub struct ResetUser {
    #[schema(required, value_type = String, min_length = 3, max_length = 254)]
    email: Option<String>,
}

/// Ask for a password reset link. Answers 202 with the same body, after the same time, whether
/// or not an account has the address; only an account that has it gets mail. The link works
/// once, within 30 minutes, and a newer link or any password change ends it.
#[utoipa::path(post, path = "/users/password-reset", tag = "Account lifecycle", request_body = ResetRequest,
    responses((status = 202, body = AcceptedBody), (status = 422, description = "No email, or not an address", body = ErrorBody),
        (status = 429, description = "Too many mails to this address or from this client this hour", body = ErrorBody)))]
pub(crate) async fn request_reset(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(ResetRequest { user: input }): ApiJson<ResetRequest>,
) -> ApiResult<(StatusCode, Json<AcceptedBody>)> {
    let started = tokio::time::Instant::now();
    let email = v::email(input.email.as_deref().unwrap_or_default()).map_err(|e| ApiError::invalid("email", e))?;
    // Counted per address asked for, whether or not it has an account: the limit says nothing.
    state.limiter.reserve(&mail_limits(&state.limits, &email, ip)).await?.keep();
    let mut outgoing = state.mail.password_reset(&email);
    if state.store.mail_account(&email, &outgoing).await?.is_none() {
        // Mailed either way, so that nothing public (the counters on `/metrics` included) tells
        // whether an account has the address.
        outgoing = Outgoing { mails: vec![state.mail.no_reset(&email)], ..Outgoing::default() };
        state.store.queue_mail(&outgoing.mails[0]).await?;
    }
    state.mail.queued(&state.metrics, &outgoing);
    tokio::time::sleep_until(started + RESET_ANSWER_FLOOR).await;
    Ok((
        StatusCode::ACCEPTED,
        Json(AcceptedBody { message: "If an account has this address, a link to reset its password is on its way." }),
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct ResetConfirmRequest {
    /// The `token` parameter of the mailed link.
    #[schema(required, value_type = String, min_length = 1)]
    token: Option<String>,
    #[schema(required, value_type = String, min_length = 8, max_length = 256)]
    password: Option<String>,
}

/// Set a new password with the token from a reset link. It ends every token and session of the
/// account and every other reset link, marks the address verified (the link reached it), sends
/// a notice, and answers with the user and a fresh token.
#[utoipa::path(post, path = "/users/password-reset/confirm", tag = "Account lifecycle", request_body = ResetConfirmRequest,
    responses((status = 200, body = UserBody),
        (status = 422, description = "Bad password, or the token is missing, invalid, used or expired", body = ErrorBody),
        (status = 429, description = "Too many wrong tokens or password hashes from this client", body = ErrorBody),
        (status = 503, description = "Too many password hashes at once", body = ErrorBody)))]
pub(crate) async fn confirm_reset(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    admission: Admission,
    ApiJson(input): ApiJson<ResetConfirmRequest>,
) -> ApiResult<Json<UserBody>> {
    let mut errors = Errors::new();
    let password = errors.check("password", v::new_password(input.password.as_deref().unwrap_or_default()));
    let Some(password) = password else {
        return Err(errors.into());
    };
    // The token first: a hash is spent only on a request that can succeed.
    let (stored, selector) = checked_token(&state, ip, input.token.as_deref(), TokenPurpose::ResetPassword).await?;
    state.limiter.reserve(&hash_limits(&state.limits, ip)).await?.keep();
    let password_hash = state.passwords.hash(admission, password).await?;
    let username = state.store.user_by_id(stored.user).await?.map(|u| u.username).unwrap_or_default();
    let outgoing =
        Outgoing { mails: vec![state.mail.password_changed(&username, &stored.email)], ..Outgoing::default() };
    let reset = Redeem::ResetPassword { password_hash, outgoing };
    let user = redeem(&state, selector, &stored.verifier_hash, &reset).await?;
    let now = Utc::now();
    let token = state.tokens.mint(user.id, user.token_version, &Grant::login(now), now);
    Ok(UserBody::new(user, token))
}

/// Undo an email change with the token mailed to the old address: the account gets that
/// address back (verified), every token and session ends, and the address is mailed a reset
/// link in case whoever changed it knew the password.
#[utoipa::path(post, path = "/users/email-change/revert", tag = "Account lifecycle", request_body = TokenRequest,
    responses((status = 200, body = AddressBody),
        (status = 409, description = "Another account has taken the old address since", body = ErrorBody),
        (status = 422, description = "The token is missing, invalid, used or expired, or its account deactivated", body = ErrorBody),
        (status = 429, description = "Too many wrong tokens from this client this minute", body = ErrorBody)))]
pub(crate) async fn revert_email(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(input): ApiJson<TokenRequest>,
) -> ApiResult<Json<AddressBody>> {
    let (stored, selector) = checked_token(&state, ip, input.token.as_deref(), TokenPurpose::RevertEmail).await?;
    let outgoing = state.mail.email_restored(&stored.email);
    Ok(AddressBody::new(redeem(&state, selector, &stored.verifier_hash, &Redeem::RevertEmail { outgoing }).await?))
}

#[derive(Deserialize, ToSchema, Default)]
pub struct DeleteAccountRequest {
    #[serde(default)]
    user: DeleteAccount,
}

/// Confirms the deletion; not needed within `CONDUIT_REAUTH_WINDOW` of a login.
#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
#[schema(as = DeleteAccount)]
pub struct DeleteAccount {
    #[schema(value_type = String, min_length = 1, max_length = 256)]
    current_password: Option<String>,
}

/// Delete the current user's account: their profile, follows, favorites, tokens and sessions
/// go at once, on every instance; their articles and comments are deleted, or kept under the
/// author `[deleted]` (`CONDUIT_DELETED_CONTENT`). Needs `currentPassword`, or a login within
/// `CONDUIT_REAUTH_WINDOW`. The address gets a last notice.
#[utoipa::path(delete, path = "/user", tag = "Account lifecycle", security(("Token" = [])), request_body = Option<DeleteAccountRequest>,
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody),
        (status = 403, description = "No `currentPassword` and no recent login, or a wrong one", body = ErrorBody),
        (status = 429, description = "Too many wrong current passwords", body = ErrorBody)))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    mut auth: AuthSession,
    ClientIp(ip): ClientIp,
    caller: RequireUser,
    input: Option<ApiJson<DeleteAccountRequest>>,
) -> ApiResult<StatusCode> {
    let current_password = input.and_then(|ApiJson(r)| r.user.current_password);
    confirm_identity(&state, &caller.user, caller.grant.auth_time, ip, current_password).await?;
    let content = match state.accounts.deleted_content {
        DeletedContentPolicy::Delete => DeletedContent::Delete,
        DeletedContentPolicy::Keep => DeletedContent::Keep,
    };
    let outgoing = Outgoing {
        mails: vec![state.mail.account_deleted(&caller.user.username, &caller.user.email)],
        ..Outgoing::default()
    };
    if !state.store.delete_user(caller.user.id, caller.user.token_version, content, &outgoing).await? {
        // The password changed (or the account went) while this request ran.
        return Err(ApiError::Token("has been revoked"));
    }
    state.mail.queued(&state.metrics, &outgoing);
    if caller.via_session {
        // The session's user is gone anyway; this also clears the cookie's record.
        let _ = auth.logout().await;
    }
    Ok(StatusCode::NO_CONTENT)
}
