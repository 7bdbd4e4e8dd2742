//! Listings of articles: `GET /articles` with its filters, and the feed. Shared by both backends
//! (see README.md).
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
//!
//! Each filter alone (tag, author, favorited by) has its own checked statement: one statement
//! per filter, rather than one with `($1 IS NULL OR col = $1)` conditions, lets PostgreSQL plan
//! each with its own index. Two or three filters at once are rare: they share one statement
//! built at run time ([`combined_page`]), which walks the articles of the narrowest filter (by
//! the maintained counts) and checks the others on each, at most [`MAX_COMBINED_SCAN`] of them.
//!
//! Hidden articles (`hidden_articles`, a moderator's) are left out of every walk by a `NOT IN`
//! over that small table, which both databases build once per statement (a hashed subplan, an
//! ephemeral index) and probe per id: no article row is read for it. The maintained counts
//! already leave them out (the table's triggers), so totals agree with pages.

use chrono::{DateTime, Utc};
use conduit_domain::Article;
use conduit_domain::model::UserId;
use conduit_store::rows::{ListedRow, listed_page};
use conduit_store::*;
use sqlx::types::Json;
use sqlx::{QueryBuilder, Row};

use crate::{Db, Pool};

pub async fn list(db: &Pool, query: &ArticleQuery, viewer: Option<UserId>) -> Result<Page<Article>, DbError> {
    let rows = page(db, query, viewer, query.page).await?;
    listed_page(rows, page(db, query, viewer, Paging { limit: 1, ..Paging::default() })).await
}

pub async fn feed(db: &Pool, viewer: UserId, page: Paging) -> Result<Page<Article>, DbError> {
    let rows = feed_page(db, viewer, page).await?;
    listed_page(rows, feed_page(db, viewer, Paging { limit: 1, ..Paging::default() })).await
}

/// One page of a listing: by the statement of its one filter, or of none, or the combined one.
async fn page(
    db: &Pool,
    query: &ArticleQuery,
    viewer: Option<UserId>,
    page: Paging,
) -> Result<Vec<ListedRow>, DbError> {
    debug_assert!(page.limit <= MAX_ARTICLE_PAGE, "the statements serve at most MAX_ARTICLE_PAGE");
    let viewer = viewer.map(UserId::get);
    // The first two filters given: none, exactly one (its own statement), or several.
    let mut given = query.filters();
    match (given.next(), given.next()) {
        _ if query.skip_blocked && viewer.is_some() => blocked_page(db, query, viewer, page).await,
        (None, _) => all_page(db, viewer, page).await,
        (Some(filter), None) => filtered_page(db, filter, viewer, page).await,
        (Some(_), Some(_)) => combined_page(db, query, viewer, page).await,
    }
}

