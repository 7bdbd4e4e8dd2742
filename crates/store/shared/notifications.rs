//! Notifications. Shared by both backends (see README.md).
//!
//! Written by the transaction of what causes them (a follow, a comment, a favorite, a
//! moderator's action): none to oneself, none from someone the recipient blocks. Read back by
//! id: a person's inbox newest first, and the whole table's tail oldest first for the streams
//! (`conduit_store::notifications`).

use chrono::{DateTime, Utc};
use conduit_domain::model::UserId;
use conduit_store::DbError;
use conduit_store::notifications::{
    Actor, KEEP_PER_USER, Kind, Notification, REPLAY_ARTICLES, REPLY_FANOUT_COMMENTS, Resume, TRIM_EVERY, Tailed,
    Written, stored_time,
};

use crate::{Connection, Pool};

/// Where the age limit's sweep records the newest id it dropped (a stream resuming from before
/// it may have missed something); a person's trim records theirs under their id.
const PRUNED: &str = "notifications_pruned";
const TRIMMED: &str = "notifications_trimmed";

/// Tells `followee` of a new follower (once per follower, while an earlier notice of it is kept).
/// Each of these writers gives back what it wrote, for its caller to hand on once committed
/// (`conduit_store::notifications::committed`).
pub async fn follow(
    tx: &mut Connection,
    follower: i64,
    followee: i64,
    now: DateTime<Utc>,
) -> Result<Vec<Written>, DbError> {
    let now = stored_time(now);
    let written = sqlx::query_scalar!(
        r#"INSERT INTO notifications (user_id, kind, actor_id, created_at)
           SELECT CAST($1 AS BIGINT), 'follow', CAST($2 AS BIGINT), $3
           WHERE $1 <> $2
             AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.user_id = $1 AND n.kind = 'follow' AND n.actor_id = $2)
             AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = $1 AND b.blocked_id = $2)
           RETURNING id AS "id!""#,
        followee,
        follower,
        now
    )
    .fetch_optional(&mut *tx)
    .await?;
    trim_if_due(tx, written.map(|id| (id, followee))).await?;
    Ok(written.map(|id| written_to(id, followee, Kind::Follow, 0, now)).into_iter().collect())
}

fn written_to(id: i64, user: i64, kind: Kind, others: i64, created_at: DateTime<Utc>) -> Written {
    Written { id, user: UserId::new(user), kind, others, created_at }
}

/// Tells the article's author of a comment, and the authors of its latest
/// [`REPLY_FANOUT_COMMENTS`] comments of a reply.
pub async fn comment(
    tx: &mut Connection,
    article: i64,
    comment: i64,
    author: i64,
    now: DateTime<Utc>,
) -> Result<Vec<Written>, DbError> {
    let now = stored_time(now);
    let to_author = sqlx::query!(
        r#"INSERT INTO notifications (user_id, kind, actor_id, article_id, comment_id, created_at)
           SELECT a.author_id, 'comment', CAST($2 AS BIGINT), CAST($1 AS BIGINT), CAST($3 AS BIGINT), $4
           FROM articles a
           WHERE a.id = $1 AND a.author_id <> $2
             AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = a.author_id AND b.blocked_id = $2)
           RETURNING id AS "id!", user_id AS "user_id!""#,
        article,
        author,
        comment,
        now
    )
    .fetch_all(&mut *tx)
    .await?;
    let fanout = REPLY_FANOUT_COMMENTS;
    let replies = sqlx::query!(
        r#"INSERT INTO notifications (user_id, kind, actor_id, article_id, comment_id, created_at)
           SELECT c.author_id, 'reply', CAST($2 AS BIGINT), CAST($1 AS BIGINT), CAST($3 AS BIGINT), $4
           FROM (SELECT DISTINCT l.author_id
                 FROM (SELECT author_id FROM comments WHERE article_id = $1 AND id < $3 ORDER BY id DESC LIMIT $5) l) c
           WHERE c.author_id <> $2
             AND c.author_id <> (SELECT author_id FROM articles WHERE id = $1)
             AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = c.author_id AND b.blocked_id = $2)
           RETURNING id AS "id!", user_id AS "user_id!""#,
        article,
        author,
        comment,
        now,
        fanout
    )
    .fetch_all(&mut *tx)
    .await?;
    let written: Vec<Written> = (to_author.into_iter().map(|r| written_to(r.id, r.user_id, Kind::Comment, 0, now)))
        .chain(replies.into_iter().map(|r| written_to(r.id, r.user_id, Kind::Reply, 0, now)))
        .collect();
    for w in &written {
        trim_if_due(tx, Some((w.id, w.user.get()))).await?;
    }
    Ok(written)
}

