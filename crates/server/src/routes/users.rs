//! Registration, login, and the current user.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use conduit_domain::{Errors, User, validation as v};
use conduit_store::{NewUser, UserChanges};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::RequireUser;
use crate::client_ip::ClientIp;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, present};
use crate::openapi::ErrorBody;
use crate::sessions::{AuthSession, SessionUser};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users", post(register))
        .route("/users/login", post(login))
        .route("/user", get(current).put(update))
}

/// `{"user": {...}}` as the spec returns it: the owner's view, with a token.
#[derive(Serialize, ToSchema)]
pub struct UserBody {
    user: UserView,
}

#[derive(Serialize, ToSchema)]
#[schema(as = User)]
pub struct UserView {
    email: String,
    token: String,
    username: String,
    bio: Option<String>,
    image: Option<String>,
}

impl UserBody {
    pub fn new(user: User, token: String) -> Json<Self> {
        Json(UserBody {
            user: UserView { email: user.email, token, username: user.username, bio: user.bio, image: user.image },
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
        (status = 429, description = "Too many refused registrations from this address or for this account", body = ErrorBody)))]
pub(crate) async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(RegisterRequest { user: input }): ApiJson<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<UserBody>)> {
    // Refused registrations (a taken name or email) reveal which accounts exist: limit them.
    let mut keys = vec![format!("register:ip:{ip}")];
    keys.extend(input.email.iter().map(|e| format!("account:{}", e.trim().to_lowercase())));
    keys.extend(input.username.iter().map(|u| format!("register:username:{}", u.trim())));
    state.limiter.check(&keys).await?;
    let mut errors = Errors::new();
    let username = errors.check("username", v::username(input.username.as_deref().unwrap_or_default()));
    let email = errors.check("email", v::email(input.email.as_deref().unwrap_or_default()));
    let password = errors.check("password", v::new_password(input.password.as_deref().unwrap_or_default()));
    let (Some(username), Some(email), Some(password)) = (username, email, password) else {
        return Err(errors.into());
    };
    let password_hash = state.passwords.hash(password).await?;
    let user = match state.store.create_user(&NewUser { username, email, password_hash }).await {
        Ok(user) => user,
        Err(e) => {
            if matches!(e, conduit_store::DbError::Conflict(_)) {
                state.limiter.record_failure(&keys).await;
            }
            return Err(e.into());
        }
    };
    let token = state.tokens.mint(user.id, user.token_version, chrono::Utc::now());
    Ok((StatusCode::CREATED, UserBody::new(user, token)))
}

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

/// Log in with email and password; answers with the user and a fresh token.
#[utoipa::path(post, path = "/users/login", tag = "User and Authentication", request_body = LoginRequest,
    responses((status = 200, body = UserBody), (status = 401, description = "Wrong email or password", body = ErrorBody),
        (status = 403, description = "The account is deactivated", body = ErrorBody),
        (status = 429, description = "Too many failed logins from this address or for this account", body = ErrorBody)))]
pub(crate) async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(LoginRequest { user: input }): ApiJson<LoginRequest>,
) -> ApiResult<Json<UserBody>> {
    let user = check_login(&state, ip, input).await?;
    let token = state.tokens.mint(user.id, user.token_version, chrono::Utc::now());
    Ok(UserBody::new(user, token))
}

/// Checks email and password (for token and session logins alike): rate-limited per client
/// address and per account, and the same answer and Argon2 work for unknown emails and wrong
/// passwords.
pub(crate) async fn check_login(state: &AppState, ip: std::net::IpAddr, input: Login) -> ApiResult<User> {
    let mut errors = Errors::new();
    let email = input.email.as_deref().unwrap_or_default().trim().to_lowercase();
    if email.is_empty() {
        errors.add("email", v::BLANK);
    } else if email.contains('\0') {
        errors.add("email", "must not contain NUL characters");
    }
    let password = errors.check("password", v::login_password(input.password.as_deref().unwrap_or_default()));
    let Some(password) = password.filter(|_| errors.is_empty()) else {
        return Err(errors.into());
    };
    let keys = [format!("login:ip:{ip}"), format!("account:{email}")];
    state.limiter.check(&keys).await?;
    // Unknown email and wrong password take the same path through Argon2 and give the same
    // answer, so neither timing nor body reveals which accounts exist.
    let credentials = state.store.credentials_by_email(&email).await?;
    let hash = credentials.as_ref().map(|c| c.password_hash.clone());
    let matches = state.passwords.verify(password, hash).await?;
    state.metrics.record_login(matches && credentials.is_some());
    match credentials {
        // Only after the right password, so this reveals nothing to a guesser.
        Some(credentials) if matches && !credentials.user.active => Err(ApiError::Deactivated),
        Some(credentials) if matches => Ok(credentials.user),
        _ => {
            state.limiter.record_failure(&keys).await;
            Err(ApiError::Credentials)
        }
    }
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
#[derive(Deserialize, ToSchema)]
#[schema(as = UpdateUser)]
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
}

/// Change the current user. A new password revokes every earlier token except the one making
/// the change; the answer carries a renewed token.
#[utoipa::path(put, path = "/user", tag = "User and Authentication", security(("Token" = [])), request_body = UpdateUserRequest,
    responses((status = 200, body = UserBody), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn update(
    State(state): State<AppState>,
    mut auth: AuthSession,
    caller: RequireUser,
    ApiJson(UpdateUserRequest { user: input }): ApiJson<UpdateUserRequest>,
) -> ApiResult<Json<UserBody>> {
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
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let password_hash = match password.flatten() {
        Some(password) => Some(state.passwords.hash(password).await?),
        None => None,
    };
    let changes = UserChanges {
        username: username.flatten(),
        email: email.flatten(),
        surviving_token: password_hash.as_ref().and(caller.token_id.clone()),
        password_hash,
        bio: bio.map(Option::flatten),
        image: image.map(Option::flatten),
    };
    let user = state.store.update_user(caller.user.id, &changes).await?.ok_or(ApiError::Token("is invalid"))?;
    // A new password revoked every earlier token and session but this one, which is renewed.
    let token = if user.token_version == caller.user.token_version {
        caller.token
    } else {
        if caller.via_session {
            // Renewed: a new id, bound to the new token version.
            auth.session.cycle_id().await.map_err(|_| ApiError::SessionUnavailable)?;
            auth.login(&SessionUser::new(user.clone())).await.map_err(|_| ApiError::SessionUnavailable)?;
        }
        state.tokens.mint(user.id, user.token_version, chrono::Utc::now())
    };
    Ok(UserBody::new(user, token))
}
