//! Request extractors whose failures use the API's error shape instead of axum's plain text.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use conduit_domain::search::SearchQuery;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult};

/// A JSON body. It must be declared `Content-Type: application/json` (or `application/*+json`),
/// else 415: a page on another site can send a cross-site `text/plain` or form body without
/// asking the browser first, but not a JSON one, so this is what keeps such pages from logging
/// a visitor in (to the attacker's account, say) or from writing anything with their cookie.
/// Its bytes were read by the edge before the handler ran (under the body deadline: 408 past
/// it; 413 past the body limit). A body that is not JSON, has
/// wrong types, or lacks the `user`/`article`/`comment` wrapper is a 422.
pub struct ApiJson<T>(pub T);

/// Whether a `Content-Type` value says JSON.
fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let declared_json = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(is_json);
        if !declared_json {
            return Err(ApiError::NotJson);
        }
        let read = Bytes::from_request(req, state).await;
        let bytes = read.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge
            } else {
                ApiError::invalid("body", format!("could not be read: {rejection}"))
            }
        })?;
        if bytes.is_empty() {
            return Err(ApiError::invalid("body", "can't be empty: send a JSON object"));
        }
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|e| ApiError::invalid("body", format!("is not valid: {e}")))
    }
}

/// An optional JSON body (`Option<ApiJson<T>>`): none when the request sends no bytes (declared
/// by a missing or zero `Content-Length` without chunking, whatever its `Content-Type`: many
/// clients send one on every request); anything sent is read and checked as [`ApiJson`] does.
impl<S: Send + Sync, T: DeserializeOwned> axum::extract::OptionalFromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, ApiError> {
        let headers = req.headers();
        let declared_length = headers
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let chunked = headers.contains_key(axum::http::header::TRANSFER_ENCODING);
        if !chunked && declared_length.unwrap_or(0) == 0 {
            return Ok(None);
        }
        <ApiJson<T> as FromRequest<S>>::from_request(req, state).await.map(Some)
    }
}

/// Default and maximum page sizes of list endpoints.
pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = conduit_store::MAX_ARTICLE_PAGE;
/// The deepest `offset` served: past it a page would cost a walk over every skipped item, so
/// clients go on with the page cursor (`nextCursor`, given back as `cursor`) instead.
pub const MAX_OFFSET: i64 = 10_000;

#[derive(Debug, Default, Deserialize)]
struct RawListParams {
    tag: Option<String>,
    author: Option<String>,
    favorited: Option<String>,
    q: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
    cursor: Option<String>,
}

/// `?tag=&author=&favorited=&q=&limit=&offset=&cursor=`, checked as [`paging`] says, and `q`
/// as [`SearchQuery::parse`] does. Empty filters mean "no filter".
#[derive(Debug, Clone)]
pub struct ListParams {
    pub tag: Option<String>,
    pub author: Option<String>,
    pub favorited: Option<String>,
    pub search: Option<SearchQuery>,
    pub page: conduit_store::Paging,
}

impl<S: Send + Sync> FromRequestParts<S> for ListParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(raw) = Query::<RawListParams>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid("query", format!("is not valid: {}", e.body_text())))?;
        let mut errors = conduit_domain::Errors::new();
        let raw_page =
            RawPage { limit: raw.limit.as_deref(), offset: raw.offset.as_deref(), cursor: raw.cursor.as_deref() };
        let page = paging(raw_page, (DEFAULT_LIMIT, MAX_LIMIT), &mut errors);
        let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
        let search = non_empty(raw.q).and_then(|q| errors.check("q", SearchQuery::parse(&q)));
        errors
            .into_result(ListParams {
                tag: non_empty(raw.tag),
                author: non_empty(raw.author),
                favorited: non_empty(raw.favorited),
                search,
                page,
            })
            .map_err(ApiError::Invalid)
    }
}

/// A page as a query string gives it: `limit`, `offset`, `cursor`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawPage<'a> {
    pub limit: Option<&'a str>,
    pub offset: Option<&'a str>,
    pub cursor: Option<&'a str>,
}

