//! One article at a time, favorites and tags. Shared by both backends (see README.md); only the
//! insertion of a tag list differs (`dialect::insert_tags`). Listings of many articles, with
//! their filters, and the feed are in `listings.rs`.

use chrono::{DateTime, Utc};
use conduit_domain::Article;
use conduit_domain::model::{ArticleId, UserId};
use conduit_store::moderation::{Target, TargetKind};
use conduit_store::rows::ArticleRow;
use conduit_store::*;
use sqlx::types::Json;

use crate::{Connection, Pool, dialect};

pub async fn by_slug(db: &Pool, slug: &str, viewer: Option<UserId>) -> Result<Option<Article>, DbError> {
    let viewer = viewer.map(UserId::get);
    let row = sqlx::query_as!(
        ArticleRow,
        r#"SELECT a.id AS "id!", a.slug, a.title, a.description, a.body AS "body?", a.body_html,
                  a.tag_list AS "tag_list!: Json<Vec<String>>",
                  a.created_at AS "created_at!: DateTime<Utc>", a.updated_at AS "updated_at!: DateTime<Utc>",
                  EXISTS(SELECT 1 FROM favorites f WHERE f.article_id = a.id AND f.user_id = $2) AS "favorited!: bool",
                  (SELECT CAST(COALESCE(sum(fc.n), 0) AS BIGINT) FROM favorite_counts fc WHERE fc.article_id = a.id)
                      AS "favorites_count!: i64",
                  u.username, u.bio, u.image,
                  EXISTS(SELECT 1 FROM follows fo WHERE fo.follower_id = $2 AND fo.followee_id = a.author_id)
                      AS "following!: bool",
                  EXISTS(SELECT 1 FROM hidden_articles h WHERE h.article_id = a.id) AS "hidden!: bool"
           FROM articles a JOIN users u ON u.id = a.author_id
           WHERE a.slug = $1"#,
        slug,
        viewer
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(Article::from))
}

pub async fn reference(db: &Pool, slug: &str) -> Result<Option<ArticleRef>, DbError> {
    Ok(sqlx::query_as!(
        ArticleRef,
        r#"SELECT id AS "id!", author_id AS "author!",
                  EXISTS(SELECT 1 FROM hidden_articles h WHERE h.article_id = articles.id) AS "hidden!: bool",
                  title AS "title!"
           FROM articles WHERE slug = $1"#,
        slug
    )
    .fetch_optional(db)
    .await?)
}

/// Inserts the article and its tags in one transaction; `held` (why) holds it for review in
/// the same one (`moderation::hold`).
pub async fn create(
    db: &Pool,
    author: UserId,
    slug: &str,
    new: &NewArticle,
    held: Option<&str>,
) -> Result<ArticleId, DbError> {
    let now = Utc::now();
    let mut tx = db.begin().await?;
    let id = insert(&mut tx, author, slug, new, now).await?;
    let written = match held {
        // A held article tells nobody: it is not there for them yet.
        Some(why) => {
            crate::moderation::hold(&mut tx, Target { kind: TargetKind::Article, id: id.get() }, why, now).await?;
            Vec::new()
        }
        None => crate::notifications::published(&mut tx, author.get(), id.get(), now).await?,
    };
    tx.commit().await?;
    conduit_store::notifications::committed(written);
    Ok(id)
}

/// Inserts an article written `at`, with its tags, in the caller's transaction.
pub async fn insert(
    tx: &mut Connection,
    author: UserId,
    slug: &str,
    new: &NewArticle,
    at: DateTime<Utc>,
) -> Result<ArticleId, DbError> {
    let author = author.get();
    let html = conduit_domain::markdown::to_safe_html(&new.body);
    let title_key = conduit_domain::search::title_key(&new.title);
    // The tags' JSON as the column keeps it (`dialect::insert_tags` adds their rows).
    let tag_list = Json(&new.tags);
    let id = sqlx::query_scalar!(
        r#"INSERT INTO articles (slug, author_id, title, title_key, description, body, body_html, tag_list, created_at, updated_at)
           VALUES ($1, $2, $3, $9, $4, $5, $7, $8, $6, $6)
           RETURNING id AS "id!""#,
        slug,
        author,
        new.title,
        new.description,
        new.body,
        at,
        html,
        tag_list as _,
        title_key
    )
    .fetch_one(&mut *tx)
    .await?;
    let id = ArticleId::new(id);
    dialect::insert_tags(tx, id, &new.tags).await?;
    Ok(id)
}

