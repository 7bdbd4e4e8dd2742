//! What the console's forms post to. A moderation action goes through the API's own
//! `take_action` (the same checks, the same store call, the same log entry with the actor), an
//! account change through the store call the admin API makes.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use conduit_domain::model::Role;
use conduit_store::AccountChanges;
use serde::Deserialize;

use crate::console::Refusal;
use crate::console::session::Posted;
use crate::error::ApiError;
use crate::http::extract::profile_name;
use crate::routes::moderation::{ActionInput, take_action};
use crate::state::AppState;

/// Where a form's page sends the browser back to: a console page, never elsewhere.
fn back_to(back: Option<&str>) -> String {
    match back {
        Some(path) if path.starts_with("/admin") && !path.contains("//") && !path.contains('\\') => path.to_owned(),
        _ => "/admin".to_owned(),
    }
}

/// A moderation action's form. Every field is text, as a form sends it.
#[derive(Deserialize)]
pub struct ActionForm {
    kind: String,
    #[serde(default)]
    article: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    profile: String,
    #[serde(default)]
    reason: String,
    /// For a suspension: a date (`YYYY-MM-DD`, the end of that day in UTC) or RFC 3339.
    #[serde(default)]
    until: String,
    #[serde(default)]
    report: String,
    #[serde(default)]
    password: String,
    back: Option<String>,
}

/// Actions that take something away need a recent login or the password again.
fn destructive(kind: &str) -> bool {
    matches!(kind, "hide" | "delete" | "suspend" | "purge")
}

fn some(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

pub(super) async fn moderate(
    State(state): State<AppState>,
    Posted { staff, form }: Posted<ActionForm>,
) -> Result<Response, Refusal> {
    if destructive(&form.kind) {
        staff.confirm(&state, some(&form.password)).await?;
    }
    let number = |field: &'static str, text: &str| -> Result<Option<i64>, Refusal> {
        some(text)
            .map(|t| t.parse().map_err(|_| Refusal::Page(ApiError::invalid(field, "must be a number"))))
            .transpose()
    };
    let until = some(&form.until).map(|u| if u.len() == 10 { format!("{u}T23:59:59Z") } else { u });
    let input = ActionInput {
        kind: Some(form.kind.clone()),
        article: some(&form.article),
        comment: number("comment", &form.comment)?,
        profile: some(&form.profile),
        reason: Some(form.reason.clone()),
        until,
        report: number("report", &form.report)?,
    };
    take_action(&state, &staff.user, input).await?;
    Ok(Redirect::to(&back_to(form.back.as_deref())).into_response())
}

/// An account change's form (admins only): a role, or deactivate / reactivate.
#[derive(Deserialize)]
pub struct AccountForm {
    role: Option<String>,
    active: Option<String>,
    #[serde(default)]
    password: String,
}

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
    let name = profile_name(&username)?;
    let changes = AccountChanges { role, active };
    let user = state.store.set_account(&name, &changes).await?.ok_or(ApiError::NotFound("profile"))?;
    tracing::info!(actor = %staff.user.username, username = %user.username, ?changes, "account changed in the console");
    let path = format!(
        "/admin/users/{}",
        percent_encoding::utf8_percent_encode(&user.username, percent_encoding::NON_ALPHANUMERIC)
    );
    Ok(Redirect::to(&path).into_response())
}
