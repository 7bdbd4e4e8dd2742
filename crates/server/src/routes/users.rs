//! Registration, login, and the current user.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use conduit_domain::token::Grant;
use conduit_domain::{Email, Errors, User, Username, validation as v};
use conduit_store::rows::grace_token_value;
use conduit_store::{NewUser, Outgoing, UserChanges};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::extract::RequireUser;
use crate::auth::login::{LoginRequest, check_login, counted_verify};
use crate::auth::sessions::{self, AuthSession, SessionUser};
use crate::error::ErrorBody;
use crate::error::{ApiError, ApiResult};
use crate::http::client_addr::ClientIp;
use crate::http::extract::{ApiJson, present};
use crate::limits::hash_queue::Admission;
use crate::limits::{hash_limits, mail_limits, registration_limits};
use crate::state::AppState;

/// `{"user": {...}}` as the spec returns it: the owner's view, with a token.
#[derive(Serialize, ToSchema)]
pub struct UserBody {
    user: UserView,
}

#[derive(Serialize, ToSchema)]
#[schema(as = User)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    email: String,
    /// False until the link mailed to `email` is opened (`POST /api/users/verify`).
    email_verified: bool,
    token: String,
    username: String,
    bio: Option<String>,
    image: Option<String>,
}

impl UserBody {
    pub fn new(user: User, token: String) -> Json<Self> {
        Json(UserBody {
            user: UserView {
                email: user.email,
                email_verified: user.email_verified,
                token,
                username: user.username,
                bio: user.bio,
                image: user.image,
            },
        })
    }
}

#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    user: Registration,
}

/// Missing fields are reported as blank (422), like empty ones.
#[derive(Deserialize, ToSchema)]
#[schema(as = NewUser)]
pub struct Registration {
    #[schema(required, value_type = String, min_length = 1, max_length = 64, pattern = r"\S")]
    username: Option<String>,
    #[schema(required, value_type = String, min_length = 3, max_length = 254, pattern = r"^\s*[^@\s]+@[^@\s]+\s*$")]
    email: Option<String>,
    #[schema(required, value_type = String, min_length = 8, max_length = 256)]
    password: Option<String>,
}

/// Register a new user; answers with the user and a token.
#[utoipa::path(post, path = "/users", tag = "User and Authentication", request_body = RegisterRequest,
    responses((status = 201, body = UserBody), (status = 409, description = "Username or email taken", body = ErrorBody),
        (status = 429, description = "Too many registrations from this address this hour", body = ErrorBody),
        (status = 503, description = "Too many logins and registrations at once; retry after `Retry-After`", body = ErrorBody)))]
pub(crate) async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    admission: Admission,
    ApiJson(RegisterRequest { user: input }): ApiJson<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<UserBody>)> {
    let mut errors = Errors::new();
    let username = errors.check("username", v::username(input.username.as_deref().unwrap_or_default()));
    let email = errors.check("email", v::email(input.email.as_deref().unwrap_or_default()));
    let password = errors.check("password", v::new_password(input.password.as_deref().unwrap_or_default()));
    let (Some(username), Some(email), Some(password)) = (username, email, password) else {
        return Err(errors.into());
    };
    // Every registration counts against its address, taken or not: each costs a password hash,
    // and a refused one tells whether a name or email exists. Its verification mail counts
    // against the recipient's mail, whether or not the address turns out to be taken.
    state.limiter.reserve(&registration_limits(&state.limits, email.as_str(), ip)).await?.keep();
    let password_hash = state.passwords.hash(admission, password).await?;
    // The verification link is queued with the account, in its transaction.
    let outgoing = state.mail.verification(&username, &email);
    let user = state.store.create_user(&NewUser { username, email, password_hash }, &outgoing).await?;
    state.mail.queued(&state.metrics, &outgoing);
    let now = chrono::Utc::now();
    let token = state.tokens.mint(user.id, user.token_version, &Grant::login(now), now);
    Ok((StatusCode::CREATED, UserBody::new(user, token)))
}

/// Log in with email and password; answers with the user and a fresh token.
#[utoipa::path(post, path = "/users/login", tag = "User and Authentication", request_body = LoginRequest,
    responses((status = 200, body = UserBody), (status = 401, description = "Wrong email or password", body = ErrorBody),
        (status = 403, description = "The account is deactivated", body = ErrorBody),
        (status = 429, description = "Too many failed logins from this address or for this account", body = ErrorBody),
        (status = 503, description = "Too many logins and registrations at once; retry after `Retry-After`", body = ErrorBody)))]
pub(crate) async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    admission: Admission,
    ApiJson(LoginRequest { user: input }): ApiJson<LoginRequest>,
) -> ApiResult<Json<UserBody>> {
    let user = check_login(&state, ip, input, admission).await?;
    let now = chrono::Utc::now();
    let token = state.tokens.mint(user.id, user.token_version, &Grant::login(now), now);
    Ok(UserBody::new(user, token))
}