/// Changes an article of `author` in one transaction; yields its (possibly new) slug, or
/// `None` when the author has no such article.
pub async fn update(
    db: &Pool,
    id: ArticleId,
    author: UserId,
    expected_slug: &str,
    slug: Option<&str>,
    changes: &ArticleChanges,
) -> Result<Option<String>, DbError> {
    let (id, author) = (id.get(), author.get());
    let now = Utc::now();
    let html = changes.body.as_deref().map(conduit_domain::markdown::to_safe_html);
    let title_key = changes.title.as_deref().map(conduit_domain::search::title_key);
    let tag_list = changes.tags.as_ref().map(Json);
    let mut tx = db.begin().await?;
    let slug = sqlx::query_scalar!(
        r#"UPDATE articles SET
               slug = COALESCE($3, slug),
               title = COALESCE($4, title),
               title_key = COALESCE($11, title_key),
               description = COALESCE($5, description),
               body = COALESCE($6, body),
               body_html = COALESCE($9, body_html),
               tag_list = COALESCE($10, tag_list),
               updated_at = $7
           WHERE id = $1 AND author_id = $2 AND slug = $8
           RETURNING slug"#,
        id,
        author,
        slug,
        changes.title,
        changes.description,
        changes.body,
        now,
        expected_slug,
        html,
        tag_list as _,
        title_key
    )
    .fetch_optional(&mut *tx)
    .await?;
    if slug.is_none() {
        return Ok(None);
    }
    if let Some(tags) = &changes.tags {
        sqlx::query!("DELETE FROM article_tags WHERE article_id = $1", id).execute(&mut *tx).await?;
        dialect::insert_tags(&mut tx, ArticleId::new(id), tags).await?;
    }
    tx.commit().await?;
    Ok(slug)
}

/// One statement: the foreign keys' `ON DELETE CASCADE` removes tags, favorites and comments
/// in the same implicit transaction.
pub async fn delete(db: &Pool, id: ArticleId, author: UserId) -> Result<bool, DbError> {
    let (id, author) = (id.get(), author.get());
    let mut tx = db.begin().await?;
    // A hidden article is shown again first, so the delete counts down what it counts (see the
    // `hidden_articles` migration).
    sqlx::query!(
        "DELETE FROM hidden_articles WHERE article_id = (SELECT id FROM articles WHERE id = $1 AND author_id = $2)",
        id,
        author
    )
    .execute(&mut *tx)
    .await?;
    let done =
        sqlx::query!("DELETE FROM articles WHERE id = $1 AND author_id = $2", id, author).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(done.rows_affected() > 0)
}

/// `user` favorites the article (idempotent); a new favorite tells its author.
pub async fn favorite(db: &Pool, user: UserId, slug: &str) -> Result<(), DbError> {
    let (user, now) = (user.get(), Utc::now());
    let mut tx = db.begin().await?;
    let favorited = sqlx::query_scalar!(
        r#"INSERT INTO favorites (user_id, article_id)
           SELECT $1, id FROM articles WHERE slug = $2
           ON CONFLICT DO NOTHING
           RETURNING article_id AS "article!""#,
        user,
        slug
    )
    .fetch_optional(&mut *tx)
    .await?;
    let written = match favorited {
        Some(article) => crate::notifications::favorite(&mut tx, user, article, now).await?,
        None => Vec::new(),
    };
    tx.commit().await?;
    conduit_store::notifications::committed(written);
    Ok(())
}

