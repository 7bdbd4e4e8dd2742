//! `/admin/mail` (admins): the outbox, newest first, by state, and requeueing dead mail (as
//! `conduit mail retry` does).

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::console::Refusal;
use crate::console::session::{Posted, Staff};
use crate::console::view::{Nav, PAGE, render, some, when_millis};
use crate::error::ApiError;
use crate::state::AppState;

pub struct MailRow {
    pub id: i64,
    pub kind: String,
    pub to: String,
    pub subject: String,
    pub state: String,
    pub attempts: i64,
    pub error: String,
    pub queued: String,
    /// Dead with its text kept: it can be sent again.
    pub requeueable: bool,
}

#[derive(Deserialize)]
pub struct MailQuery {
    #[serde(default)]
    state: String,
}

#[derive(Template)]
#[template(path = "console/mail.html")]
struct MailPage {
    nav: Nav,
    state: String,
    mails: Vec<MailRow>,
}

pub(super) async fn mail(
    State(state): State<AppState>,
    staff: Staff,
    Query(query): Query<MailQuery>,
) -> Result<Response, Refusal> {
    staff.require_admin()?;
    let filter = ["queued", "sent", "dead"].into_iter().find(|s| *s == query.state);
    let mails = state
        .store
        .list_mail(filter, PAGE)
        .await?
        .into_iter()
        .map(|m| MailRow {
            requeueable: m.state == "dead" && !m.body.is_empty(),
            id: m.id,
            kind: m.kind,
            to: m.to,
            subject: m.subject,
            state: m.state,
            attempts: m.attempts,
            error: m.last_error.unwrap_or_default(),
            queued: when_millis(m.created_at),
        })
        .collect();
    render(&MailPage { nav: Nav::of(&staff, "mail"), state: filter.unwrap_or_default().to_owned(), mails })
}

#[derive(Deserialize)]
pub struct RequeueForm {
    /// One message; blank: every dead one that kept its text.
    #[serde(default)]
    id: String,
}

pub(super) async fn requeue(
    State(state): State<AppState>,
    Posted { staff, form }: Posted<RequeueForm>,
) -> Result<Response, Refusal> {
    staff.require_admin()?;
    let id = match some(&form.id) {
        Some(id) => Some(id.parse::<i64>().map_err(|_| ApiError::invalid("id", "must be a number"))?),
        None => None,
    };
    state.store.retry_mail(id, state.clock.now().timestamp_millis(), Some(staff.user.id)).await?;
    Ok(Redirect::to("/admin/mail?state=dead").into_response())
}
