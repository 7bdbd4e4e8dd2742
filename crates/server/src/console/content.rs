//! `/admin/articles`: find articles (the API's search, or the newest), open one with its
//! comments, and hide, let out or delete either through the moderation form.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use conduit_domain::search::SearchQuery;
use conduit_store::moderation::{LogQuery, Target, TargetKind};
use conduit_store::{ArticleQuery, Paging};
use serde::Deserialize;

use crate::console::Refusal;
use crate::console::moderation::LogRow;
use crate::console::session::Staff;
use crate::console::view::{Nav, PAGE, next_page, render, segment, some, when};
use crate::error::ApiError;
use crate::http::extract::article_slug;
use crate::state::AppState;

pub struct ArticleRow {
    pub slug: String,
    pub title: String,
    pub author: String,
    pub published: String,
    pub hidden: bool,
}

#[derive(Deserialize, Default)]
pub struct ArticlesQuery {
    #[serde(default)]
    q: String,
    /// The last id of the previous page (newest first), when not searching.
    before: Option<i64>,
}

#[derive(Template)]
#[template(path = "console/articles.html")]
struct ArticlesPage {
    nav: Nav,
    q: String,
    articles: Vec<ArticleRow>,
    next: Option<String>,
}

/// Newest first by keyset pages, or the search's best 50 (its own bound: the newest matches,
/// ranked). Hidden articles are left out of both, as from every listing; a moderator finds one
/// from its report or its author's page.
pub(super) async fn articles(
    State(state): State<AppState>,
    staff: Staff,
    Query(query): Query<ArticlesQuery>,
) -> Result<Response, Refusal> {
    let search = match some(&query.q) {
        Some(q) => Some(SearchQuery::parse(&q).map_err(|e| ApiError::invalid("q", e))?),
        None => None,
    };
    let searching = search.is_some();
    let page = Paging { limit: PAGE, offset: 0, cursor: if searching { None } else { query.before } };
    let listing = ArticleQuery { search, page, ..ArticleQuery::default() };
    let found = state.store.list_articles(&listing, None).await?.items;
    let last = found.last().map(|a| a.id.get());
    let articles: Vec<ArticleRow> = found
        .into_iter()
        .map(|a| ArticleRow {
            slug: a.slug,
            title: a.title,
            author: a.author.username,
            published: when(a.created_at),
            hidden: a.hidden,
        })
        .collect();
    let next = if searching {
        None
    } else {
        next_page(articles.len(), || last.map(|id| format!("/admin/articles?before={id}")))
    };
    render(&ArticlesPage { nav: Nav::of(&staff, "articles"), q: query.q, articles, next })
}

pub struct CommentRow {
    pub id: i64,
    pub author: String,
    pub at: String,
    pub body: String,
    pub hidden: bool,
}

#[derive(Template)]
#[template(path = "console/article.html")]
struct ArticlePage {
    nav: Nav,
    slug: String,
    back: String,
    title: String,
    author: String,
    published: String,
    hidden: bool,
    description: String,
    body: String,
    comments: Vec<CommentRow>,
    history: Vec<LogRow>,
}

/// One article, as Markdown text (never rendered here), with its first 100 comments, hidden
/// ones included and marked, and what moderators did to it (the log's newest entries).
pub(super) async fn article(
    State(state): State<AppState>,
    staff: Staff,
    Path(slug): Path<String>,
) -> Result<Response, Refusal> {
    let slug = article_slug(&slug)?;
    let article = state.store.article(&slug, Some(staff.user.id)).await?.ok_or(ApiError::NotFound("article"))?;
    let comments = state
        .store
        .comments(article.id, Some(staff.user.id), Paging { limit: 100, ..Paging::default() })
        .await?
        .into_iter()
        .map(|c| CommentRow {
            id: c.id.get(),
            author: c.author.username,
            at: when(c.created_at),
            body: c.body,
            hidden: c.hidden,
        })
        .collect();
    let target = Target { kind: TargetKind::Article, id: article.id.get() };
    let history = LogQuery { target: Some(target), limit: PAGE, ..LogQuery::default() };
    let history = state.store.moderation_log(&history).await?.into_iter().map(Into::into).collect();
    render(&ArticlePage {
        nav: Nav::of(&staff, "articles"),
        back: format!("/admin/articles/{}", segment(&article.slug)),
        slug: article.slug,
        title: article.title,
        author: article.author.username,
        published: when(article.created_at),
        hidden: article.hidden,
        description: article.description,
        body: article.body.unwrap_or_default(),
        comments,
        history,
    })
}
