//! `GET /api/feeds/...`: RSS and Atom of the newest articles, of a tag's, of an author's (see
//! `feeds`). Conditional: `If-None-Match` (preferred) or `If-Modified-Since` answer 304.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use conduit_domain::Article;
use conduit_store::{ArticleQuery, Paging};

use crate::error::{ApiError, ApiResult};
use crate::feeds::{FEED_ITEMS, Format, Scope, Validator, last_modified, xml};
use crate::http::extract::profile_name;
use crate::state::AppState;

/// The newest articles.
#[utoipa::path(get, path = "/feeds/{format}", tag = "Feeds",
    params(("format" = String, Path, description = "`rss` (RSS 2.0) or `atom` (Atom 1.0)")),
    responses((status = 200, description = "The newest 20 articles with their sanitized HTML", content((String = "application/rss+xml"), (String = "application/atom+xml"))),
        (status = 304, description = "Not modified since the ETag or date given"),
        (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn all(
    State(state): State<AppState>,
    Path(format): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    serve(&state, Scope::All, &format, &headers).await
}

/// The newest articles with a tag.
#[utoipa::path(get, path = "/feeds/tag/{tag}/{format}", tag = "Feeds",
    params(("tag" = String, Path, description = "The tag"), ("format" = String, Path, description = "`rss` or `atom`")),
    responses((status = 200, description = "The tag's newest 20 articles", content((String = "application/rss+xml"), (String = "application/atom+xml"))),
        (status = 304, description = "Not modified"), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn tag(
    State(state): State<AppState>,
    Path((tag, format)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    serve(&state, Scope::Tag(tag), &format, &headers).await
}

/// The newest articles of an author.
#[utoipa::path(get, path = "/feeds/author/{username}/{format}", tag = "Feeds",
    params(("username" = String, Path, description = "The author"), ("format" = String, Path, description = "`rss` or `atom`")),
    responses((status = 200, description = "The author's newest 20 articles", content((String = "application/rss+xml"), (String = "application/atom+xml"))),
        (status = 304, description = "Not modified"), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn author(
    State(state): State<AppState>,
    Path((username, format)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let name = profile_name(&username)?;
    if state.store.profile(&name, None).await?.is_none() {
        return Err(ApiError::NotFound("profile"));
    }
    serve(&state, Scope::Author(name.as_str().to_owned()), &format, &headers).await
}

async fn serve(state: &AppState, scope: Scope, format: &str, headers: &HeaderMap) -> ApiResult<Response> {
    let format = Format::parse(format).ok_or(ApiError::NotFound("feed"))?;
    let mut query = ArticleQuery { page: Paging { limit: FEED_ITEMS, ..Paging::default() }, ..ArticleQuery::default() };
    match &scope {
        Scope::All => {}
        Scope::Tag(tag) => query.tag = Some(tag.clone()),
        Scope::Author(name) => query.author = Some(profile_name(name)?),
    }
    let listed = state.store.list_articles(&query, None).await?.items;
    let validator = Validator::of(format, &scope, &listed);
    let modified = last_modified(&listed);
    if not_modified(headers, &validator, modified) {
        return Ok(with_validators(StatusCode::NOT_MODIFIED.into_response(), &validator, modified));
    }
    let document = match state.feeds.get(format, &scope, &validator) {
        Some(document) => document,
        None => {
            let items = with_bodies(state, listed).await?;
            let document = Bytes::from(xml::document(format, &scope, &state.site, &items));
            state.feeds.keep(format, scope, validator.clone(), document.clone());
            document
        }
    };
    let mut response = document.into_response();
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    Ok(with_validators(response, &validator, modified))
}

/// The listed articles with their bodies, through the store's article cache.
async fn with_bodies(state: &AppState, listed: Vec<Article>) -> ApiResult<Vec<Article>> {
    let mut items = Vec::with_capacity(listed.len());
    for article in listed {
        let slug = conduit_domain::Slug::parse(&article.slug).map_err(|_| ApiError::NotFound("article"))?;
        // Deleted since it was listed: left out (the next request's validator differs anyway).
        if let Some(full) = state.store.article(&slug, None).await? {
            items.push(full);
        }
    }
    Ok(items)
}

/// `If-None-Match` decides when given; else `If-Modified-Since`, to the second.
fn not_modified(headers: &HeaderMap, validator: &Validator, modified: chrono::DateTime<chrono::Utc>) -> bool {
    if let Some(tags) = headers.get(IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        return validator.matches(tags);
    }
    headers
        .get(IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
        .is_some_and(|since| modified.timestamp() <= since.timestamp())
}

fn with_validators(mut response: Response, validator: &Validator, modified: chrono::DateTime<chrono::Utc>) -> Response {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&validator.0) {
        headers.insert(ETAG, value);
    }
    // HTTP dates are RFC 1123's: GMT, not +0000.
    let date = modified.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    if let Ok(value) = HeaderValue::from_str(&date) {
        headers.insert(LAST_MODIFIED, value);
    }
    // Readers may keep it, but ask again each time: the validator makes asking cheap.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("public, no-cache"));
    response
}
