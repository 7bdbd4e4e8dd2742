use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use conduit_domain::{Article, Errors, validation as v};
use conduit_store::{ArticleChanges, ArticleQuery, ArticleRef, NewArticle, Page, with_unique_slug};
use serde::{Deserialize, Serialize};

use crate::auth::{MaybeUser, RequireUser};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ListParams, present};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/articles", get(list).post(create))
        .route("/articles/feed", get(feed))
        .route("/articles/{slug}", get(show).put(update).delete(delete))
        .route("/articles/{slug}/favorite", post(favorite).delete(unfavorite))
}

#[derive(Deserialize)]
struct ArticleEnvelope<T> {
    article: T,
}

#[derive(Serialize)]
struct ArticleBody {
    article: Article,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ArticlesBody {
    articles: Vec<Article>,
    articles_count: i64,
}

impl From<Page<Article>> for ArticlesBody {
    fn from(page: Page<Article>) -> Self {
        ArticlesBody { articles: page.items, articles_count: page.total }
    }
}

fn found(article: Option<Article>) -> ApiResult<Json<ArticleBody>> {
    article.map(|article| Json(ArticleBody { article })).ok_or(ApiError::NotFound("article"))
}

/// The article behind `slug`, if `caller` wrote it: 404 when there is none, 403 when it is
/// someone else's.
pub async fn owned_by(state: &AppState, slug: &str, caller: &RequireUser) -> ApiResult<ArticleRef> {
    let article = state.store.article_ref(slug).await?.ok_or(ApiError::NotFound("article"))?;
    if article.author != caller.user.id {
        return Err(ApiError::Forbidden("article"));
    }
    Ok(article)
}

async fn list(State(state): State<AppState>, caller: MaybeUser, params: ListParams) -> ApiResult<Json<ArticlesBody>> {
    let query = ArticleQuery { tag: params.tag, author: params.author, favorited: params.favorited, page: params.page };
    Ok(Json(state.store.list_articles(&query, caller.id()).await?.into()))
}

async fn feed(State(state): State<AppState>, caller: RequireUser, params: ListParams) -> ApiResult<Json<ArticlesBody>> {
    Ok(Json(state.store.feed(caller.user.id, params.page).await?.into()))
}

async fn show(
    State(state): State<AppState>,
    caller: MaybeUser,
    Path(slug): Path<String>,
) -> ApiResult<Json<ArticleBody>> {
    found(state.store.article(&slug, caller.id()).await?)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArticleInput {
    title: Option<String>,
    description: Option<String>,
    body: Option<String>,
    tag_list: Option<Vec<String>>,
}

async fn create(
    State(state): State<AppState>,
    caller: RequireUser,
    ApiJson(ArticleEnvelope { article: input }): ApiJson<ArticleEnvelope<ArticleInput>>,
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
    let new = NewArticle { title, description, body, tags };
    let (store, new, author) = (&state.store, &new, caller.user.id);
    let article =
        with_unique_slug(&new.title, |slug| async move { store.create_article(author, &slug, new).await }).await?;
    Ok((StatusCode::CREATED, Json(ArticleBody { article })))
}

/// Every field optional; `null` is refused (these fields have no "empty" state).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArticleUpdate {
    #[serde(default, deserialize_with = "present")]
    title: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    body: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    tag_list: Option<Option<Vec<String>>>,
}

fn not_null<T>(field: &Option<Option<T>>) -> Result<(), String> {
    match field {
        Some(None) => Err("can't be null".into()),
        _ => Ok(()),
    }
}

async fn update(
    State(state): State<AppState>,
    caller: RequireUser,
    Path(slug): Path<String>,
    ApiJson(ArticleEnvelope { article: input }): ApiJson<ArticleEnvelope<ArticleUpdate>>,
) -> ApiResult<Json<ArticleBody>> {
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
    let updated = match &changes.title {
        // A new title gets a new slug, unless the current one already fits it.
        Some(title) if !conduit_domain::slug::fits(&slug, title) => {
            with_unique_slug(title, |new_slug| {
                let changes = &changes;
                async move { store.update_article(article.id, caller.user.id, Some(&new_slug), changes).await }
            })
            .await?
        }
        _ => store.update_article(article.id, caller.user.id, None, &changes).await?,
    };
    found(updated)
}

async fn delete(State(state): State<AppState>, caller: RequireUser, Path(slug): Path<String>) -> ApiResult<StatusCode> {
    let article = owned_by(&state, &slug, &caller).await?;
    if state.store.delete_article(article.id, caller.user.id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("article"))
    }
}

async fn favorite(
    State(state): State<AppState>,
    caller: RequireUser,
    Path(slug): Path<String>,
) -> ApiResult<Json<ArticleBody>> {
    found(state.store.favorite(caller.user.id, &slug).await?)
}

async fn unfavorite(
    State(state): State<AppState>,
    caller: RequireUser,
    Path(slug): Path<String>,
) -> ApiResult<Json<ArticleBody>> {
    found(state.store.unfavorite(caller.user.id, &slug).await?)
}
