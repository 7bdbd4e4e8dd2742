//! Checking a password, for every way of logging in: `POST /api/users/login`, `POST
//! /api/session`, and `currentPassword` in `PUT /api/user`. Each check is counted by the
//! limiter before Argon2 runs (see `limits`).

use conduit_domain::{Email, Errors, User, validation as v};
use serde::Deserialize;
use utoipa::ToSchema;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::config::UnverifiedPolicy;
use crate::error::{ApiError, ApiResult};
use crate::limits::hash_queue::Admission;
use crate::limits::{MAX_EMAIL_LEN, login_limits};
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    pub(crate) user: Login,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = LoginUser)]
pub struct Login {
    #[schema(required, value_type = String, min_length = 1, pattern = r"\S")]
    email: Option<String>,
    #[schema(required, value_type = String, min_length = 1, max_length = 256)]
    password: Option<String>,
}

/// Checks email and password (for token and session logins alike): limited per account and
/// address (see `limits`), and the same answer and Argon2 work for unknown emails and
/// wrong passwords.
pub(crate) async fn check_login(
    state: &AppState,
    ip: std::net::IpAddr,
    input: Login,
    admission: Admission,
) -> ApiResult<User> {
    let mut errors = Errors::new();
    let email = input.email.as_deref().unwrap_or_default().trim().to_lowercase();
    if email.is_empty() {
        errors.add("email", v::BLANK);
    } else if email.contains('\0') {
        errors.add("email", "must not contain NUL characters");
    } else if email.chars().count() > MAX_EMAIL_LEN {
        errors.add("email", format!("is too long (maximum is {MAX_EMAIL_LEN} characters)"));
    }
    let password = errors.check("password", v::login_password(input.password.as_deref().unwrap_or_default()));
    let Some(password) = password.filter(|_| errors.is_empty()) else {
        return Err(errors.into());
    };
    // Unknown email and wrong password take the same path through Argon2 and give the same
    // answer, so neither timing nor body reveals which accounts exist.
    // An address no account can have is looked up as one nobody has: the same path follows.
    let credentials = match Email::parse(&email) {
        Ok(email) => state.store.credentials_by_email(&email).await?,
        Err(_) => None,
    };
    let hash = credentials.as_ref().map(|c| c.password_hash.clone());
    let matches = counted_verify(state, &email, ip, password, hash, admission).await?;
    state.metrics.record_login(matches && credentials.is_some());
    match credentials {
        // Only after the right password, so this reveals nothing to a guesser.
        Some(credentials) if matches && !credentials.user.active => Err(ApiError::Deactivated),
        Some(credentials)
            if matches
                && !credentials.user.email_verified
                && state.accounts.unverified_users == UnverifiedPolicy::None =>
        {
            Err(ApiError::Unverified)
        }
        Some(credentials) if matches => Ok(credentials.user),
        _ => Err(ApiError::Credentials),
    }
}

/// Checks `password` against `hash` as an attempt on `account` from `ip`: it takes its place in
/// the login counters before Argon2 runs (429 when they are full), gives it back when the
/// password is right or was never checked, and keeps it when wrong.
pub(crate) async fn counted_verify(
    state: &AppState,
    account: &str,
    ip: std::net::IpAddr,
    password: String,
    hash: Option<String>,
    admission: Admission,
) -> ApiResult<bool> {
    let reservation = state.limiter.reserve(&login_limits(&state.limits, account, ip)).await?;
    match state.passwords.verify(admission, password, hash).await {
        Ok(false) => {
            reservation.keep();
            Ok(false)
        }
        right_or_unchecked => {
            state.limiter.release(reservation).await;
            right_or_unchecked
        }
    }
}

/// Logins and registrations take their place for a hash first, before their body is read: past
/// the hashing queue's bound they get 503 at the cost of a request that did nothing.
impl FromRequestParts<AppState> for Admission {
    type Rejection = ApiError;

    async fn from_request_parts(_parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        state.passwords.admit()
    }
}
