//! `/admin/users`: find people (by the start of their name or address, role, verified,
//! suspended, active), open one, and act on their account.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use conduit_domain::User;
use conduit_domain::model::Role;
use conduit_store::moderation::{LogQuery, Target, TargetKind};
use conduit_store::{AccountChanges, Paging, UserSearch};
use serde::Deserialize;

use crate::console::Refusal;
use crate::console::moderation::LogRow;
use crate::console::session::{Nothing, Posted, Staff};
use crate::console::view::{Nav, PAGE, next_page, render, segment, some, when, when_unix};
use crate::error::ApiError;
use crate::http::extract::profile_name;
use crate::routes::account::send_verification;
use crate::state::AppState;

/// A user as a row of the list and as the head of their page.
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub role: &'static str,
    pub verified: bool,
    pub active: bool,
    pub suspended: Option<String>,
    pub joined: String,
}

impl UserRow {
    fn of(user: &User, now: i64) -> Self {
        UserRow {
            id: user.id.get(),
            username: user.username.clone(),
            email: user.email.clone(),
            role: user.role.as_str(),
            verified: user.email_verified,
            active: user.active,
            suspended: user.suspended_at(now).map(|s| format!("until {}: {}", when_unix(s.until), s.reason)),
            joined: when(user.created_at),
        }
    }
}

/// The list's filters, as the form sends them (blank: any).
#[derive(Deserialize, Default)]
pub struct UsersQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    verified: String,
    #[serde(default)]
    state: String,
    after: Option<i64>,
}

impl UsersQuery {
    fn link(&self, after: i64) -> String {
        format!(
            "/admin/users?q={}&role={}&verified={}&state={}&after={after}",
            segment(&self.q),
            segment(&self.role),
            segment(&self.verified),
            segment(&self.state)
        )
    }
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage {
    nav: Nav,
    users: Vec<UserRow>,
    /// Everyone, when no filter is set (the maintained count).
    total: Option<i64>,
    query: UsersQuery,
    next: Option<String>,
}

fn yes_no(raw: &str) -> Option<bool> {
    match raw {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

pub(super) async fn users(
    State(state): State<AppState>,
    staff: Staff,
    Query(query): Query<UsersQuery>,
) -> Result<Response, Refusal> {
    let now = state.clock.now().timestamp();
    let search = UserSearch {
        prefix: some(&query.q),
        role: Role::parse(&query.role),
        verified: yes_no(&query.verified),
        active: match query.state.as_str() {
            "active" => Some(true),
            "deactivated" => Some(false),
            _ => None,
        },
        suspended_at: (query.state == "suspended").then_some(now),
        after: query.after,
        limit: PAGE,
    };
    let unfiltered = search.prefix.is_none()
        && search.role.is_none()
        && search.verified.is_none()
        && search.active.is_none()
        && search.suspended_at.is_none();
    let total = if unfiltered {
        Some(state.store.list_users(None, Paging { limit: 1, ..Paging::default() }).await?.total)
    } else {
        None
    };
    let found = state.store.find_users(&search).await?;
    let users: Vec<UserRow> = found.iter().map(|u| UserRow::of(u, now)).collect();
    let next = next_page(users.len(), || users.last().map(|u| query.link(u.id)));
    render(&UsersPage { nav: Nav::of(&staff, "users"), users, total, query, next })
}

#[derive(Template)]
#[template(path = "console/user.html")]
struct UserPage {
    nav: Nav,
    user: UserRow,
    history: Vec<LogRow>,
    /// Whether moderators' actions apply to the account (suspend, purge): not to staff.
    actionable: bool,
}

pub(super) async fn user(
    State(state): State<AppState>,
    staff: Staff,
    Path(username): Path<String>,
) -> Result<Response, Refusal> {
    let name = profile_name(&username)?;
    let id = state.store.user_id_by_name(&name).await?.ok_or(ApiError::NotFound("profile"))?;
    let user = state.store.user_by_id(id).await?.ok_or(ApiError::NotFound("profile"))?;
    let target = Target { kind: TargetKind::Profile, id: id.get() };
    let history = LogQuery { target: Some(target), limit: PAGE, ..LogQuery::default() };
    let history = state.store.moderation_log(&history).await?.into_iter().map(Into::into).collect();
    render(&UserPage {
        nav: Nav::of(&staff, "users"),
        actionable: !user.moderates(),
        user: UserRow::of(&user, state.clock.now().timestamp()),
        history,
    })
}

/// An account change's form (admins only): a role, or deactivate / reactivate.
#[derive(Deserialize)]
pub struct AccountForm {
    role: Option<String>,
    active: Option<String>,
    #[serde(default)]
    password: String,
}

/// Changes a role or the active flag through the store call the admin API makes.
pub(super) async fn account(
    State(state): State<AppState>,
    Path(username): Path<String>,
    Posted { staff, form }: Posted<AccountForm>,
) -> Result<Response, Refusal> {
    staff.require_admin()?;
    staff.confirm(&state, some(&form.password)).await?;
    let role = match form.role.as_deref() {
        None => None,
        Some(raw) => Some(Role::parse(raw).ok_or(ApiError::invalid("role", "must be user, moderator or admin"))?),
    };
    let active = match form.active.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(ApiError::invalid("active", "must be true or false").into()),
    };
    if role.is_none() && active.is_none() {
        return Err(ApiError::invalid("form", "must change the role or the active flag").into());
    }
    let changes = AccountChanges { role, active, by: Some(staff.user.id) };
    let user =
        state.store.set_account(&profile_name(&username)?, &changes).await?.ok_or(ApiError::NotFound("profile"))?;
    tracing::info!(actor = %staff.user.username, username = %user.username, ?changes, "account changed in the console");
    Ok(Redirect::to(&format!("/admin/users/{}", segment(&user.username))).into_response())
}

/// Mails a new verification link to an unverified user, as their own request would.
pub(super) async fn resend(
    State(state): State<AppState>,
    Path(username): Path<String>,
    Posted { staff, form: Nothing {} }: Posted<Nothing>,
) -> Result<Response, Refusal> {
    let name = profile_name(&username)?;
    let id = state.store.user_id_by_name(&name).await?.ok_or(ApiError::NotFound("profile"))?;
    let user = state.store.user_by_id(id).await?.ok_or(ApiError::NotFound("profile"))?;
    send_verification(&state, &user, staff.ip()).await?;
    tracing::info!(actor = %staff.user.username, username = %user.username, "verification resent from the console");
    Ok(Redirect::to(&format!("/admin/users/{}", segment(&user.username))).into_response())
}
