//! The handlers: one file per resource.

pub(crate) mod account;
pub(crate) mod admin;
pub(crate) mod articles;
pub(crate) mod comments;
pub(crate) mod health;
pub(crate) mod profiles;
pub(crate) mod session;
pub(crate) mod tags;
pub(crate) mod users;

use axum::Router;

use crate::state::AppState;

/// `/api/...` and the health checks, without the layers around them (`app.rs` adds those).
pub fn routes() -> Router<AppState> {
    let api = Router::new()
        .merge(users::routes())
        .merge(account::routes())
        .merge(profiles::routes())
        .merge(articles::routes())
        .merge(comments::routes())
        .merge(tags::routes())
        .merge(admin::routes())
        .merge(session::routes());
    Router::new().nest("/api", api).merge(health::routes())
}