pub async fn unfavorite(db: &Pool, user: UserId, slug: &str) -> Result<(), DbError> {
    let user = user.get();
    sqlx::query!(
        "DELETE FROM favorites WHERE user_id = $1 AND article_id = (SELECT id FROM articles WHERE slug = $2)",
        user,
        slug
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn tags(db: &Pool) -> Result<Vec<String>, DbError> {
    let most = MAX_TAGS as i64;
    Ok(sqlx::query_scalar!(
        r#"SELECT key AS "name!" FROM counts WHERE kind = 'tag'
           GROUP BY key HAVING sum(n) > 0 ORDER BY sum(n) DESC, key LIMIT $1"#,
        most
    )
    .fetch_all(db)
    .await?)
}

pub async fn tags_version(db: &Pool) -> Result<i64, DbError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT CAST(COALESCE(sum(n), 0) AS BIGINT) AS "version!: i64" FROM counts WHERE kind = 'tags_changed'"#
    )
    .fetch_one(db)
    .await?)
}

/// How many rows [`render_missing_html`] renders per transaction.
const RENDER_BATCH: i64 = 500;

/// What an older database lacks after migrating and the migrations cannot write (they run no
/// Rust), and serving needs: the HTML of bodies ([`render_missing_html`]). Run before serving;
/// once done, two empty index probes. (The title keys are written while serving:
/// [`fill_missing_title_keys`].)
pub async fn complete_after_migrating(db: &Pool) -> Result<(), DbError> {
    let rendered = render_missing_html(db).await?;
    if rendered > 0 {
        tracing::info!(rendered, "rendered the HTML of bodies written before it was kept");
    }
    Ok(())
}

/// Writes `title_key` for the articles that have none (written before the column existed, or
/// restored from a backup that did not carry it), in transactions of a few hundred. Run by the
/// server beside serving (`ops::search_index`): at a million articles it takes 90 s on SQLite
/// and some 5 minutes on PostgreSQL, which writes each row again, and meanwhile only an exact
/// title's lookup misses the articles not yet keyed. Yields how many it wrote.
pub async fn fill_missing_title_keys(db: &Pool) -> Result<u64, DbError> {
    let mut keyed = 0;
    loop {
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, title FROM articles WHERE title_key IS NULL ORDER BY id LIMIT $1")
                .bind(RENDER_BATCH)
                .fetch_all(db)
                .await?;
        let mut tx = db.begin().await?;
        for (id, title) in &rows {
            sqlx::query("UPDATE articles SET title_key = $2 WHERE id = $1")
                .bind(id)
                .bind(conduit_domain::search::title_key(title))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        keyed += rows.len() as u64;
        if rows.len() < RENDER_BATCH as usize {
            return Ok(keyed);
        }
        // Once, after an upgrade: the operator sees it move.
        if keyed == RENDER_BATCH as u64 || keyed % 100_000 == 0 {
            tracing::info!(keyed, "writing the title keys of articles written before they were kept (once)");
        }
    }
}

/// Renders `body_html` for the articles and comments that have none: those written before the
/// column existed (the migration cannot run Markdown). Run after migrating, before serving; each
/// batch is found through a partial index of the unrendered rows, so once all are done this
/// costs two empty index probes. Yields how many rows it rendered.
async fn render_missing_html(db: &Pool) -> Result<u64, DbError> {
    let mut rendered = 0;
    // Two tables alike: the statements are built from these constant names.
    for table in ["articles", "comments"] {
        let unrendered = format!("SELECT id, body FROM {table} WHERE body_html IS NULL ORDER BY id LIMIT $1");
        let render = format!("UPDATE {table} SET body_html = $2 WHERE id = $1");
        loop {
            let rows: Vec<(i64, String)> = sqlx::query_as(&unrendered).bind(RENDER_BATCH).fetch_all(db).await?;
            let mut tx = db.begin().await?;
            for (id, body) in &rows {
                let html = conduit_domain::markdown::to_safe_html(body);
                sqlx::query(&render).bind(id).bind(html).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            rendered += rows.len() as u64;
            if rows.len() < RENDER_BATCH as usize {
                break;
            }
        }
    }
    Ok(rendered)
}