/// Checks a page: `limit` and `offset` non-negative integers, `offset` at most [`MAX_OFFSET`],
/// `cursor` one this server gave out; problems go to `errors` (422). `limit` defaults to and is
/// capped at `(default, max)`.
pub fn paging(
    raw: RawPage<'_>,
    (default, max): (i64, i64),
    errors: &mut conduit_domain::Errors,
) -> conduit_store::Paging {
    let limit = errors.check("limit", count(raw.limit, default));
    let offset = errors.check("offset", count(raw.offset, 0)).filter(|offset| {
        let deep = *offset > MAX_OFFSET;
        if deep {
            errors.add(
                "offset",
                format!("must be at most {MAX_OFFSET}: to go deeper, pass the nextCursor of the last page as cursor"),
            );
        }
        !deep
    });
    let cursor = raw.cursor.filter(|c| !c.is_empty()).and_then(|c| {
        let id = conduit_domain::cursor::decode(c);
        if id.is_none() {
            errors.add("cursor", "is not a cursor this server gave out: use nextCursor from a previous page");
        }
        id
    });
    conduit_store::Paging { limit: limit.unwrap_or_default().min(max), offset: offset.unwrap_or_default(), cursor }
}

/// The cursor of the page after one of `served` items whose last has id `last`: `None` when the
/// page was not full, so it was the last.
/// The query of a keyset page: `limit` and `cursor`.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct PageQuery {
    /// Page size, default 20, capped at 100.
    pub limit: Option<String>,
    /// Where to start: the nextCursor of the previous page.
    pub cursor: Option<String>,
}

/// A keyset page (no offset) of the default size and cap; problems go to `errors` (422).
pub fn page_of(
    limit: Option<&str>,
    cursor: Option<&str>,
    errors: &mut conduit_domain::Errors,
) -> conduit_store::Paging {
    paging(RawPage { limit, offset: None, cursor }, (DEFAULT_LIMIT, MAX_LIMIT), errors)
}

/// A query string as `T`, or 422 on `query` saying what is wrong with it.
pub fn query_of<T>(query: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> ApiResult<T> {
    query.map(|Query(q)| q).map_err(|e| ApiError::invalid("query", format!("is not valid: {}", e.body_text())))
}

pub fn next_cursor(page: conduit_store::Paging, served: usize, last: Option<i64>) -> Option<String> {
    let full = page.limit > 0 && i64::try_from(served).is_ok_and(|n| n == page.limit);
    last.filter(|_| full).map(conduit_domain::cursor::encode)
}

fn count(raw: Option<&str>, default: i64) -> Result<i64, String> {
    match raw {
        None => Ok(default),
        // i32's range: what the OpenAPI document promises (integer, int32, minimum 0).
        Some(s) => s
            .parse::<i32>()
            .ok()
            .filter(|n| *n >= 0)
            .map(i64::from)
            .ok_or_else(|| "must be a whole number from 0 to 2,147,483,647".to_owned()),
    }
}

/// Deserializes a field so that absent, `null` and a value can be told apart:
/// absent → `None`, `null` → `Some(None)`, value → `Some(Some(value))`.
/// Use with `#[serde(default, deserialize_with = "present")]`.
pub fn present<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The slug in an article's URL. One that no slug can be names no article: 404, as for a
/// well-formed slug nobody has.
pub fn article_slug(raw: &str) -> ApiResult<conduit_domain::Slug> {
    conduit_domain::Slug::parse(raw).map_err(|_| ApiError::NotFound("article"))
}

/// The username in a profile's URL; 404 when no user could have it.
pub fn profile_name(raw: &str) -> ApiResult<conduit_domain::Username> {
    conduit_domain::Username::parse(raw).map_err(|_| ApiError::NotFound("profile"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_accept_only_non_negative_integers() {
        assert_eq!(count(None, 20), Ok(20));
        assert_eq!(count(Some("0"), 20), Ok(0));
        assert_eq!(count(Some("7"), 20), Ok(7));
        for bad in ["-1", "abc", "", "1.5", "2147483648", "99999999999"] {
            assert!(count(Some(bad), 20).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_json_content_types_are_json() {
        for yes in ["application/json", "Application/JSON; charset=utf-8", "application/vnd.api+json"] {
            assert!(is_json(yes), "{yes}");
        }
        for no in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "", "json"] {
            assert!(!is_json(no), "{no}");
        }
    }

    #[test]
    fn present_tells_absent_from_null() {
        #[derive(Deserialize)]
        struct T {
            #[serde(default, deserialize_with = "present")]
            bio: Option<Option<String>>,
        }
        let parse = |s: &str| serde_json::from_str::<T>(s).unwrap().bio;
        assert_eq!(parse("{}"), None);
        assert_eq!(parse(r#"{"bio":null}"#), Some(None));
        assert_eq!(parse(r#"{"bio":"x"}"#), Some(Some("x".into())));
    }
}
