use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use conduit_domain::{Article, Errors, Slug, User, Username, validation as v};
use conduit_store::notifications::written_by;
use conduit_store::{ArticleChanges, ArticleQuery, ArticleRef, NewArticle, Page, Paging, with_unique_slug};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::extract::{MaybeUser, RequireUser};
use crate::error::ErrorBody;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, ListParams, article_slug, next_cursor, present};
use crate::limits::{Posting, held_for_review, posting_limits};
use crate::notify::About;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct ArticleBody {
    article: Article,
}

/// A page of articles (without bodies) and the number of all matches.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArticlesBody {
    articles: Vec<Article>,
    articles_count: i64,
    /// Where the next page starts: pass it back as `cursor`. Absent on a page that was not
    /// full (the last one).
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

impl ArticlesBody {
    fn new(found: Page<Article>, page: Paging) -> Self {
        let next_cursor = next_cursor(page, found.items.len(), found.items.last().map(|a| a.id.get()));
        ArticlesBody { articles: found.items, articles_count: found.total, next_cursor }
    }

    /// A page of search results: ranked, so the next page starts at a rank, not below an id.
    fn ranked(found: Page<Article>, page: Paging) -> Self {
        let served = found.items.len();
        let next = page.cursor.unwrap_or(0).saturating_add(page.offset).saturating_add(served as i64);
        let next_cursor = next_cursor(page, served, Some(next));
        ArticlesBody { articles: found.items, articles_count: found.total, next_cursor }
    }
}

fn found(article: Option<Article>) -> ApiResult<Json<ArticleBody>> {
    article.map(|article| Json(ArticleBody { article })).ok_or(ApiError::NotFound("article"))
}

/// Whether `viewer` may see an article: a hidden one only its author and moderators may.
pub fn may_see(article: &Article, viewer: Option<&User>) -> bool {
    !article.hidden || viewer.is_some_and(|v| v.moderates() || v.username == article.author.username)
}

/// [`may_see`] for an article known by its reference.
pub fn may_see_ref(article: &ArticleRef, viewer: Option<&User>) -> bool {
    !article.hidden || viewer.is_some_and(|v| v.moderates() || v.id == article.author)
}

/// The article behind `slug`, if `caller` wrote it: 404 when there is none, 403 when it is
/// someone else's.
pub async fn owned_by(state: &AppState, slug: &Slug, caller: &RequireUser) -> ApiResult<ArticleRef> {
    let article = state.store.article_ref(slug).await?.ok_or(ApiError::NotFound("article"))?;
    if article.author != caller.user.id {
        return Err(ApiError::Forbidden("article"));
    }
    Ok(article)
}

