//! Articles, favorites and tags. Shared by both backends (see README.md); only the insertion
//! of a tag list differs (`dialect::insert_tags`).
//!
//! A listing page is one statement per filter shape: the page's ids in a subquery, the
//! total in another (read from the maintained `counts`, never counted per request), and the
//! listed columns around them, so a page costs one round trip.
//! The statements repeat their column list because `query_as!` checks literal SQL only.
//! `CROSS JOIN` fixes the join order in SQLite (PostgreSQL plans it freely): the page's few
//! ids drive the lookups. Without it SQLite 3.46 scanned every article (to save sorting
//! twenty) and probed the page with a Bloom filter: 412 µs instead of 152 µs per unfiltered
//! page of 1,000 articles.
//!
//! The page's ids pass through a second, constant `LIMIT 100` ([`MAX_ARTICLE_PAGE`], the API's
//! largest page, so it never cuts one) for PostgreSQL, which runs every statement with a
//! generic plan (`connect.rs`): such a plan cannot see `$1`, assumes a page holds a tenth of the
//! matches, and at a million articles it then joined them by hashing the whole table (770 ms a
//! page). Seeing the constant, it looks up at most 100 rows one by one
//! (`crates/store-postgres/tests/plans.rs` checks every statement's plan at that size).

use chrono::{DateTime, Utc};
use conduit_domain::Article;
use conduit_domain::model::{ArticleId, UserId};
use conduit_store::rows::{ArticleRow, ListedRow, listed_page};
use conduit_store::*;
use sqlx::types::Json;

use crate::{Connection, Db, Pool, dialect};