/// A page of every article. Arguments: the limit, the offset, the viewer, the keyset bound
/// ($1-$4).
async fn all_page(db: &Pool, viewer: Option<i64>, page: Paging) -> Result<Vec<ListedRow>, DbError> {
    let (limit, offset, below) = (page.limit, page.offset, page.below());
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
                  (SELECT CAST(COALESCE(sum(n), 0) AS BIGINT) FROM counts WHERE kind = 'articles') AS "total!: i64"
           FROM (SELECT id FROM (SELECT id FROM articles WHERE id < $4 AND id NOT IN (SELECT h.article_id FROM hidden_articles h) ORDER BY id DESC LIMIT $1 OFFSET $2) q LIMIT 100) p
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

/// A page of the articles of one filter, by that filter's statement. Arguments: the limit, the
/// offset, the viewer, the keyset bound ($1-$4), then the filter's value ($5). The author's or
/// favoriter's id is a scalar subquery, not a join: PostgreSQL then walks `articles_author` /
/// `favorites_pkey` backwards from the cursor and stops at the page, where the join made it read
/// all of that user's rows and sort them (a cost that grew with how much one author wrote or
/// favorited).
async fn filtered_page(
    db: &Pool,
    filter: Filter<'_>,
    viewer: Option<i64>,
    page: Paging,
) -> Result<Vec<ListedRow>, DbError> {
    let (limit, offset, below) = (page.limit, page.offset, page.below());
    let rows = match filter {
        Filter::Tag(tag) => sqlx::query_as!(
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
           FROM (SELECT id FROM (SELECT article_id AS id FROM article_tags WHERE name = $5 AND article_id < $4
                 AND article_id NOT IN (SELECT h.article_id FROM hidden_articles h) ORDER BY article_id DESC LIMIT $1 OFFSET $2) q LIMIT 100) p
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
        Filter::Author(author) => sqlx::query_as!(
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
                 WHERE a2.author_id = (SELECT id FROM users WHERE username = $5) AND a2.id < $4 AND a2.id NOT IN (SELECT h.article_id FROM hidden_articles h)
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
        Filter::FavoritedBy(user) => sqlx::query_as!(
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
                   AND f2.article_id NOT IN (SELECT h.article_id FROM hidden_articles h)
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
    };
    Ok(rows)
}

/// A page of the articles by authors `viewer` follows, in one statement as [`all_page`].
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
                 WHERE f2.follower_id = $3 AND a2.id < $4 AND a2.id NOT IN (SELECT h.article_id FROM hidden_articles h) ORDER BY a2.id DESC LIMIT $1 OFFSET $2) q LIMIT 100) p
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

// --- two or three filters at once ---

/// A page of a listing with two or three filters, in one statement built at run time: its rows
/// are [`ListedRow`]s, each carrying the listing's total. The page and the total walk the
/// narrowest filter's articles newest first (at most [`MAX_COMBINED_SCAN`]) and check the other
/// filters on each with a subquery per row, which neither database turns into a join that could
/// read a whole filter's rows instead.
async fn combined_page(
    db: &Pool,
    query: &ArticleQuery,
    viewer: Option<i64>,
    page: Paging,
) -> Result<Vec<ListedRow>, DbError> {
    let filters: Vec<Filter<'_>> = query.filters().collect();
    let driver = narrowest(db, &filters).await?;
    let mut sql = QueryBuilder::<Db>::new("");
    push_listed_columns(&mut sql, viewer);
    sql.push(", (SELECT count(*) FROM ");
    push_driven(&mut sql, &filters, driver, None);
    sql.push(") AS total FROM (SELECT id FROM (SELECT d.id FROM ");
    push_driven(&mut sql, &filters, driver, Some(page.below()));
    sql.push(" ORDER BY d.id DESC LIMIT ");
    sql.push_bind(page.limit);
    sql.push(" OFFSET ");
    sql.push_bind(page.offset);
    // The constant bound: see this module's doc.
    sql.push(") q LIMIT 100) p CROSS JOIN articles a JOIN users u ON u.id = a.author_id WHERE a.id = p.id ORDER BY a.id DESC");
    Ok(sql.build_query_as().fetch_all(db).await?)
}

// --- a reader who blocks someone ---

/// A page of a listing for a viewer who blocks anyone (`ArticleQuery::skip_blocked`), in one
/// statement built at run time: the walk of the plain statements (every article newest first, or
/// the one filter's, or the narrowest of several), each article walked checked against the
/// viewer's blocks by a probe of the `blocks` key with its author: a count per article, which
/// neither database turns into a join (as `NOT EXISTS`, PostgreSQL planned an anti-join that
/// read every article of the walk's index: 4 pages a second at 100,000 articles, against 1,645
/// without blocks). A reader who blocks nobody
/// never comes here: their listings stay the checked statements above. The total is the
/// listing's before the viewer's blocks (the maintained count, or the combined walk's count):
/// counting what the blocks leave out would walk every match.
async fn blocked_page(
    db: &Pool,
    query: &ArticleQuery,
    viewer: Option<i64>,
    page: Paging,
) -> Result<Vec<ListedRow>, DbError> {
    let filters: Vec<Filter<'_>> = query.filters().collect();
    let driver = match filters.len() {
        0 => None,
        1 => Some(filters[0]),
        _ => Some(narrowest(db, &filters).await?),
    };
    let mut sql = QueryBuilder::<Db>::new("");
    push_listed_columns(&mut sql, viewer);
    sql.push(", ");
    match driver {
        None => {
            sql.push("(SELECT CAST(COALESCE(sum(n), 0) AS BIGINT) FROM counts WHERE kind = 'articles')");
        }
        Some(filter) if filters.len() == 1 => push_around(&mut sql, sql_of(filter).count, filter.value()),
        Some(driver) => {
            sql.push("(SELECT count(*) FROM ");
            push_driven(&mut sql, &filters, driver, None);
            sql.push(")");
        }
    }
    sql.push(" AS total FROM (SELECT id FROM (SELECT d.id FROM ");
    match driver {
        Some(driver) => push_driven(&mut sql, &filters, driver, Some(page.below())),
        None => {
            sql.push("(SELECT x.id AS id FROM articles x WHERE x.id < ");
            sql.push_bind(page.below());
            sql.push(format!(") d WHERE d.id {NOT_HIDDEN}"));
        }
    }
    sql.push(" AND (SELECT count(*) FROM blocks bl WHERE bl.blocker_id = ");
    sql.push_bind(viewer);
    match filters.iter().find_map(|f| if let Filter::Author(name) = f { Some(*name) } else { None }) {
        // One author: whether the viewer blocks them is one probe for the whole listing.
        Some(author) => {
            push_around(&mut sql, (" AND bl.blocked_id = (SELECT id FROM users WHERE username = ", ")) = 0"), author)
        }
        None => {
            sql.push(" AND bl.blocked_id = (SELECT ba.author_id FROM articles ba WHERE ba.id = d.id)) = 0");
        }
    }
    // The page's bounds as numbers PostgreSQL's generic plan can see (both validated: at most
    // 100 and 10,000): bound, its plan walked the index backwards and stopped; unseen, it sorted
    // every article of the walk (43 pages a second at 100,000 articles, against 2,261).
    sql.push(format!(" ORDER BY d.id DESC LIMIT {} OFFSET {}", page.limit, page.offset));
    sql.push(") q LIMIT 100) p CROSS JOIN articles a JOIN users u ON u.id = a.author_id WHERE a.id = p.id ORDER BY a.id DESC");
    Ok(sql.build_query_as().fetch_all(db).await?)
}

/// The condition on an article id that leaves hidden articles out (see this module's doc).
const NOT_HIDDEN: &str = "NOT IN (SELECT h.article_id FROM hidden_articles h)";

/// `SELECT` and a listed article's columns as [`ListedRow`] has them (but `total`), for the
/// article `a` and its author `u`, as the viewer sees them.
pub(crate) fn push_listed_columns(sql: &mut QueryBuilder<'_, Db>, viewer: Option<i64>) {
    sql.push(
        "SELECT a.id, a.slug, a.title, a.description, a.tag_list, a.created_at, a.updated_at, \
                EXISTS(SELECT 1 FROM favorites f WHERE f.article_id = a.id AND f.user_id = ",
    );
    sql.push_bind(viewer);
    sql.push(
        ") AS favorited, \
         (SELECT CAST(COALESCE(sum(fc.n), 0) AS BIGINT) FROM favorite_counts fc WHERE fc.article_id = a.id) AS favorites_count, \
         u.username, u.bio, u.image, \
         EXISTS(SELECT 1 FROM follows fo WHERE fo.followee_id = a.author_id AND fo.follower_id = ",
    );
    sql.push_bind(viewer);
    sql.push(") AS following");
}

/// The filter with the fewest matches, by the maintained counts (one statement for all of
/// them; the first of equals); refused when even that one matches more than
/// [`MAX_COMBINED_SCAN`].
async fn narrowest<'a>(db: &Pool, filters: &[Filter<'a>]) -> Result<Filter<'a>, DbError> {
    let mut sql = QueryBuilder::<Db>::new("SELECT ");
    for (i, filter) in filters.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        push_around(&mut sql, sql_of(*filter).count, filter.value());
    }
    let row = sql.build().fetch_one(db).await?;
    let counts = (0..filters.len()).map(|i| row.try_get::<i64, _>(i)).collect::<Result<Vec<_>, _>>()?;
    let (fewest, driver) = counts
        .into_iter()
        .zip(filters.iter().copied())
        .min_by_key(|(n, _)| *n)
        .ok_or_else(|| DbError::Other("a combined listing without filters".into()))?;
    if fewest > MAX_COMBINED_SCAN {
        return Err(DbError::TooBroad);
    }
    Ok(driver)
}

