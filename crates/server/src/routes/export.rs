//! `GET /api/user/export`: everything an account owns, as one JSON document, streamed.
//!
//! The document is written a page at a time as the client reads it: the user, then its
//! articles, comments, favorites and follows, each read from the store in pages bounded in rows
//! and in bytes (`conduit_store::EXPORT_PAGE_BYTES`). What one export holds in memory is one page,
//! whatever the account wrote (before, an account with a thousand 1 MiB articles made the
//! server hold all of them, twice, for each export asked at once). The body is sent chunked, so
//! a store failure halfway through ends the response short, an incomplete document rather
//! than a wrong one (and it is logged). Exports are limited per account
//! (`CONDUIT_EXPORTS_PER_HOUR`), four stream at once, and each for at most
//! `CONDUIT_EXPORT_TIMEOUT`: a timer gives its place back then, because a client that stops
//! reading stalls the stream where nothing polls it (it would otherwise hold its place, and
//! with four such clients every export, for as long as their connections stayed open).

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use conduit_domain::Article;
use conduit_domain::model::UserId;
use conduit_store::{DbError, Store};
use futures::StreamExt;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedSemaphorePermit;
use utoipa::ToSchema;

use crate::auth::extract::RequireUser;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::limits::{Posting, posting_limits};
use crate::state::AppState;

/// Rows per page of each part (articles and comments also end at the text budget).
const ARTICLES_PER_PAGE: i64 = 16;
const COMMENTS_PER_PAGE: i64 = 200;
const NAMES_PER_PAGE: i64 = 1000;

/// Everything an account owns, as one document (its shape; the handler writes it in pages).
#[derive(Serialize, ToSchema)]
pub struct ExportBody {
    export: ExportView,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Export)]
pub struct ExportView {
    exported_at: DateTime<Utc>,
    user: ExportedUser,
    /// Newest first, with bodies.
    articles: Vec<Article>,
    comments: Vec<ExportedComment>,
    /// Slugs of the articles the user favorited.
    favorites: Vec<String>,
    /// Usernames the user follows.
    follows: Vec<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportedUser {
    username: String,
    email: String,
    email_verified: bool,
    bio: Option<String>,
    image: Option<String>,
    role: conduit_domain::model::Role,
    created_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportedComment {
    id: i64,
    /// The slug of the article it is on.
    article: String,
    body: String,
    created_at: DateTime<Utc>,
}

/// Export the current user's data: profile, articles, comments, favorites and follows.
#[utoipa::path(get, path = "/user/export", tag = "Account lifecycle", security(("Token" = [])),
    responses((status = 200, body = ExportBody), (status = 401, body = ErrorBody),
        (status = 429, description = "The account asked for its exports for this hour (CONDUIT_EXPORTS_PER_HOUR)", body = ErrorBody),
        (status = 503, description = "Four exports are streaming already; retry shortly", body = ErrorBody)))]
pub(crate) async fn export(State(state): State<AppState>, caller: RequireUser) -> ApiResult<Response> {
    let user = caller.user;
    let Ok(streaming) = state.exports.clone().try_acquire_owned() else {
        return Err(ApiError::ExportsBusy);
    };
    state.limiter.reserve(&posting_limits(&state.limits, Posting::Export, &user, state.clock.now())).await?.keep();
    let head = ExportedUser {
        username: user.username.to_string(),
        email: user.email.to_string(),
        email_verified: user.email_verified,
        bio: user.bio.clone(),
        image: user.image.clone(),
        role: user.role,
        created_at: user.created_at,
    };
    let start = format!(r#"{{"export":{{"exportedAt":{},"user":{},"articles":["#, json(&Utc::now()), json(&head));
    let place = Arc::new(Mutex::new(Some(streaming)));
    let deadline = state.limits.export_timeout;
    let timer = tokio::spawn({
        let place = Arc::downgrade(&place);
        async move {
            tokio::time::sleep(deadline).await;
            if let Some(place) = place.upgrade() {
                give_back(&place);
            }
        }
    });
    let pages = Pages {
        store: state.store.clone(),
        user: user.id,
        next: Next::Articles(None),
        first: true,
        ends_at: tokio::time::Instant::now() + deadline,
        _place: Place { permit: place, timer: timer.abort_handle() },
    };
    // Fused: gzip's encoder polls once more after the end, which a bare `unfold` answers with
    // a panic (schemathesis found it: every gzipped export ended short).
    let stream = futures::stream::once(async move { Ok::<_, DbError>(Bytes::from(start)) })
        .chain(futures::stream::unfold(pages, Pages::next_chunk))
        .fuse();
    Ok(([(CONTENT_TYPE, "application/json")], Body::from_stream(stream)).into_response())
}

/// Which page comes next, and after what.
enum Next {
    Articles(Option<i64>),
    Comments(Option<i64>),
    Favorites(Option<i64>),
    Follows(Option<String>),
    Done,
}

struct Pages {
    store: Arc<dyn Store>,
    user: UserId,
    next: Next,
    /// No item written yet in the current array (so no comma before the next).
    first: bool,
    /// When the stream is cut off, however fast it is read.
    ends_at: tokio::time::Instant,
    _place: Place,
}

/// This export's place among those streaming at once: given back when the stream ends or by
/// the timer at the deadline, whichever comes first.
struct Place {
    permit: Arc<Mutex<Option<OwnedSemaphorePermit>>>,
    timer: tokio::task::AbortHandle,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.timer.abort();
        give_back(&self.permit);
    }
}