/// Tells the article's author of a favorite. Favorites not yet read are one notice: the newest
/// favoriter and how many others, written again (with a new id) for each new favoriter.
pub async fn favorite(
    tx: &mut Connection,
    user: i64,
    article: i64,
    now: DateTime<Utc>,
) -> Result<Vec<Written>, DbError> {
    let now = stored_time(now);
    let Some(author) = sqlx::query_scalar!(
        r#"SELECT a.author_id AS "author!" FROM articles a
           WHERE a.id = $1 AND a.author_id <> $2
             AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = a.author_id AND b.blocked_id = $2)"#,
        article,
        user
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(Vec::new());
    };
    let unread = sqlx::query!(
        r#"SELECT id AS "id!", others AS "others!", actor_id FROM notifications
           WHERE user_id = $1 AND kind = 'favorite' AND article_id = $2 AND read_at IS NULL"#,
        author,
        article
    )
    .fetch_optional(&mut *tx)
    .await?;
    let others = match unread {
        // Favorited, unfavorited, favorited again: nothing new to tell.
        Some(group) if group.actor_id == Some(user) => return Ok(Vec::new()),
        Some(group) => {
            sqlx::query!("DELETE FROM notifications WHERE id = $1", group.id).execute(&mut *tx).await?;
            group.others + 1
        }
        None => 0,
    };
    let id = sqlx::query_scalar!(
        r#"INSERT INTO notifications (user_id, kind, actor_id, article_id, others, created_at)
           VALUES ($1, 'favorite', $2, $3, $4, $5) RETURNING id AS "id!""#,
        author,
        user,
        article,
        others,
        now
    )
    .fetch_one(&mut *tx)
    .await?;
    trim_if_due(tx, Some((id, author))).await?;
    Ok(vec![written_to(id, author, Kind::Favorite, others, now)])
}

/// Tells `user` of a moderator's `action` on what the moderation log calls `detail`.
pub async fn moderation(
    tx: &mut Connection,
    user: i64,
    action: &str,
    detail: &str,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let now = stored_time(now);
    let id = sqlx::query_scalar!(
        r#"INSERT INTO notifications (user_id, kind, action, detail, created_at)
           VALUES ($1, 'moderation', $2, $3, $4) RETURNING id AS "id!""#,
        user,
        action,
        detail,
        now
    )
    .fetch_one(&mut *tx)
    .await?;
    trim_if_due(tx, Some((id, user))).await
}

/// Tells the author's followers of a new article: one row, read back for each follower (the
/// streams only; it is born read, out of every inbox and unread count).
pub async fn published(
    tx: &mut Connection,
    author: i64,
    article: i64,
    now: DateTime<Utc>,
) -> Result<Vec<Written>, DbError> {
    let now = stored_time(now);
    let id = sqlx::query_scalar!(
        r#"INSERT INTO notifications (user_id, kind, actor_id, article_id, created_at, read_at)
           VALUES (NULL, 'article', $1, $2, $3, $3) RETURNING id AS "id!""#,
        author,
        article,
        now
    )
    .fetch_one(&mut *tx)
    .await?;
    Ok(vec![written_to(id, author, Kind::Article, 0, now)])
}