/// Recent articles, newest first, filtered by any of tag, author and favorited (combined with
/// AND); or, with `q`, the articles that match a search, best first. Auth is optional.
#[utoipa::path(get, path = "/articles", tag = "Articles", security((), ("Token" = [])),
    params(("q" = Option<String>, Query, max_length = 200, description = "Search: words (all must match), \"a phrase\", `or` between alternatives, -excluded. At most 200 characters and 12 words. Results are ranked: a match in the title, then in the description, then the words together as a phrase, then the rest; the newest first among equals. Only the newest 500 matches are ranked (with a filter: those that pass it among the newest 10,000), and `articlesCount` counts those. A phrase or an exclusion looks at the newest 100,000 articles only. Each result has a `snippet` of its body with the matched words in `<mark>` (HTML, the rest escaped). The cursor of a search is a rank."),
        ("tag" = Option<String>, Query, description = "Filter by tag"),
        ("author" = Option<String>, Query, description = "Filter by author username"),
        ("favorited" = Option<String>, Query, description = "Filter by a user who favorited"),
        ("limit" = Option<i32>, Query, minimum = 0, description = "Page size, default 20, capped at 100"),
        ("offset" = Option<i32>, Query, minimum = 0, maximum = 10000, description = "Articles to skip, default 0, at most 10,000 (then use cursor)"),
        ("cursor" = Option<String>, Query, description = "Where to start: the nextCursor of the previous page (keyset pagination; offset applies after it)")),
    responses((status = 200, body = ArticlesBody), (status = 401, body = ErrorBody), (status = 422, description = "A bad filter, page or `q` (too long, too many words, nothing to look for)", body = ErrorBody), (status = 503, description = "Too many searches at once: retry after the Retry-After seconds", body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: MaybeUser,
    params: ListParams,
) -> ApiResult<Json<ArticlesBody>> {
    // A name no user can have matches no article.
    let (Ok(author), Ok(favorited)) = (name_filter(params.author), name_filter(params.favorited)) else {
        return Ok(Json(ArticlesBody::new(Page { items: Vec::new(), total: 0 }, params.page)));
    };
    let ranked = params.search.is_some();
    // A search waits its turn (limits::searches_at_once); a listing never does.
    let _turn = match ranked {
        true => Some(
            tokio::time::timeout(crate::limits::SEARCH_WAIT, state.searches.acquire())
                .await
                .map_err(|_| ApiError::SearchBusy)?
                .map_err(|_| ApiError::SearchBusy)?,
        ),
        false => None,
    };
    // A reader who blocks anyone (and does not moderate) is served listings without the blocked.
    let skip_blocked = caller.0.as_ref().is_some_and(|c| c.user.blocking > 0 && !c.user.moderates());
    let query =
        ArticleQuery { tag: params.tag, author, favorited, search: params.search, page: params.page, skip_blocked };
    let found = state.store.list_articles(&query, caller.id()).await?;
    Ok(Json(if ranked { ArticlesBody::ranked(found, params.page) } else { ArticlesBody::new(found, params.page) }))
}

fn name_filter(raw: Option<String>) -> Result<Option<Username>, String> {
    raw.map(|name| Username::parse(&name)).transpose()
}

/// Articles by authors the caller follows, newest first.
#[utoipa::path(get, path = "/articles/feed", tag = "Articles", security(("Token" = [])),
    params(("limit" = Option<i32>, Query, minimum = 0, description = "Page size, default 20, capped at 100"),
        ("offset" = Option<i32>, Query, minimum = 0, maximum = 10000, description = "Articles to skip, default 0, at most 10,000 (then use cursor)"),
        ("cursor" = Option<String>, Query, description = "Where to start: the nextCursor of the previous page (keyset pagination; offset applies after it)")),
    responses((status = 200, body = ArticlesBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn feed(
    State(state): State<AppState>,
    caller: RequireUser,
    params: ListParams,
) -> ApiResult<Json<ArticlesBody>> {
    Ok(Json(ArticlesBody::new(state.store.feed(caller.user.id, params.page).await?, params.page)))
}

/// One article, with its body. Auth is optional.
#[utoipa::path(get, path = "/articles/{slug}", tag = "Articles", security((), ("Token" = [])), params(("slug" = String, Path, description = "Slug of the article")),
    responses((status = 200, body = ArticleBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    caller: MaybeUser,
    Path(slug): Path<String>,
) -> ApiResult<Json<ArticleBody>> {
    let article = state.store.article(&article_slug(&slug)?, caller.id()).await?;
    found(article.filter(|a| may_see(a, caller.0.as_ref().map(|c| &c.user))))
}

#[derive(Deserialize, ToSchema)]
pub struct NewArticleRequest {
    article: ArticleInput,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = NewArticle)]
#[serde(rename_all = "camelCase")]
pub struct ArticleInput {
    #[schema(required, value_type = String, min_length = 1, max_length = 256, pattern = r"\S")]
    title: Option<String>,
    #[schema(required, value_type = String, min_length = 1, max_length = 1024, pattern = r"\S")]
    description: Option<String>,
    #[schema(required, value_type = String, min_length = 1, pattern = r"\S")]
    body: Option<String>,
    /// Up to 32 tags of up to 64 characters; trimmed, duplicates dropped, order kept.
    #[schema(value_type = Vec<String>, max_items = 32)]
    tag_list: Option<Vec<String>>,
}

/// Publish an article. Its slug comes from the title, with a suffix when taken. A new
/// account's article with many links (`CONDUIT_NEW_ACCOUNT_HOLD_LINKS`) is held for review: it
/// is created with `hidden: true`, seen only by its author and moderators until one lets it out.
#[utoipa::path(post, path = "/articles", tag = "Articles", security(("Token" = [])), request_body = NewArticleRequest,
    responses((status = 201, body = ArticleBody), (status = 401, body = ErrorBody),
        (status = 429, description = "The account published its articles for this hour (CONDUIT_ARTICLES_PER_HOUR)", body = ErrorBody)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: RequireUser,
    ApiJson(NewArticleRequest { article: input }): ApiJson<NewArticleRequest>,
) -> ApiResult<(StatusCode, Json<ArticleBody>)> {
    let mut errors = Errors::new();
    let title = errors.check("title", v::text(input.title.as_deref().unwrap_or_default(), v::TITLE_MAX));
    let description =
        errors.check("description", v::text(input.description.as_deref().unwrap_or_default(), v::DESCRIPTION_MAX));
    let body = errors.check("body", v::text(input.body.as_deref().unwrap_or_default(), v::BODY_MAX));
    let tags = errors.check("tagList", v::tags(input.tag_list.as_deref().unwrap_or_default()));
    let (Some(title), Some(description), Some(body), Some(tags)) = (title, description, body, tags) else {
        return Err(errors.into());
    };
    let limits = posting_limits(&state.limits, Posting::Article, &caller.user, state.clock.now());
    state.limiter.reserve(&limits).await?.keep();
    let held = held_for_review(&state.limits, &caller.user, state.clock.now(), &[&title, &description, &body]);
    let new = NewArticle { title, description, body, tags };
    let (store, new, author, held) = (&state.store, &new, caller.user.id, held.as_deref());
    let (article, written) =
        written_by(with_unique_slug(
            &new.title,
            |slug| async move { store.create_article(author, &slug, new, held).await },
        ))
        .await;
    let article = article?;
    let about =
        About { actor: &caller.user, article: Some((article.slug.as_str(), article.title.as_str())), comment: None };
    state.notifier.committed(written, about);
    Ok((StatusCode::CREATED, Json(ArticleBody { article })))
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateArticleRequest {
    article: ArticleUpdate,
}

/// Every field optional; `null` is refused (these fields have no "empty" state). A new title
/// gives a new slug.
#[derive(Deserialize, ToSchema)]
#[schema(as = UpdateArticle)]
#[serde(rename_all = "camelCase")]
pub struct ArticleUpdate {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, min_length = 1, max_length = 256, pattern = r"\S")]
    title: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, min_length = 1, max_length = 1024, pattern = r"\S")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, min_length = 1, pattern = r"\S")]
    body: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Vec<String>, max_items = 32)]
    tag_list: Option<Option<Vec<String>>>,
}

