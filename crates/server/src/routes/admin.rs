//! User administration, for admins only: list users, and change their role (user, moderator,
//! admin) or active flag.

use axum::Json;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use conduit_domain::model::Role;
use conduit_domain::{Errors, User};
use conduit_store::AccountChanges;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::extract::RequireAdmin;
use crate::error::ErrorBody;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, DEFAULT_LIMIT, MAX_LIMIT, RawPage, next_cursor, paging, profile_name};
use crate::state::AppState;

/// A user as an admin sees them.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Account)]
pub struct AccountView {
    username: String,
    email: String,
    /// False until the person opened the verification link mailed to `email`.
    email_verified: bool,
    bio: Option<String>,
    image: Option<String>,
    role: Role,
    active: bool,
    created_at: DateTime<Utc>,
}

impl From<User> for AccountView {
    fn from(u: User) -> Self {
        AccountView {
            username: u.username,
            email: u.email,
            email_verified: u.email_verified,
            bio: u.bio,
            image: u.image,
            role: u.role,
            active: u.active,
            created_at: u.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountsBody {
    users: Vec<AccountView>,
    users_count: i64,
    /// Where the next page starts: pass it back as `cursor`. Absent on a page that was not
    /// full (the last one).
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AccountBody {
    user: AccountView,
}

#[derive(Deserialize)]
pub struct UsersQuery {
    active: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
    cursor: Option<String>,
}

/// Users, oldest first (admins only).
#[utoipa::path(get, path = "/admin/users", tag = "Admin", security(("Token" = [])),
    params(("active" = Option<bool>, Query, description = "Only active (true) or deactivated (false) users"),
        ("limit" = Option<i32>, Query, minimum = 0, description = "Page size, default 20, capped at 100"),
        ("offset" = Option<i32>, Query, minimum = 0, maximum = 10000, description = "Users to skip, default 0, at most 10,000 (then use cursor)"),
        ("cursor" = Option<String>, Query, description = "Where to start: the nextCursor of the previous page (keyset pagination; offset applies after it)")),
    responses((status = 200, body = AccountsBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    query: Result<Query<UsersQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<AccountsBody>> {
    let Query(query) = query.map_err(|e| ApiError::invalid("query", format!("is not valid: {}", e.body_text())))?;
    let mut errors = Errors::new();
    let raw =
        RawPage { limit: query.limit.as_deref(), offset: query.offset.as_deref(), cursor: query.cursor.as_deref() };
    let page = paging(raw, (DEFAULT_LIMIT, MAX_LIMIT), &mut errors);
    let active = match query.active.as_deref() {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            errors.add("active", "must be true or false");
            None
        }
    };
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let found = state.store.list_users(active, page).await?;
    let next_cursor = next_cursor(page, found.items.len(), found.items.last().map(|u| u.id.get()));
    let users = found.items.into_iter().map(Into::into).collect();
    Ok(Json(AccountsBody { users, users_count: found.total, next_cursor }))
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateAccountRequest {
    user: AccountChangesInput,
}

/// At least one of `active` and `role`.
#[derive(Deserialize, ToSchema)]
#[schema(as = UpdateAccount)]
pub struct AccountChangesInput {
    active: Option<bool>,
    #[schema(value_type = Option<Role>)]
    role: Option<String>,
}

/// Change a user's role or active flag (admins only). Deactivation ends their tokens and
/// sessions at once.
#[utoipa::path(put, path = "/admin/users/{username}", tag = "Admin", security(("Token" = [])), request_body = UpdateAccountRequest,
    params(("username" = String, Path, description = "The user to change")),
    responses((status = 200, body = AccountBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn update(
    State(state): State<AppState>,
    admin: RequireAdmin,
    Path(username): Path<String>,
    ApiJson(UpdateAccountRequest { user: input }): ApiJson<UpdateAccountRequest>,
) -> ApiResult<Json<AccountBody>> {
    let mut errors = Errors::new();
    let role = match input.role.as_deref() {
        None => None,
        Some(raw) => errors
            .check("role", Role::parse(raw).map(Some).ok_or_else(|| "must be user, moderator or admin".to_owned()))
            .flatten(),
    };
    if input.active.is_none() && input.role.is_none() {
        errors.add("user", "must contain active or role");
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let changes = AccountChanges { role, active: input.active, by: Some(admin.0.user.id) };
    let user =
        state.store.set_account(&profile_name(&username)?, &changes).await?.ok_or(ApiError::NotFound("profile"))?;
    tracing::info!(username, ?changes, "account changed by an admin");
    Ok(Json(AccountBody { user: user.into() }))
}