/// Who follows `author` (whose streams a new article of theirs goes to).
pub async fn followers(db: &Pool, author: UserId) -> Result<Vec<UserId>, DbError> {
    let author = author.get();
    let ids = sqlx::query_scalar!(r#"SELECT follower_id AS "id!" FROM follows WHERE followee_id = $1"#, author)
        .fetch_all(db)
        .await?;
    Ok(ids.into_iter().map(UserId::new).collect())
}

/// `blocker` blocked `blocked`: what `blocked` caused in `blocker`'s inbox goes.
pub async fn forget_blocked(tx: &mut Connection, blocker: i64, blocked: i64) -> Result<(), DbError> {
    sqlx::query!("DELETE FROM notifications WHERE user_id = $1 AND actor_id = $2", blocker, blocked)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Trims the recipient of notification `written` to [`KEEP_PER_USER`] when its id says so
/// (see [`TRIM_EVERY`]), recording the newest id dropped for their stream's resumption.
async fn trim_if_due(tx: &mut Connection, written: Option<(i64, i64)>) -> Result<(), DbError> {
    let Some((_, user)) = written.filter(|(id, _)| id % TRIM_EVERY == 0) else {
        return Ok(());
    };
    let keep = KEEP_PER_USER;
    let dropped = sqlx::query_scalar!(
        r#"DELETE FROM notifications
           WHERE user_id = $1
             AND id <= (SELECT id FROM notifications WHERE user_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)
           RETURNING id AS "id!""#,
        user,
        keep
    )
    .fetch_all(&mut *tx)
    .await?;
    if let Some(newest) = dropped.into_iter().max() {
        record_dropped(tx, TRIMMED, &user.to_string(), newest).await?;
    }
    Ok(())
}

async fn record_dropped(tx: &mut Connection, kind: &str, key: &str, newest: i64) -> Result<(), DbError> {
    sqlx::query!(
        "INSERT INTO counts (kind, key, stripe, n) VALUES ($1, $2, 0, $3)
         ON CONFLICT (kind, key, stripe) DO UPDATE SET n = CASE WHEN excluded.n > counts.n THEN excluded.n ELSE counts.n END",
        kind,
        key,
        newest
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// One notification as read (the view `notifications_read`), with whether what it names still
/// exists (`shown`).
struct Row {
    id: i64,
    user_id: Option<i64>,
    actor_id: Option<i64>,
    kind: String,
    actor: Option<String>,
    actor_image: Option<String>,
    slug: Option<String>,
    title: Option<String>,
    comment_id: Option<i64>,
    excerpt: Option<String>,
    others: i64,
    action: Option<String>,
    detail: Option<String>,
    created_at: DateTime<Utc>,
    read: bool,
    shown: bool,
}

impl Row {
    fn into_notification(self) -> Option<Notification> {
        if !self.shown {
            return None;
        }
        Some(Notification {
            id: self.id,
            user: UserId::new(self.user_id.or(self.actor_id)?),
            kind: Kind::parse(&self.kind)?,
            actor: self.actor.map(|username| Actor { username, image: self.actor_image }),
            article: self.slug.zip(self.title),
            comment: self.comment_id.zip(self.excerpt),
            others: self.others,
            action: self.action,
            detail: self.detail,
            created_at: self.created_at,
            read: self.read,
        })
    }
}

/// A page of `user`'s notifications, newest first, older than `before`, and where the next page
/// starts (the last id read, when `limit` rows were read).
pub async fn page(
    db: &Pool,
    user: UserId,
    before: Option<i64>,
    limit: i64,
) -> Result<(Vec<Notification>, Option<i64>), DbError> {
    let (user, before) = (user.get(), before.unwrap_or(i64::MAX));
    // Skipped rows (whose article or actor is gone) are read and dropped: a page may come out
    // short, which is why the next page starts from the last id read, not the last shown.
    let rows = sqlx::query_as!(
        Row,
        r#"SELECT id AS "id!", user_id AS "user_id?", actor_id AS "actor_id?", kind AS "kind!", actor AS "actor?", actor_image AS "actor_image?",
                  slug AS "slug?", title AS "title?", comment_id AS "comment_id?", excerpt AS "excerpt?: String", others AS "others!",
                  action AS "action?", detail AS "detail?", created_at AS "created_at!: DateTime<Utc>",
                  is_read AS "read!: bool", shown AS "shown!: bool"
           FROM notifications_read
           WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"#,
        user,
        before,
        limit
    )
    .fetch_all(db)
    .await?;
    let full = i64::try_from(rows.len()).is_ok_and(|n| n == limit);
    let next = rows.last().map(|r| r.id).filter(|_| full);
    Ok((rows.into_iter().filter_map(Row::into_notification).collect(), next))
}

/// `user`'s notifications after `after`, up to `through`, oldest first, with the new articles
/// of the authors they follow: what a stream that resumes from `after` missed. `None` when more
/// than [`REPLAY_ARTICLES`] new articles were missed, or `limit` of their own.
pub async fn replay(
    db: &Pool,
    user: UserId,
    after: i64,
    through: i64,
    limit: i64,
) -> Result<Option<Vec<Tailed>>, DbError> {
    let mut missed = personal(db, user, after, through, limit).await?;
    if missed.len() as i64 >= limit {
        // More than a person keeps: what was missed is not all there (see `trim_if_due`).
        return Ok(None);
    }
    let (reader, most) = (user.get(), REPLAY_ARTICLES + 1);
    let articles = sqlx::query_as!(
        Row,
        r#"SELECT id AS "id!", user_id AS "user_id?", actor_id AS "actor_id?", kind AS "kind!", actor AS "actor?",
                  actor_image AS "actor_image?", slug AS "slug?", title AS "title?", comment_id AS "comment_id?",
                  excerpt AS "excerpt?: String", others AS "others!", action AS "action?", detail AS "detail?",
                  created_at AS "created_at!: DateTime<Utc>", is_read AS "read!: bool", shown AS "shown!: bool"
           FROM notifications_read
           WHERE user_id IS NULL AND id > $2 AND id <= $3
             AND actor_id IN (SELECT followee_id FROM follows WHERE follower_id = $1)
           ORDER BY id LIMIT $4"#,
        reader,
        after,
        through,
        most
    )
    .fetch_all(db)
    .await?;
    if articles.len() as i64 == most {
        return Ok(None);
    }
    missed.extend(articles.into_iter().map(|r| (r.id, r.into_notification())));
    missed.sort_by_key(|(id, _)| *id);
    Ok(Some(missed))
}

/// `user`'s own notifications after `after` up to `through`, oldest first (at most
/// [`KEEP_PER_USER`] and a few are kept, so a `limit` above that reads them all).
async fn personal(db: &Pool, user: UserId, after: i64, through: i64, limit: i64) -> Result<Vec<Tailed>, DbError> {
    let user = user.get();
    let rows = sqlx::query_as!(
        Row,
        r#"SELECT id AS "id!", user_id AS "user_id?", actor_id AS "actor_id?", kind AS "kind!", actor AS "actor?", actor_image AS "actor_image?",
                  slug AS "slug?", title AS "title?", comment_id AS "comment_id?", excerpt AS "excerpt?: String", others AS "others!",
                  action AS "action?", detail AS "detail?", created_at AS "created_at!: DateTime<Utc>",
                  is_read AS "read!: bool", shown AS "shown!: bool"
           FROM notifications_read
           WHERE user_id = $1 AND id > $2 AND id <= $3 ORDER BY id LIMIT $4"#,
        user,
        after,
        through,
        limit
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.into_notification())).collect())
}

/// Every notification after `after`, oldest first: what the streams are fed from.
pub async fn tail(db: &Pool, after: i64, limit: i64) -> Result<Vec<Tailed>, DbError> {
    let rows = sqlx::query_as!(
        Row,
        r#"SELECT id AS "id!", user_id AS "user_id?", actor_id AS "actor_id?", kind AS "kind!", actor AS "actor?", actor_image AS "actor_image?",
                  slug AS "slug?", title AS "title?", comment_id AS "comment_id?", excerpt AS "excerpt?: String", others AS "others!",
                  action AS "action?", detail AS "detail?", created_at AS "created_at!: DateTime<Utc>",
                  is_read AS "read!: bool", shown AS "shown!: bool"
           FROM notifications_read
           WHERE id > $1 ORDER BY id LIMIT $2"#,
        after,
        limit
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.into_notification())).collect())
}

