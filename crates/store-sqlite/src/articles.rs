use chrono::{DateTime, Utc};
use conduit_domain::Article;
use conduit_domain::model::{ArticleId, UserId};
use conduit_store::rows::ArticleRow;
use conduit_store::*;
use sqlx::SqlitePool;
use sqlx::types::Json;

pub async fn by_slug(db: &SqlitePool, slug: &str, viewer: Option<UserId>) -> Result<Option<Article>, DbError> {
    let row = sqlx::query_as!(
        ArticleRow,
        r#"SELECT a.id AS "id!", a.slug, a.title, a.description, a.body AS "body?",
                  a.tag_list AS "tag_list!: Json<Vec<String>>",
                  a.created_at AS "created_at!: DateTime<Utc>", a.updated_at AS "updated_at!: DateTime<Utc>",
                  EXISTS(SELECT 1 FROM favorites f WHERE f.article_id = a.id AND f.user_id = ?2)
                      AS "favorited!: bool",
                  a.favorites_count AS "favorites_count!: i64",
                  u.username, u.bio, u.image,
                  EXISTS(SELECT 1 FROM follows fo WHERE fo.follower_id = ?2 AND fo.followee_id = a.author_id)
                      AS "following!: bool"
           FROM articles a JOIN users u ON u.id = a.author_id
           WHERE a.slug = ?1"#,
        slug,
        viewer
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(Article::from))
}

/// The articles whose ids are in `ids` (a JSON array), newest first, without bodies.
async fn by_ids(db: &SqlitePool, ids: &str, viewer: Option<UserId>) -> Result<Vec<Article>, DbError> {
    if ids == "[]" {
        return Ok(Vec::new());
    }
    let rows = sqlx::query_as!(
        ArticleRow,
        r#"SELECT a.id AS "id!", a.slug, a.title, a.description, NULL AS "body?: String",
                  a.tag_list AS "tag_list!: Json<Vec<String>>",
                  a.created_at AS "created_at!: DateTime<Utc>", a.updated_at AS "updated_at!: DateTime<Utc>",
                  EXISTS(SELECT 1 FROM favorites f WHERE f.article_id = a.id AND f.user_id = ?2)
                      AS "favorited!: bool",
                  a.favorites_count AS "favorites_count!: i64",
                  u.username, u.bio, u.image,
                  EXISTS(SELECT 1 FROM follows fo WHERE fo.follower_id = ?2 AND fo.followee_id = a.author_id)
                      AS "following!: bool"
           FROM articles a JOIN users u ON u.id = a.author_id
           WHERE a.id IN (SELECT value FROM json_each(?1))
           ORDER BY a.id DESC"#,
        ids,
        viewer
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Article::from).collect())
}

/// One page of a listing: how many articles match in all, and the page's ids as a JSON array.
/// Both come from one statement, so a listing costs two round trips to the database, not three.
struct PageIds {
    total: i64,
    ids: String,
}

pub async fn list(db: &SqlitePool, query: &ArticleQuery, viewer: Option<UserId>) -> Result<Page<Article>, DbError> {
    let Paging { limit, offset } = query.page;
    let page = match query.shape() {
        FilterShape::All => {
            sqlx::query_as!(
                PageIds,
                r#"SELECT (SELECT count(*) FROM articles) AS "total!: i64",
                          (SELECT json_group_array(id) FROM
                              (SELECT id FROM articles ORDER BY id DESC LIMIT ?1 OFFSET ?2)) AS "ids!: String""#,
                limit,
                offset
            )
            .fetch_one(db)
            .await?
        }
        FilterShape::Tag(tag) => {
            sqlx::query_as!(
                PageIds,
                r#"SELECT (SELECT count(*) FROM article_tags WHERE name = ?1) AS "total!: i64",
                          (SELECT json_group_array(article_id) FROM
                              (SELECT article_id FROM article_tags WHERE name = ?1
                               ORDER BY article_id DESC LIMIT ?2 OFFSET ?3)) AS "ids!: String""#,
                tag,
                limit,
                offset
            )
            .fetch_one(db)
            .await?
        }
        FilterShape::Author(author) => {
            sqlx::query_as!(
                PageIds,
                r#"SELECT (SELECT count(*) FROM articles a JOIN users u ON u.id = a.author_id
                           WHERE u.username = ?1) AS "total!: i64",
                          (SELECT json_group_array(id) FROM
                              (SELECT a.id FROM articles a JOIN users u ON u.id = a.author_id
                               WHERE u.username = ?1 ORDER BY a.id DESC LIMIT ?2 OFFSET ?3)) AS "ids!: String""#,
                author,
                limit,
                offset
            )
            .fetch_one(db)
            .await?
        }
        FilterShape::FavoritedBy(user) => {
            sqlx::query_as!(
                PageIds,
                r#"SELECT (SELECT count(*) FROM favorites f JOIN users u ON u.id = f.user_id
                           WHERE u.username = ?1) AS "total!: i64",
                          (SELECT json_group_array(article_id) FROM
                              (SELECT f.article_id FROM favorites f JOIN users u ON u.id = f.user_id
                               WHERE u.username = ?1 ORDER BY f.article_id DESC LIMIT ?2 OFFSET ?3))
                              AS "ids!: String""#,
                user,
                limit,
                offset
            )
            .fetch_one(db)
            .await?
        }
        FilterShape::Combined => {
            let ids: Vec<i64> =
                combined_filter_query::<sqlx::Sqlite>(query, false).build_query_scalar().fetch_all(db).await?;
            let total = combined_filter_query::<sqlx::Sqlite>(query, true).build_query_scalar().fetch_one(db).await?;
            let ids = format!("[{}]", ids.iter().map(i64::to_string).collect::<Vec<_>>().join(","));
            PageIds { total, ids }
        }
    };
    Ok(Page { items: by_ids(db, &page.ids, viewer).await?, total: page.total })
}