fn give_back(place: &Mutex<Option<OwnedSemaphorePermit>>) {
    // A poisoned lock still holds the permit; take it all the same.
    drop(place.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take());
}

impl Pages {
    /// The next chunk of the document (a page of items, or the text between two arrays), or
    /// the end.
    async fn next_chunk(mut self) -> Option<(Result<Bytes, DbError>, Self)> {
        if matches!(self.next, Next::Done) {
            return None;
        }
        if tokio::time::Instant::now() >= self.ends_at {
            tracing::warn!(
                user = self.user.get(),
                "export cut off at CONDUIT_EXPORT_TIMEOUT: the client read it too slowly"
            );
            self.next = Next::Done;
            return Some((Err(DbError::Other("the export passed CONDUIT_EXPORT_TIMEOUT".into())), self));
        }
        let chunk = match self.page().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return None,
            Err(e) => {
                tracing::error!(error = %e, "export cut short by a store failure");
                self.next = Next::Done;
                return Some((Err(e), self));
            }
        };
        Some((Ok(Bytes::from(chunk)), self))
    }

    async fn page(&mut self) -> Result<Option<String>, DbError> {
        let (store, user) = (&self.store, self.user);
        let mut out = String::new();
        match &self.next {
            Next::Articles(before) => {
                let page = store.export_articles(user, *before, ARTICLES_PER_PAGE).await?;
                self.write(&mut out, &page);
                self.next = match page.last() {
                    Some(last) => Next::Articles(Some(last.id.get())),
                    None => self.then(&mut out, r#"],"comments":["#, Next::Comments(None)),
                };
            }
            Next::Comments(after) => {
                let page = store.export_comments(user, *after, COMMENTS_PER_PAGE).await?;
                let views: Vec<ExportedComment> = page
                    .iter()
                    .map(|c| ExportedComment {
                        id: c.id,
                        article: c.article.clone(),
                        body: c.body.clone(),
                        created_at: c.created_at,
                    })
                    .collect();
                self.write(&mut out, &views);
                self.next = match page.last() {
                    Some(last) => Next::Comments(Some(last.id)),
                    None => self.then(&mut out, r#"],"favorites":["#, Next::Favorites(None)),
                };
            }
            Next::Favorites(after) => {
                let page = store.export_favorites(user, *after, NAMES_PER_PAGE).await?;
                let slugs: Vec<&String> = page.iter().map(|(_, slug)| slug).collect();
                self.write(&mut out, &slugs);
                self.next = match page.last() {
                    Some((id, _)) => Next::Favorites(Some(*id)),
                    None => self.then(&mut out, r#"],"follows":["#, Next::Follows(None)),
                };
            }
            Next::Follows(after) => {
                let page = store.export_follows(user, after.as_deref(), NAMES_PER_PAGE).await?;
                self.write(&mut out, &page);
                self.next = match page.last() {
                    Some(last) => Next::Follows(Some(last.clone())),
                    None => self.then(&mut out, "]}}", Next::Done),
                };
            }
            Next::Done => return Ok(None),
        }
        Ok(Some(out))
    }

    /// Appends `items` to the array being written.
    fn write<T: Serialize>(&mut self, out: &mut String, items: &[T]) {
        for item in items {
            if !std::mem::take(&mut self.first) {
                out.push(',');
            }
            out.push_str(&json(item));
        }
    }

    /// Closes one array (and opens the next) with `text`; `next` is what comes after it.
    fn then(&mut self, out: &mut String, text: &str, next: Next) -> Next {
        out.push_str(text);
        self.first = true;
        next
    }
}

/// `value` as JSON. Serializing the model cannot fail (no maps with non-string keys).
fn json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("the export's parts serialize")
}