/// The current user, with the token they presented.
#[utoipa::path(get, path = "/user", tag = "User and Authentication", security(("Token" = [])),
    responses((status = 200, body = UserBody), (status = 401, body = ErrorBody)))]
pub(crate) async fn current(caller: RequireUser) -> Json<UserBody> {
    UserBody::new(caller.user, caller.token)
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateUserRequest {
    user: UserUpdate,
}

/// At least one field. `null` or `""` clears `bio` and `image`, and is refused for the rest.
/// Changing `email` or `password` needs `currentPassword`, or a login within the last
/// `CONDUIT_REAUTH_WINDOW` seconds (10 minutes by default) behind the token or session.
#[derive(Deserialize, ToSchema)]
#[schema(as = UpdateUser)]
#[serde(rename_all = "camelCase")]
pub struct UserUpdate {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, min_length = 1, max_length = 64, pattern = r"\S")]
    username: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, min_length = 3, max_length = 254, pattern = r"^\s*[^@\s]+@[^@\s]+\s*$")]
    email: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, min_length = 8, max_length = 256)]
    password: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 4096)]
    bio: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 2048)]
    image: Option<Option<String>>,
    /// The password as it is now: needed to change `email` or `password` more than
    /// `CONDUIT_REAUTH_WINDOW` after the last login. A wrong one counts as a failed login.
    #[schema(value_type = String, min_length = 1, max_length = 256)]
    current_password: Option<String>,
}

/// Change the current user. A new password ends every earlier token and session, the ones
/// making the change included: the answer carries the one new token, and a session that made
/// the change continues under a new id.
#[utoipa::path(put, path = "/user", tag = "User and Authentication", security(("Token" = [])), request_body = UpdateUserRequest,
    responses((status = 200, body = UserBody), (status = 401, body = ErrorBody),
        (status = 403, description = "Email or password change without a recent login or the right `currentPassword`", body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 429, description = "Too many wrong current passwords, or mails to the new address", body = ErrorBody)))]
pub(crate) async fn update(
    State(state): State<AppState>,
    mut auth: AuthSession,
    ClientIp(ip): ClientIp,
    caller: RequireUser,
    ApiJson(UpdateUserRequest { user: input }): ApiJson<UpdateUserRequest>,
) -> ApiResult<Json<UserBody>> {
    let wanted = WantedChanges::validate(input)?;
    let mut grant = caller.grant.clone();
    let mut confirmed_by_password = false;
    if wanted.email.is_some() || wanted.password.is_some() {
        (grant.auth_time, confirmed_by_password) =
            confirm_identity(&state, &caller.user, caller.grant.auth_time, ip, wanted.current_password.clone()).await?;
    }
    let password_hash = match wanted.password.clone() {
        Some(password) => {
            // Each new password costs a hash: counted against the address like a login.
            state.limiter.reserve(&hash_limits(&state.limits, ip)).await?.keep();
            Some(state.passwords.hash(state.passwords.admit()?, password).await?)
        }
        None => None,
    };
    if let Some(new) = wanted.email.as_deref().filter(|e| *e != caller.user.email) {
        // A new address is mailed a link: limited per recipient like every mailing request, so
        // an account cannot be used to flood someone's inbox by changing its address to theirs.
        state.limiter.reserve(&mail_limits(&state.limits, new, ip)).await?.keep();
    }
    let surviving_token = surviving_token(&state, &caller, password_hash.is_some(), confirmed_by_password);
    let changes = wanted.into_changes(&state, &caller, password_hash, surviving_token);
    // `None`: the credential was revoked (or the account deleted) while this request ran.
    let user = state.store.update_user(caller.user.id, &changes).await?.ok_or(ApiError::Token("has been revoked"))?;
    state.mail.queued(&state.metrics, &changes.outgoing);
    if user.token_version == caller.user.token_version && grant == caller.grant {
        return Ok(UserBody::new(user, caller.token));
    }
    renewed(&state, &mut auth, &caller, user, &grant).await
}

/// What `PUT /api/user` asks for, each field checked: outer `Some` when the field was sent,
/// inner `None` when it was sent as `null` (for `bio` and `image`: cleared).
struct WantedChanges {
    username: Option<Username>,
    email: Option<Email>,
    password: Option<String>,
    bio: Option<Option<String>>,
    image: Option<Option<String>>,
    current_password: Option<String>,
}