/// `(SELECT <id> AS id FROM <driver's rows> [AND <id> < below]) d WHERE <not hidden> <each other
/// filter, checked on d.id>`.
fn push_driven<'a>(sql: &mut QueryBuilder<'a, Db>, filters: &[Filter<'a>], driver: Filter<'a>, below: Option<i64>) {
    let driving = sql_of(driver);
    push_around(sql, driving.rows, driver.value());
    if let Some(below) = below {
        sql.push(format!(" AND {} < ", driving.id));
        sql.push_bind(below);
    }
    sql.push(format!(") d WHERE d.id {NOT_HIDDEN}"));
    for other in filters.iter().filter(|filter| **filter != driver) {
        push_around(sql, sql_of(*other).check, other.value());
    }
}

/// Pushes `before`, the value bound, then `after`.
pub(crate) fn push_around<'a>(sql: &mut QueryBuilder<'a, Db>, (before, after): (&str, &str), value: &'a str) {
    sql.push(before);
    sql.push_bind(value);
    sql.push(after);
}

/// What one filter is in SQL: each piece is the text before and after its value.
pub(crate) struct FilterSql {
    /// How many articles it matches, from the maintained `counts`: a scalar subquery.
    count: (&'static str, &'static str),
    /// Its articles' ids as `id`, when it drives the walk: an open subquery, closed by
    /// [`push_driven`] after the cursor's bound on [`FilterSql::id`].
    rows: (&'static str, &'static str),
    id: &'static str,
    /// Whether the article `d.id` passes it: a condition.
    pub(crate) check: (&'static str, &'static str),
}

