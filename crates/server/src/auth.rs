//! Who is calling. `Authorization: Token <jwt>` (or `Bearer <jwt>`) names a user; the user is
//! loaded on every request, so a deleted account's tokens stop working at once.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use conduit_domain::User;
use conduit_domain::token::TokenError;

use crate::error::ApiError;
use crate::state::AppState;

/// The authenticated caller and the token they presented. Missing or bad token: 401.
#[derive(Debug, Clone)]
pub struct RequireUser {
    pub user: User,
    pub token: String,
    /// The token's own id (`jti`), when it has one.
    pub token_id: Option<String>,
}

/// The caller if a token was sent. A token that was sent but is bad is still a 401: silently
/// treating it as anonymous would hide the client's bug.
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
    // Loaded on every request, so deactivation and revocation take effect at once.
    if !user.active {
        return Err(ApiError::Token("belongs to a deactivated account"));
    }
    // A password change revokes every earlier token but the one that made it.
    let survivor = claims.jti.is_some() && claims.jti == user.grace_token_id;
    if claims.ver != user.token_version && !survivor {
        return Err(ApiError::Token("has been revoked"));
    }
    Ok(RequireUser { user, token: token.to_owned(), token_id: claims.jti })
}

impl FromRequestParts<AppState> for RequireUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = presented_token(parts)?.ok_or(ApiError::Token("is missing"))?;
        authenticate(state, token).await
    }
}

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match presented_token(parts)? {
            Some(token) => Ok(MaybeUser(Some(authenticate(state, token).await?))),
            None => Ok(MaybeUser(None)),
        }
    }
}

/// An authenticated admin: 401 without a valid token, 403 for anyone else.
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