pub async fn feed(db: &SqlitePool, viewer: UserId, page: Paging) -> Result<Page<Article>, DbError> {
    let page = sqlx::query_as!(
        PageIds,
        r#"SELECT (SELECT count(*) FROM follows f JOIN articles a ON a.author_id = f.followee_id
                   WHERE f.follower_id = ?1) AS "total!: i64",
                  (SELECT json_group_array(id) FROM
                      (SELECT a.id FROM follows f JOIN articles a ON a.author_id = f.followee_id
                       WHERE f.follower_id = ?1 ORDER BY a.id DESC LIMIT ?2 OFFSET ?3)) AS "ids!: String""#,
        viewer,
        page.limit,
        page.offset
    )
    .fetch_one(db)
    .await?;
    Ok(Page { items: by_ids(db, &page.ids, Some(viewer)).await?, total: page.total })
}

pub async fn reference(db: &SqlitePool, slug: &str) -> Result<Option<ArticleRef>, DbError> {
    Ok(sqlx::query_as!(ArticleRef, r#"SELECT id AS "id!", author_id AS "author!" FROM articles WHERE slug = ?1"#, slug)
        .fetch_optional(db)
        .await?)
}

/// Inserts the article and its tags in one transaction.
pub async fn create(db: &SqlitePool, author: UserId, slug: &str, new: &NewArticle) -> Result<ArticleId, DbError> {
    let now = Utc::now();
    let mut tx = db.begin().await?;
    let id = sqlx::query_scalar!(
        r#"INSERT INTO articles (slug, author_id, title, description, body, created_at, updated_at)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
           RETURNING id AS "id!""#,
        slug,
        author,
        new.title,
        new.description,
        new.body,
        now
    )
    .fetch_one(&mut *tx)
    .await?;
    insert_tags(&mut tx, id, &new.tags).await?;
    tx.commit().await?;
    Ok(id)
}

/// Changes an article of `author` in one transaction; yields its (possibly new) slug, or
/// `None` when the author has no such article.
pub async fn update(
    db: &SqlitePool,
    id: ArticleId,
    author: UserId,
    expected_slug: &str,
    slug: Option<&str>,
    changes: &ArticleChanges,
) -> Result<Option<String>, DbError> {
    let now = Utc::now();
    let mut tx = db.begin().await?;
    let slug = sqlx::query_scalar!(
        r#"UPDATE articles SET
               slug = COALESCE(?3, slug),
               title = COALESCE(?4, title),
               description = COALESCE(?5, description),
               body = COALESCE(?6, body),
               updated_at = ?7
           WHERE id = ?1 AND author_id = ?2 AND slug = ?8
           RETURNING slug"#,
        id,
        author,
        slug,
        changes.title,
        changes.description,
        changes.body,
        now,
        expected_slug
    )
    .fetch_optional(&mut *tx)
    .await?;
    if slug.is_none() {
        return Ok(None);
    }
    if let Some(tags) = &changes.tags {
        sqlx::query!("DELETE FROM article_tags WHERE article_id = ?1", id).execute(&mut *tx).await?;
        insert_tags(&mut tx, id, tags).await?;
    }
    tx.commit().await?;
    Ok(slug)
}

async fn insert_tags(tx: &mut sqlx::SqliteConnection, id: ArticleId, tags: &[String]) -> Result<(), DbError> {
    if tags.is_empty() {
        return Ok(());
    }
    let tags = Json(tags);
    // `json_each` yields each array element with its index: the tags and their order in one
    // statement.
    sqlx::query!(
        "INSERT INTO article_tags (article_id, name, position) SELECT ?1, value, key FROM json_each(?2)",
        id,
        tags
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// One statement: the foreign keys' `ON DELETE CASCADE` removes tags, favorites and comments
/// in the same implicit transaction.
pub async fn delete(db: &SqlitePool, id: ArticleId, author: UserId) -> Result<bool, DbError> {
    let done = sqlx::query!("DELETE FROM articles WHERE id = ?1 AND author_id = ?2", id, author).execute(db).await?;
    Ok(done.rows_affected() > 0)
}

pub async fn favorite(db: &SqlitePool, user: UserId, slug: &str) -> Result<(), DbError> {
    sqlx::query!(
        "INSERT INTO favorites (user_id, article_id)
         SELECT ?1, id FROM articles WHERE slug = ?2
         ON CONFLICT DO NOTHING",
        user,
        slug
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn unfavorite(db: &SqlitePool, user: UserId, slug: &str) -> Result<(), DbError> {
    sqlx::query!(
        "DELETE FROM favorites WHERE user_id = ?1 AND article_id = (SELECT id FROM articles WHERE slug = ?2)",
        user,
        slug
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn tags(db: &SqlitePool) -> Result<Vec<String>, DbError> {
    Ok(sqlx::query_scalar!("SELECT name FROM article_tags GROUP BY name ORDER BY count(*) DESC, name")
        .fetch_all(db)
        .await?)
}