impl WantedChanges {
    fn validate(input: UserUpdate) -> ApiResult<WantedChanges> {
        let mut errors = Errors::new();
        if input.username.is_none()
            && input.email.is_none()
            && input.password.is_none()
            && input.bio.is_none()
            && input.image.is_none()
        {
            errors.add("user", "must contain at least one of username, email, password, bio, image");
        }
        let required = |value: Option<String>| value.unwrap_or_default();
        let username = input.username.map(|u| errors.check("username", v::username(&required(u))));
        let email = input.email.map(|e| errors.check("email", v::email(&required(e))));
        let password = input.password.map(|p| errors.check("password", v::new_password(&required(p))));
        let bio = input.bio.map(|b| errors.check("bio", v::optional_text(b.as_deref(), v::BIO_MAX)));
        let image = input.image.map(|i| errors.check("image", v::optional_text(i.as_deref(), v::IMAGE_MAX)));
        let current_password = input.current_password.map(|p| errors.check("currentPassword", v::login_password(&p)));
        if !errors.is_empty() {
            return Err(errors.into());
        }
        Ok(WantedChanges {
            username: username.flatten(),
            email: email.flatten(),
            password: password.flatten(),
            bio: bio.map(Option::flatten),
            image: image.map(Option::flatten),
            current_password: current_password.flatten(),
        })
    }

    /// The store's changes, with the mail they send.
    fn into_changes(
        self,
        state: &AppState,
        caller: &RequireUser,
        password_hash: Option<String>,
        surviving_token: Option<String>,
    ) -> UserChanges {
        let outgoing =
            change_mails(state, &caller.user, self.username.as_deref(), self.email.as_deref(), password_hash.is_some());
        UserChanges {
            username: self.username,
            email: self.email,
            surviving_token,
            expected_version: Some(caller.user.token_version),
            password_hash,
            bio: self.bio,
            image: self.image,
            outgoing,
        }
    }
}

/// A new password ends every earlier token. The token making the change outlives it only when
/// the change rested on its recent login (no `currentPassword`), and only until that login's
/// window closes: its holder could change the password again until then anyway. (The
/// RealWorld Hurl suite changes the password twice with one token.)
fn surviving_token(
    state: &AppState,
    caller: &RequireUser,
    new_password: bool,
    confirmed_by_password: bool,
) -> Option<String> {
    let id = caller.token_id.as_ref().filter(|_| new_password && !confirmed_by_password)?;
    let window = i64::try_from(state.accounts.reauth_window.as_secs()).unwrap_or(i64::MAX);
    Some(grace_token_value(id, caller.grant.auth_time.saturating_add(window)))
}

/// A new password ended every earlier token and session: the caller's is renewed (a session
/// gets a new id, bound to the new token version). A password confirmed again renews the login
/// time.
async fn renewed(
    state: &AppState,
    auth: &mut AuthSession,
    caller: &RequireUser,
    user: User,
    grant: &Grant,
) -> ApiResult<Json<UserBody>> {
    if caller.via_session {
        auth.session.cycle_id().await.map_err(|_| ApiError::SessionUnavailable)?;
        auth.login(&SessionUser::new(user.clone())).await.map_err(|_| ApiError::SessionUnavailable)?;
        sessions::record_login(&auth.session, grant.auth_time, false).await?;
    }
    let token = state.tokens.mint(user.id, user.token_version, grant, chrono::Utc::now());
    Ok(UserBody::new(user, token))
}

/// The mail a change of the account sends, in its transaction: a new address gets a
/// verification link and the old one a notice with a link that undoes the change; a new
/// password, a notice to the account's (new) address.
fn change_mails(
    state: &AppState,
    user: &User,
    username: Option<&str>,
    email: Option<&str>,
    new_password: bool,
) -> Outgoing {
    let name = username.unwrap_or(&user.username);
    let mut outgoing = Outgoing::default();
    let address = match email.filter(|e| *e != user.email) {
        Some(new) => {
            outgoing = state.mail.email_changed(name, &user.email, user.email_verified, new);
            new
        }
        None => &user.email,
    };
    if new_password {
        outgoing.mails.push(state.mail.password_changed(name, address));
    }
    outgoing
}

/// Whether the caller may change their email or password: with the right `current_password`
/// (counted like a login attempt), or within the re-authentication window of their login.
/// Returns the login time to carry on (now when the password was given), and whether it was.
pub(crate) async fn confirm_identity(
    state: &AppState,
    user: &User,
    auth_time: i64,
    ip: std::net::IpAddr,
    current_password: Option<String>,
) -> ApiResult<(i64, bool)> {
    let now = state.clock.now().timestamp();
    match current_password {
        Some(password) => {
            let email = Email::parse(&user.email).map_err(|e| ApiError::Internal(format!("stored email {e}")))?;
            let credentials = state.store.credentials_by_email(&email).await?;
            let hash = credentials.map(|c| c.password_hash);
            let admission = state.passwords.admit()?;
            if counted_verify(state, &user.email, ip, password, hash, admission).await? {
                Ok((now, true))
            } else {
                Err(ApiError::CurrentPassword("is wrong"))
            }
        }
        None => {
            let window = i64::try_from(state.accounts.reauth_window.as_secs()).unwrap_or(i64::MAX);
            if now.saturating_sub(auth_time) <= window {
                Ok((auth_time, false))
            } else {
                Err(ApiError::CurrentPassword(
                    "is required to change the email or password this long after logging in: send it, or log in again",
                ))
            }
        }
    }
}