pub(crate) fn sql_of(filter: Filter<'_>) -> FilterSql {
    match filter {
        Filter::Tag(_) => FilterSql {
            count: ("(SELECT CAST(COALESCE(sum(n), 0) AS BIGINT) FROM counts WHERE kind = 'tag' AND key = ", ")"),
            rows: ("(SELECT t.article_id AS id FROM article_tags t WHERE t.name = ", ""),
            id: "t.article_id",
            check: (" AND (SELECT count(*) FROM article_tags pt WHERE pt.article_id = d.id AND pt.name = ", ") > 0"),
        },
        Filter::Author(_) => FilterSql {
            count: (
                "(SELECT CAST(COALESCE(sum(n), 0) AS BIGINT) FROM counts WHERE kind = 'author' \
                 AND key = (SELECT CAST(id AS TEXT) FROM users WHERE username = ",
                "))",
            ),
            rows: (
                "(SELECT x.id AS id FROM articles x WHERE x.author_id = (SELECT id FROM users WHERE username = ",
                ")",
            ),
            id: "x.id",
            check: (
                " AND (SELECT px.author_id FROM articles px WHERE px.id = d.id) = (SELECT id FROM users WHERE username = ",
                ")",
            ),
        },
        Filter::FavoritedBy(_) => FilterSql {
            count: (
                "(SELECT CAST(COALESCE(sum(n), 0) AS BIGINT) FROM counts WHERE kind = 'favorited_by' \
                 AND key = (SELECT CAST(id AS TEXT) FROM users WHERE username = ",
                "))",
            ),
            rows: (
                "(SELECT f.article_id AS id FROM favorites f WHERE f.user_id = (SELECT id FROM users WHERE username = ",
                ")",
            ),
            id: "f.article_id",
            check: (
                " AND (SELECT count(*) FROM favorites pf WHERE pf.article_id = d.id \
                 AND pf.user_id = (SELECT id FROM users WHERE username = ",
                ")) > 0",
            ),
        },
    }
}