fn not_null<T>(field: &Option<Option<T>>) -> Result<(), String> {
    match field {
        Some(None) => Err("can't be null".into()),
        _ => Ok(()),
    }
}

/// Change one of your articles. Omitted fields and an omitted tagList are kept.
#[utoipa::path(put, path = "/articles/{slug}", tag = "Articles", security(("Token" = [])), request_body = UpdateArticleRequest, params(("slug" = String, Path, description = "Slug of the article")),
    responses((status = 200, body = ArticleBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn update(
    State(state): State<AppState>,
    caller: RequireUser,
    Path(slug): Path<String>,
    ApiJson(UpdateArticleRequest { article: input }): ApiJson<UpdateArticleRequest>,
) -> ApiResult<Json<ArticleBody>> {
    let slug = article_slug(&slug)?;
    let article = owned_by(&state, &slug, &caller).await?;
    let mut errors = Errors::new();
    for (field, result) in [
        ("title", not_null(&input.title)),
        ("description", not_null(&input.description)),
        ("body", not_null(&input.body)),
        ("tagList", not_null(&input.tag_list)),
    ] {
        errors.check(field, result);
    }
    let title = input.title.flatten().and_then(|t| errors.check("title", v::text(&t, v::TITLE_MAX)));
    let description =
        input.description.flatten().and_then(|d| errors.check("description", v::text(&d, v::DESCRIPTION_MAX)));
    let body = input.body.flatten().and_then(|b| errors.check("body", v::text(&b, v::BODY_MAX)));
    let tags = input.tag_list.flatten().and_then(|t| errors.check("tagList", v::tags(&t)));
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let changes = ArticleChanges { title, description, body, tags };
    let store = &state.store;
    let updated =
        match &changes.title {
            // A new title gets a new slug, unless the current one already fits it.
            Some(title) if !conduit_domain::slug::fits(&slug, title) => with_unique_slug(title, |new_slug| {
                let (changes, current) = (&changes, &slug);
                async move { store.update_article(article.id, caller.user.id, current, Some(&new_slug), changes).await }
            })
            .await?,
            _ => store.update_article(article.id, caller.user.id, &slug, None, &changes).await?,
        };
    found(updated)
}

/// Delete one of your articles, with its comments and favorites.
#[utoipa::path(delete, path = "/articles/{slug}", tag = "Articles", security(("Token" = [])), params(("slug" = String, Path, description = "Slug of the article")),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: RequireUser,
    Path(slug): Path<String>,
) -> ApiResult<StatusCode> {
    let article = owned_by(&state, &article_slug(&slug)?, &caller).await?;
    if state.store.delete_article(article.id, caller.user.id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("article"))
    }
}

/// Favorite an article (idempotent).
#[utoipa::path(post, path = "/articles/{slug}/favorite", tag = "Favorites", security(("Token" = [])), params(("slug" = String, Path, description = "Slug of the article")),
    responses((status = 200, body = ArticleBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn favorite(
    State(state): State<AppState>,
    caller: RequireUser,
    Path(slug): Path<String>,
) -> ApiResult<Json<ArticleBody>> {
    let slug = article_slug(&slug)?;
    let (article, written) = written_by(state.store.favorite(caller.user.id, &slug)).await;
    let article = article?;
    if let Some(a) = &article {
        state.notifier.committed(
            written,
            About { actor: &caller.user, article: Some((a.slug.as_str(), a.title.as_str())), comment: None },
        );
    }
    found(article.filter(|a| may_see(a, Some(&caller.user))))
}

/// Unfavorite an article (idempotent).
#[utoipa::path(delete, path = "/articles/{slug}/favorite", tag = "Favorites", security(("Token" = [])), params(("slug" = String, Path, description = "Slug of the article")),
    responses((status = 200, body = ArticleBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn unfavorite(
    State(state): State<AppState>,
    caller: RequireUser,
    Path(slug): Path<String>,
) -> ApiResult<Json<ArticleBody>> {
    found(state.store.unfavorite(caller.user.id, &article_slug(&slug)?).await?)
}