/// The newest notification's id (0 when there is none): where a new stream starts.
pub async fn newest(db: &Pool) -> Result<i64, DbError> {
    Ok(sqlx::query_scalar!(r#"SELECT CAST(COALESCE(max(id), 0) AS BIGINT) AS "id!: i64" FROM notifications"#)
        .fetch_one(db)
        .await?)
}

/// Whether everything of `user`'s after `last` is still kept.
pub async fn resume(db: &Pool, user: UserId, last: i64) -> Result<Resume, DbError> {
    let key = user.get().to_string();
    let dropped = sqlx::query_scalar!(
        r#"SELECT CAST(COALESCE(max(n), 0) AS BIGINT) AS "n!: i64" FROM counts
           WHERE (kind = $1 AND key = '') OR (kind = $2 AND key = $3)"#,
        PRUNED,
        TRIMMED,
        key
    )
    .fetch_one(db)
    .await?;
    Ok(if last < dropped { Resume::TooOld } else { Resume::Exact })
}

/// How many of `user`'s notifications are unread (and shown).
pub async fn unread(db: &Pool, user: UserId) -> Result<i64, DbError> {
    let user = user.get();
    Ok(sqlx::query_scalar!(
        r#"SELECT CAST(count(*) AS BIGINT) AS "n!: i64" FROM notifications_read
           WHERE user_id = $1 AND NOT is_read AND shown"#,
        user
    )
    .fetch_one(db)
    .await?)
}

/// Marks `user`'s notification `id` read; false when they have no such notification.
pub async fn mark_read(db: &Pool, user: UserId, id: i64) -> Result<bool, DbError> {
    let (user, now) = (user.get(), Utc::now());
    let found = sqlx::query!(
        "UPDATE notifications SET read_at = COALESCE(read_at, $3) WHERE user_id = $1 AND id = $2",
        user,
        id,
        now
    )
    .execute(db)
    .await?;
    Ok(found.rows_affected() > 0)
}

/// Marks `user`'s notifications up to `through` read (all when `None`): a client passes the
/// newest it showed, so one that arrived meanwhile stays unread. How many it marked.
pub async fn mark_all_read(db: &Pool, user: UserId, through: Option<i64>) -> Result<u64, DbError> {
    let (user, through, now) = (user.get(), through.unwrap_or(i64::MAX), Utc::now());
    let done = sqlx::query!(
        "UPDATE notifications SET read_at = $3 WHERE user_id = $1 AND read_at IS NULL AND id <= $2",
        user,
        through,
        now
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Drops notifications written before `before`, oldest first, in batches of `batch`; how many.
/// Ids grow with time, so the first id new enough bounds the walk.
pub async fn prune(db: &Pool, before: DateTime<Utc>, batch: i64) -> Result<u64, DbError> {
    let first_kept = sqlx::query_scalar!(
        r#"SELECT id AS "id!" FROM notifications WHERE created_at >= $1 ORDER BY id LIMIT 1"#,
        before
    )
    .fetch_optional(db)
    .await?
    .unwrap_or(i64::MAX);
    let mut dropped = 0;
    loop {
        let mut tx = db.begin().await?;
        let ids = sqlx::query_scalar!(
            r#"DELETE FROM notifications
               WHERE id IN (SELECT id FROM notifications WHERE id < $1 ORDER BY id LIMIT $2)
               RETURNING id AS "id!""#,
            first_kept,
            batch
        )
        .fetch_all(&mut *tx)
        .await?;
        let Some(newest) = ids.iter().copied().max() else {
            return Ok(dropped);
        };
        record_dropped(&mut tx, PRUNED, "", newest).await?;
        tx.commit().await?;
        dropped += ids.len() as u64;
    }
}
