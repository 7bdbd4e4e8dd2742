use chrono::{DateTime, Utc};
use conduit_domain::Article;
use conduit_domain::model::{ArticleId, UserId};
use conduit_store::rows::ArticleRow;
use conduit_store::*;
use sqlx::PgPool;
use sqlx::types::Json;

pub async fn by_slug(db: &PgPool, slug: &str, viewer: Option<UserId>) -> Result<Option<Article>, DbError> {
    let row = sqlx::query_as!(
        ArticleRow,
        r#"SELECT a.id AS "id!", a.slug, a.title, a.description, a.body AS "body?",
                  a.tag_list AS "tag_list!: Json<Vec<String>>",
                  a.created_at AS "created_at!: DateTime<Utc>", a.updated_at AS "updated_at!: DateTime<Utc>",
                  EXISTS(SELECT 1 FROM favorites f WHERE f.article_id = a.id AND f.user_id = $2)
                      AS "favorited!: bool",
                  a.favorites_count AS "favorites_count!: i64",
                  u.username, u.bio, u.image,
                  EXISTS(SELECT 1 FROM follows fo WHERE fo.follower_id = $2 AND fo.followee_id = a.author_id)
                      AS "following!: bool"
           FROM articles a JOIN users u ON u.id = a.author_id
           WHERE a.slug = $1"#,
        slug,
        viewer
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(Article::from))
}

/// The articles with these ids, newest first, without bodies.
async fn by_ids(db: &PgPool, ids: &[i64], viewer: Option<UserId>) -> Result<Vec<Article>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query_as!(
        ArticleRow,
        r#"SELECT a.id AS "id!", a.slug, a.title, a.description, NULL::text AS "body?",
                  a.tag_list AS "tag_list!: Json<Vec<String>>",
                  a.created_at AS "created_at!: DateTime<Utc>", a.updated_at AS "updated_at!: DateTime<Utc>",
                  EXISTS(SELECT 1 FROM favorites f WHERE f.article_id = a.id AND f.user_id = $2)
                      AS "favorited!: bool",
                  a.favorites_count AS "favorites_count!: i64",
                  u.username, u.bio, u.image,
                  EXISTS(SELECT 1 FROM follows fo WHERE fo.follower_id = $2 AND fo.followee_id = a.author_id)
                      AS "following!: bool"
           FROM articles a JOIN users u ON u.id = a.author_id
           WHERE a.id = ANY($1)
           ORDER BY a.id DESC"#,
        ids,
        viewer
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Article::from).collect())
}

/// One page of a listing: how many articles match in all, and the page's ids. Both come from
/// one statement, so a listing costs two round trips to the database, not three.
struct PageIds {
    total: i64,
    ids: Vec<i64>,
}

pub async fn list(db: &PgPool, query: &ArticleQuery, viewer: Option<UserId>) -> Result<Page<Article>, DbError> {
    let Paging { limit, offset } = query.page;
    let page = match query.shape() {
        FilterShape::All => {
            sqlx::query_as!(
                PageIds,
                r#"SELECT (SELECT count(*) FROM articles) AS "total!",
                          ARRAY(SELECT id FROM articles ORDER BY id DESC LIMIT $1 OFFSET $2) AS "ids!""#,
                limit,
                offset
            )
            .fetch_one(db)
            .await?
        }
        FilterShape::Tag(tag) => {
            sqlx::query_as!(
                PageIds,
                r#"SELECT (SELECT count(*) FROM article_tags WHERE name = $1) AS "total!",
                          ARRAY(SELECT article_id FROM article_tags WHERE name = $1
                                ORDER BY article_id DESC LIMIT $2 OFFSET $3) AS "ids!""#,
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
                           WHERE u.username = $1) AS "total!",
                          ARRAY(SELECT a.id FROM articles a JOIN users u ON u.id = a.author_id
                                WHERE u.username = $1 ORDER BY a.id DESC LIMIT $2 OFFSET $3) AS "ids!""#,
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
                           WHERE u.username = $1) AS "total!",
                          ARRAY(SELECT f.article_id FROM favorites f JOIN users u ON u.id = f.user_id
                                WHERE u.username = $1 ORDER BY f.article_id DESC LIMIT $2 OFFSET $3) AS "ids!""#,
                user,
                limit,
                offset
            )
            .fetch_one(db)
            .await?
        }
        FilterShape::Combined => PageIds {
            ids: combined_filter_query::<sqlx::Postgres>(query, false).build_query_scalar().fetch_all(db).await?,
            total: combined_filter_query::<sqlx::Postgres>(query, true).build_query_scalar().fetch_one(db).await?,
        },
    };
    Ok(Page { items: by_ids(db, &page.ids, viewer).await?, total: page.total })
}