pub async fn by_slug(db: &Pool, slug: &str, viewer: Option<UserId>) -> Result<Option<Article>, DbError> {
    let viewer = viewer.map(UserId::get);
    let row = sqlx::query_as!(
        ArticleRow,
        r#"SELECT a.id AS "id!", a.slug, a.title, a.description, a.body AS "body?",
                  a.tag_list AS "tag_list!: Json<Vec<String>>",
                  a.created_at AS "created_at!: DateTime<Utc>", a.updated_at AS "updated_at!: DateTime<Utc>",
                  EXISTS(SELECT 1 FROM favorites f WHERE f.article_id = a.id AND f.user_id = $2) AS "favorited!: bool",
                  (SELECT CAST(COALESCE(sum(fc.n), 0) AS BIGINT) FROM favorite_counts fc WHERE fc.article_id = a.id)
                      AS "favorites_count!: i64",
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

/// One page of a listing. Arguments: the limit, the offset, the viewer, the keyset bound
/// ($1-$4), then the filter's value ($5). The author's or favoriter's id is a scalar subquery,
/// not a join: PostgreSQL then walks `articles_author` / `favorites_pkey` backwards from the
/// cursor and stops at the page, where the join made it read all of that user's rows and sort
/// them (a cost that grew with how much one author wrote or favorited). Two or three filters at once are rare: they share one statement built
/// at run time ([`combined_listing`]).
async fn page(
    db: &Pool,
    query: &ArticleQuery,
    viewer: Option<UserId>,
    page: Paging,
) -> Result<Vec<ListedRow>, DbError> {
    debug_assert!(page.limit <= MAX_ARTICLE_PAGE, "the statements serve at most MAX_ARTICLE_PAGE");
    let (limit, offset, below) = (page.limit, page.offset, page.below());
    // The checked statements take the database's integer; the combined one the typed id.
    let (typed_viewer, viewer) = (viewer, viewer.map(UserId::get));
    let rows = match query.shape() {
        FilterShape::All => sqlx::query_as!(
            ListedRow,
            r#"SELECT a.id AS "id!", a.slug, a.title, a.description,
                  a.tag_list AS "tag_list!: Json<Vec<String>>",
                  a.created_at AS "created_at!: DateTime<Utc>", a.updated_at AS "updated_at!: DateTime<Utc>",
                  EXISTS(SELECT 1 FROM favorites f WHERE f.article_id = a.id AND f.user_id = $3) AS "favorited!: bool",
                  (SELECT CAST(COALESCE(sum(fc.n), 0) AS BIGINT) FROM favorite_counts fc WHERE fc.article_id = a.id)
                      AS "favorites_count!: i64",
                  u.username, u.bio, u.image,
                  EXISTS(SELECT 1 FROM follows fo WHERE fo.follower_id = $3 AND fo.followee_id = a.author_id)
                      AS "following!: bool",
                  (SELECT CAST(COALESCE(sum(n), 0) AS BIGINT) FROM counts WHERE kind = 'articles') AS "total!: i64"
           FROM (SELECT id FROM (SELECT id FROM articles WHERE id < $4 ORDER BY id DESC LIMIT $1 OFFSET $2) q LIMIT 100) p
                CROSS JOIN articles a JOIN users u ON u.id = a.author_id
           WHERE a.id = p.id
           ORDER BY a.id DESC"#,
            limit,
            offset,
            viewer,
            below
        )
        .fetch_all(db)
        .await?,
        FilterShape::Tag(tag) => sqlx::query_as!(
            ListedRow,
            r#"SELECT a.id AS "id!", a.slug, a.title, a.description,
                  a.tag_list AS "tag_list!: Json<Vec<String>>",
                  a.created_at AS "created_at!: DateTime<Utc>", a.updated_at AS "updated_at!: DateTime<Utc>",
                  EXISTS(SELECT 1 FROM favorites f WHERE f.article_id = a.id AND f.user_id = $3) AS "favorited!: bool",
                  (SELECT CAST(COALESCE(sum(fc.n), 0) AS BIGINT) FROM favorite_counts fc WHERE fc.article_id = a.id)
                      AS "favorites_count!: i64",
                  u.username, u.bio, u.image,
                  EXISTS(SELECT 1 FROM follows fo WHERE fo.follower_id = $3 AND fo.followee_id = a.author_id)
                      AS "following!: bool",
                  (SELECT CAST(COALESCE(sum(n), 0) AS BIGINT) FROM counts WHERE kind = 'tag' AND key = $5) AS "total!: i64"
           FROM (SELECT id FROM (SELECT article_id AS id FROM article_tags WHERE name = $5 AND article_id < $4 ORDER BY article_id DESC LIMIT $1 OFFSET $2) q LIMIT 100) p
                CROSS JOIN articles a JOIN users u ON u.id = a.author_id
           WHERE a.id = p.id
           ORDER BY a.id DESC"#,
            limit,
            offset,
            viewer,
            below,
            tag
        )
        .fetch_all(db)
        .await?,
        FilterShape::Author(author) => sqlx::query_as!(
            ListedRow,
            r#"SELECT a.id AS "id!", a.slug, a.title, a.description,
                  a.tag_list AS "tag_list!: Json<Vec<String>>",
                  a.created_at AS "created_at!: DateTime<Utc>", a.updated_at AS "updated_at!: DateTime<Utc>",
                  EXISTS(SELECT 1 FROM favorites f WHERE f.article_id = a.id AND f.user_id = $3) AS "favorited!: bool",
                  (SELECT CAST(COALESCE(sum(fc.n), 0) AS BIGINT) FROM favorite_counts fc WHERE fc.article_id = a.id)
                      AS "favorites_count!: i64",
                  u.username, u.bio, u.image,
                  EXISTS(SELECT 1 FROM follows fo WHERE fo.follower_id = $3 AND fo.followee_id = a.author_id)
                      AS "following!: bool",
                  (SELECT CAST(COALESCE(sum(n), 0) AS BIGINT) FROM counts
                   WHERE kind = 'author' AND key = (SELECT CAST(id AS TEXT) FROM users WHERE username = $5)) AS "total!: i64"
           FROM (SELECT id FROM (SELECT a2.id FROM articles a2
                 WHERE a2.author_id = (SELECT id FROM users WHERE username = $5) AND a2.id < $4
                 ORDER BY a2.id DESC LIMIT $1 OFFSET $2) q LIMIT 100) p
                CROSS JOIN articles a JOIN users u ON u.id = a.author_id
           WHERE a.id = p.id
           ORDER BY a.id DESC"#,
            limit,
            offset,
            viewer,
            below,
            author
        )
        .fetch_all(db)
        .await?,
        FilterShape::FavoritedBy(user) => sqlx::query_as!(
            ListedRow,
            r#"SELECT a.id AS "id!", a.slug, a.title, a.description,
                  a.tag_list AS "tag_list!: Json<Vec<String>>",
                  a.created_at AS "created_at!: DateTime<Utc>", a.updated_at AS "updated_at!: DateTime<Utc>",
                  EXISTS(SELECT 1 FROM favorites f WHERE f.article_id = a.id AND f.user_id = $3) AS "favorited!: bool",
                  (SELECT CAST(COALESCE(sum(fc.n), 0) AS BIGINT) FROM favorite_counts fc WHERE fc.article_id = a.id)
                      AS "favorites_count!: i64",
                  u.username, u.bio, u.image,
                  EXISTS(SELECT 1 FROM follows fo WHERE fo.follower_id = $3 AND fo.followee_id = a.author_id)
                      AS "following!: bool",
                  (SELECT CAST(COALESCE(sum(n), 0) AS BIGINT) FROM counts
                   WHERE kind = 'favorited_by' AND key = (SELECT CAST(id AS TEXT) FROM users WHERE username = $5)) AS "total!: i64"
           FROM (SELECT id FROM (SELECT f2.article_id AS id FROM favorites f2
                 WHERE f2.user_id = (SELECT id FROM users WHERE username = $5) AND f2.article_id < $4
                 ORDER BY f2.article_id DESC LIMIT $1 OFFSET $2) q LIMIT 100) p
                CROSS JOIN articles a JOIN users u ON u.id = a.author_id
           WHERE a.id = p.id
           ORDER BY a.id DESC"#,
            limit,
            offset,
            viewer,
            below,
            user
        )
        .fetch_all(db)
        .await?,
        FilterShape::Combined => {
            let counts = filter_counts::<Db>(query).build_query_as().fetch_one(db).await?;
            let driver = combined_driver(query, counts)?;
            combined_listing::<Db>(query, typed_viewer, page, driver).build_query_as().fetch_all(db).await?
        }
    };
    Ok(rows)
}

pub async fn list(db: &Pool, query: &ArticleQuery, viewer: Option<UserId>) -> Result<Page<Article>, DbError> {
    let rows = page(db, query, viewer, query.page).await?;
    listed_page(rows, page(db, query, viewer, Paging { limit: 1, ..Paging::default() })).await
}

/// A page of the articles by authors `viewer` follows, in one statement as [`page`].
async fn feed_page(db: &Pool, viewer: UserId, page: Paging) -> Result<Vec<ListedRow>, DbError> {
    debug_assert!(page.limit <= MAX_ARTICLE_PAGE, "the statement serves at most MAX_ARTICLE_PAGE");
    let (viewer, limit, offset, below) = (viewer.get(), page.limit, page.offset, page.below());
    Ok(sqlx::query_as!(
        ListedRow,
        r#"SELECT a.id AS "id!", a.slug, a.title, a.description,
                  a.tag_list AS "tag_list!: Json<Vec<String>>",
                  a.created_at AS "created_at!: DateTime<Utc>", a.updated_at AS "updated_at!: DateTime<Utc>",
                  EXISTS(SELECT 1 FROM favorites f WHERE f.article_id = a.id AND f.user_id = $3) AS "favorited!: bool",
                  (SELECT CAST(COALESCE(sum(fc.n), 0) AS BIGINT) FROM favorite_counts fc WHERE fc.article_id = a.id)
                      AS "favorites_count!: i64",
                  u.username, u.bio, u.image,
                  EXISTS(SELECT 1 FROM follows fo WHERE fo.follower_id = $3 AND fo.followee_id = a.author_id)
                      AS "following!: bool",
                  (SELECT CAST(COALESCE(sum(c.n), 0) AS BIGINT) FROM follows f2
                   JOIN counts c ON c.kind = 'author' AND c.key = CAST(f2.followee_id AS TEXT)
                   WHERE f2.follower_id = $3) AS "total!: i64"
           FROM (SELECT id FROM (SELECT a2.id FROM follows f2 JOIN articles a2 ON a2.author_id = f2.followee_id
                 WHERE f2.follower_id = $3 AND a2.id < $4 ORDER BY a2.id DESC LIMIT $1 OFFSET $2) q LIMIT 100) p
                CROSS JOIN articles a JOIN users u ON u.id = a.author_id
           WHERE a.id = p.id
           ORDER BY a.id DESC"#,
        limit,
        offset,
        viewer,
        below
    )
    .fetch_all(db)
    .await?)
}

pub async fn feed(db: &Pool, viewer: UserId, page: Paging) -> Result<Page<Article>, DbError> {
    let rows = feed_page(db, viewer, page).await?;
    listed_page(rows, feed_page(db, viewer, Paging { limit: 1, ..Paging::default() })).await
}

pub async fn reference(db: &Pool, slug: &str) -> Result<Option<ArticleRef>, DbError> {
    Ok(sqlx::query_as!(ArticleRef, r#"SELECT id AS "id!", author_id AS "author!" FROM articles WHERE slug = $1"#, slug)
        .fetch_optional(db)
        .await?)
}

/// Inserts the article and its tags in one transaction.
pub async fn create(db: &Pool, author: UserId, slug: &str, new: &NewArticle) -> Result<ArticleId, DbError> {
    let mut tx = db.begin().await?;
    let id = insert(&mut tx, author, slug, new, Utc::now()).await?;
    tx.commit().await?;
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
    let id = sqlx::query_scalar!(
        r#"INSERT INTO articles (slug, author_id, title, description, body, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $6)
           RETURNING id AS "id!""#,
        slug,
        author,
        new.title,
        new.description,
        new.body,
        at
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
        dialect::insert_tags(&mut tx, ArticleId::new(id), tags).await?;
    }
    tx.commit().await?;
    Ok(slug)
}

/// One statement: the foreign keys' `ON DELETE CASCADE` removes tags, favorites and comments
/// in the same implicit transaction.
pub async fn delete(db: &Pool, id: ArticleId, author: UserId) -> Result<bool, DbError> {
    let (id, author) = (id.get(), author.get());
    let done = sqlx::query!("DELETE FROM articles WHERE id = $1 AND author_id = $2", id, author).execute(db).await?;
    Ok(done.rows_affected() > 0)
}

pub async fn favorite(db: &Pool, user: UserId, slug: &str) -> Result<(), DbError> {
    let user = user.get();
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
