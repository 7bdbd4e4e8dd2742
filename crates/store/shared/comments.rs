//! Comments on articles. Shared by both backends (see README.md).

use crate::Pool;
use chrono::{DateTime, Utc};
use conduit_domain::Comment;
use conduit_domain::model::{ArticleId, CommentId, UserId};
use conduit_store::moderation::{Target, TargetKind};
use conduit_store::rows::CommentRow;
use conduit_store::{DbError, Paging};

/// A page of `article`'s comments: hidden ones only for their author and moderators, and none
/// by an author the viewer blocks (unless the viewer moderates).
pub async fn list(
    db: &Pool,
    article: ArticleId,
    viewer: Option<UserId>,
    page: Paging,
) -> Result<Vec<Comment>, DbError> {
    let (article, viewer) = (article.get(), viewer.map(UserId::get));
    let (above, limit, offset) = (page.above(), page.limit, page.offset);
    let budget = conduit_store::COMMENT_PAGE_BYTES;
    // The page's candidates (`w`) by their sizes alone, a running total of them, and only the
    // rows that fit read whole: the page ends after the comment that reaches the budget
    // (`conduit_store::comment_bytes` counts alike). `octet_length` reads a value's header,
    // not the value: summing `LENGTH` read a thousand bodies to send sixteen.
    let rows = sqlx::query_as!(
        CommentRow,
        r#"SELECT c.id AS "id!", c.body, c.body_html,
                  c.created_at AS "created_at!: DateTime<Utc>", c.updated_at AS "updated_at!: DateTime<Utc>",
                  u.username, u.bio, u.image,
                  EXISTS(SELECT 1 FROM follows f WHERE f.follower_id = $2 AND f.followee_id = c.author_id)
                      AS "following!: bool",
                  c.hidden AS "hidden!: bool"
           FROM comments c JOIN users u ON u.id = c.author_id
           WHERE c.id IN (
               SELECT p.id FROM (SELECT w.id, w.size, SUM(w.size) OVER (ORDER BY w.id) AS running
                                 FROM (SELECT k.id, octet_length(k.body) + COALESCE(octet_length(k.body_html), 0)
                                                    + COALESCE(octet_length(v.bio), 0)
                                                    + COALESCE(octet_length(v.image), 0) AS size
                                       FROM comments k JOIN users v ON v.id = k.author_id
                                       WHERE k.article_id = $1 AND k.id > $3
                                         AND ((NOT k.hidden OR k.author_id = $2)
                                              AND k.author_id NOT IN (SELECT bl.blocked_id FROM blocks bl
                                                                      WHERE bl.blocker_id = $2)
                                              OR EXISTS(SELECT 1 FROM users m WHERE m.id = $2
                                                        AND m.role IN ('moderator', 'admin')))
                                       ORDER BY k.id LIMIT $4 OFFSET $5) w) p
               WHERE p.running - p.size < $6)
           ORDER BY c.id"#,
        article,
        viewer,
        above,
        limit,
        offset,
        budget
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Comment::from).collect())
}

pub async fn by_id(db: &Pool, id: CommentId, viewer: Option<UserId>) -> Result<Option<Comment>, DbError> {
    let (id, viewer) = (id.get(), viewer.map(UserId::get));
    let row = sqlx::query_as!(
        CommentRow,
        r#"SELECT c.id AS "id!", c.body, c.body_html,
                  c.created_at AS "created_at!: DateTime<Utc>", c.updated_at AS "updated_at!: DateTime<Utc>",
                  u.username, u.bio, u.image,
                  EXISTS(SELECT 1 FROM follows f WHERE f.follower_id = $2 AND f.followee_id = c.author_id)
                      AS "following!: bool",
                  c.hidden AS "hidden!: bool"
           FROM comments c JOIN users u ON u.id = c.author_id
           WHERE c.id = $1"#,
        id,
        viewer
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(Comment::from))
}

/// Inserts a comment; `held` (why) holds it for review in the same transaction
/// (`moderation::hold`).
pub async fn create(
    db: &Pool,
    article: ArticleId,
    author: UserId,
    body: &str,
    held: Option<&str>,
) -> Result<CommentId, DbError> {
    let (article, author) = (article.get(), author.get());
    let now = Utc::now();
    let html = conduit_domain::markdown::to_safe_html(body);
    let mut tx = db.begin().await?;
    let id = sqlx::query_scalar!(
        r#"INSERT INTO comments (article_id, author_id, body, body_html, created_at, updated_at)
           VALUES ($1, $2, $3, $5, $4, $4)
           RETURNING id AS "id!""#,
        article,
        author,
        body,
        now,
        html
    )
    .fetch_one(&mut *tx)
    .await?;
    let written = match held {
        // A held comment tells nobody: it is not there for them yet.
        Some(why) => {
            crate::moderation::hold(&mut tx, Target { kind: TargetKind::Comment, id }, why, now).await?;
            Vec::new()
        }
        None => crate::notifications::comment(&mut tx, article, id, author, now).await?,
    };
    tx.commit().await?;
    conduit_store::notifications::committed(written);
    Ok(CommentId::new(id))
}

pub async fn author(db: &Pool, article: ArticleId, comment: CommentId) -> Result<Option<UserId>, DbError> {
    let (article, comment) = (article.get(), comment.get());
    Ok(sqlx::query_scalar!("SELECT author_id FROM comments WHERE id = $1 AND article_id = $2", comment, article)
        .fetch_optional(db)
        .await?
        .map(UserId::new))
}

pub async fn delete(db: &Pool, comment: CommentId, author: UserId) -> Result<bool, DbError> {
    let (comment, author) = (comment.get(), author.get());
    let done =
        sqlx::query!("DELETE FROM comments WHERE id = $1 AND author_id = $2", comment, author).execute(db).await?;
    Ok(done.rows_affected() > 0)
}