pub async fn feed(db: &PgPool, viewer: UserId, page: Paging) -> Result<Page<Article>, DbError> {
    let page = sqlx::query_as!(
        PageIds,
        r#"SELECT (SELECT count(*) FROM follows f JOIN articles a ON a.author_id = f.followee_id
                   WHERE f.follower_id = $1) AS "total!",
                  ARRAY(SELECT a.id FROM follows f JOIN articles a ON a.author_id = f.followee_id
                        WHERE f.follower_id = $1 ORDER BY a.id DESC LIMIT $2 OFFSET $3) AS "ids!""#,
        viewer,
        page.limit,
        page.offset
    )
    .fetch_one(db)
    .await?;
    Ok(Page { items: by_ids(db, &page.ids, Some(viewer)).await?, total: page.total })
}

pub async fn reference(db: &PgPool, slug: &str) -> Result<Option<ArticleRef>, DbError> {
    Ok(sqlx::query_as!(ArticleRef, r#"SELECT id AS "id!", author_id AS "author!" FROM articles WHERE slug = $1"#, slug)
        .fetch_optional(db)
        .await?)
}

/// Inserts the article and its tags in one transaction.
pub async fn create(db: &PgPool, author: UserId, slug: &str, new: &NewArticle) -> Result<ArticleId, DbError> {
    let now = Utc::now();
    let mut tx = db.begin().await?;
    let id = sqlx::query_scalar!(
        r#"INSERT INTO articles (slug, author_id, title, description, body, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $6)
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
    db: &PgPool,
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
               slug = COALESCE($3, slug),
               title = COALESCE($4, title),
               description = COALESCE($5, description),
               body = COALESCE($6, body),
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
        expected_slug
    )
    .fetch_optional(&mut *tx)
    .await?;
    if slug.is_none() {
        return Ok(None);
    }
    if let Some(tags) = &changes.tags {
        sqlx::query!("DELETE FROM article_tags WHERE article_id = $1", id).execute(&mut *tx).await?;
        insert_tags(&mut tx, id, tags).await?;
    }
    tx.commit().await?;
    Ok(slug)
}

async fn insert_tags(tx: &mut sqlx::PgConnection, id: ArticleId, tags: &[String]) -> Result<(), DbError> {
    if tags.is_empty() {
        return Ok(());
    }
    // `WITH ORDINALITY` numbers the array's elements: the tags and their order in one statement.
    sqlx::query!(
        "INSERT INTO article_tags (article_id, name, position)
         SELECT $1, t.name, t.position::int FROM unnest($2::text[]) WITH ORDINALITY AS t(name, position)",
        id,
        tags
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// One statement: the foreign keys' `ON DELETE CASCADE` removes tags, favorites and comments
/// in the same implicit transaction.
pub async fn delete(db: &PgPool, id: ArticleId, author: UserId) -> Result<bool, DbError> {
    let done = sqlx::query!("DELETE FROM articles WHERE id = $1 AND author_id = $2", id, author).execute(db).await?;
    Ok(done.rows_affected() > 0)
}

pub async fn favorite(db: &PgPool, user: UserId, slug: &str) -> Result<(), DbError> {
    sqlx::query!(
        "INSERT INTO favorites (user_id, article_id)
         SELECT $1, id FROM articles WHERE slug = $2
         ON CONFLICT DO NOTHING",
        user,
        slug
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn unfavorite(db: &PgPool, user: UserId, slug: &str) -> Result<(), DbError> {
    sqlx::query!(
        "DELETE FROM favorites WHERE user_id = $1 AND article_id = (SELECT id FROM articles WHERE slug = $2)",
        user,
        slug
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn tags(db: &PgPool) -> Result<Vec<String>, DbError> {
    Ok(sqlx::query_scalar!("SELECT name FROM article_tags GROUP BY name ORDER BY count(*) DESC, name")
        .fetch_all(db)
        .await?)
}
