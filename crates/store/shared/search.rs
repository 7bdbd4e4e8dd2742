//! Search: `GET /articles?q=`. Shared by both backends (see README.md); each backend's index
//! and its query language are in its `dialect.rs` (`search_*`): FTS5 on SQLite, a weighted
//! `tsvector` with a GIN index on PostgreSQL.
//!
//! One statement, bounded whatever is asked:
//! 1. `hits`: the newest matches, by walking the index newest first and stopping at
//!    [`SEARCH_CANDIDATES`] (or [`MAX_COMBINED_SCAN`] with a filter). A word in 900,000 articles
//!    costs what a word in 1,000 does. Nothing here counts every match, and no engine's own
//!    ranking function runs (FTS5's `bm25()` counts every match of each word to weigh it: 60 ms
//!    for a common word at a million articles).
//! 2. `candidates`: those that pass the filters, the newest [`SEARCH_CANDIDATES`] (with a
//!    phrase, [`PHRASE_CANDIDATES`]: each of its matches costs a check of positions); and the
//!    articles whose title is exactly the query's words (`title_key`, an index lookup: at most
//!    [`EXACT_TITLES`]), however old, which the walk alone would not reach when more than that
//!    many newer articles match.
//! 3. Ranked in tiers: the title is exactly the query (16), the whole query matches the title
//!    (8), the description (4), the query's words stand together as a phrase (2); the rest
//!    matched the body or tags. Ties go to the newest. The page is cut from this order: its
//!    cursor is a rank, not an id.
//! 4. Only the page's articles are read, with a snippet of the body around the matched words
//!    (cut in Rust, `SearchQuery::snippet`: FTS5's `snippet()` looked each article up in the
//!    index again, 1 ms an article at a million, and `ts_headline` parses the whole text).

use conduit_domain::Article;
use conduit_domain::search::SearchQuery;
use conduit_store::rows::SearchedRow;
use conduit_store::*;
use sqlx::QueryBuilder;

use crate::listings::{push_around, push_listed_columns, sql_of};
use crate::{Db, Pool, dialect};

/// How much of a body a snippet is looked for in.
const SNIPPET_SOURCE_CHARS: i64 = 20_000;

/// The most articles with the very title searched for that are ranked (the newest of them).
const EXACT_TITLES: i64 = 20;

pub async fn page(
    db: &Pool,
    query: &ArticleQuery,
    search: &SearchQuery,
    viewer: Option<i64>,
) -> Result<Page<Article>, DbError> {
    let start = query.page.cursor.unwrap_or(0).saturating_add(query.page.offset);
    let rows = ranked(db, query, search, viewer, start, query.page.limit).await?;
    // Every row carries the total; a page past the end asks for the first row to learn it.
    let total = match rows.first() {
        Some(row) => row.listed.total,
        None => ranked(db, query, search, viewer, 0, 1).await?.first().map_or(0, |row| row.listed.total),
    };
    let items = rows
        .into_iter()
        .map(|row| Article { snippet: Some(search.snippet(&row.body)), ..Article::from(row.listed) })
        .collect();
    Ok(Page { items, total })
}

/// The `limit` articles from rank `start` on.
async fn ranked(
    db: &Pool,
    query: &ArticleQuery,
    search: &SearchQuery,
    viewer: Option<i64>,
    start: i64,
    limit: i64,
) -> Result<Vec<SearchedRow>, DbError> {
    let wanted = if search.has_phrase() { PHRASE_CANDIDATES } else { SEARCH_CANDIDATES };
    let scan = if query.filters().next().is_some() { MAX_COMBINED_SCAN } else { wanted };
    let title_key = search.title_key();
    let mut sql = QueryBuilder::<Db>::new("WITH hits AS MATERIALIZED (");
    dialect::search_hits(&mut sql, search, scan);
    sql.push("), candidates AS MATERIALIZED (SELECT d.* FROM hits d WHERE ");
    push_checks(&mut sql, query, viewer);
    sql.push(" ORDER BY d.id DESC LIMIT ");
    sql.push_bind(wanted);
    sql.push(")");
    // Every candidate, and how many: with an exact title, those of its articles older than
    // every hit too (the newer ones are hits already).
    let (every, total) = match &title_key {
        Some(key) => {
            sql.push(", exact AS MATERIALIZED (SELECT a.id FROM articles a WHERE a.title_key = ");
            sql.push_bind(key.clone());
            sql.push(" ORDER BY a.id DESC LIMIT ");
            sql.push_bind(EXACT_TITLES);
            sql.push(format!(
                "), older AS MATERIALIZED (SELECT d.* FROM (SELECT {} FROM articles a",
                dialect::SEARCH_HIT_COLUMNS
            ));
            sql.push(" WHERE a.id IN (SELECT id FROM exact) AND a.id < (SELECT COALESCE(min(id), ");
            sql.push(i64::MAX.to_string());
            sql.push(") FROM hits)) d WHERE ");
            push_checks(&mut sql, query, viewer);
            sql.push(")");
            (
                "(SELECT * FROM candidates UNION ALL SELECT * FROM older)",
                "(SELECT count(*) FROM candidates) + (SELECT count(*) FROM older)",
            )
        }
        None => ("candidates", "(SELECT count(*) FROM candidates)"),
    };
    // The tiers look from the oldest of `candidates` on (older exact titles need none).
    dialect::search_tier_tables(&mut sql, search);
    sql.push(", ranked AS MATERIALIZED (SELECT c.id, ");
    if title_key.is_some() {
        // Above every other tier; among themselves, newest first.
        sql.push("CASE WHEN c.id IN (SELECT id FROM exact) THEN 32 ELSE ");
        dialect::search_score(&mut sql, search);
        sql.push(" END");
    } else {
        dialect::search_score(&mut sql, search);
    }
    sql.push(format!(
        " AS score FROM {every} c), page AS (SELECT id, score FROM ranked ORDER BY score DESC, id DESC LIMIT "
    ));
    sql.push_bind(limit);
    sql.push(" OFFSET ");
    sql.push_bind(start);
    sql.push(") ");
    push_listed_columns(&mut sql, viewer);
    // The snippet is cut from the body's start: a body of megabytes is not read whole for it.
    sql.push(format!(", {total} AS total, substr(a.body, 1, {SNIPPET_SOURCE_CHARS})"));
    sql.push(
        " AS body FROM page p CROSS JOIN articles a JOIN users u ON u.id = a.author_id \
         WHERE a.id = p.id ORDER BY p.score DESC, p.id DESC",
    );
    dialect::run_search(db, sql).await
}

/// What a match `d` must pass to be a candidate: not hidden, the query's filters, and (for a
/// reader who blocks anyone) not by someone they block.
fn push_checks<'a>(sql: &mut QueryBuilder<'a, Db>, query: &'a ArticleQuery, viewer: Option<i64>) {
    sql.push("d.id NOT IN (SELECT h.article_id FROM hidden_articles h)");
    for filter in query.filters() {
        push_around(sql, sql_of(filter).check, filter.value());
    }
    if query.skip_blocked {
        // A count per row, not NOT EXISTS: PostgreSQL turns that into an anti-join over
        // every candidate's article (see the shared listings.rs).
        sql.push(" AND (SELECT count(*) FROM blocks bl WHERE bl.blocker_id = ");
        sql.push_bind(viewer);
        sql.push(" AND bl.blocked_id = (SELECT ba.author_id FROM articles ba WHERE ba.id = d.id)) = 0");
    }
}
