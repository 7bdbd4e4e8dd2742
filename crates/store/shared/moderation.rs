//! Moderation: reports, the queue of reported targets, a moderator's actions and their log.
//! Shared by both backends (see README.md).
//!
//! An action is one transaction: the named report is closed only if it is still open (so of
//! two moderators answering it at once, one wins and the other changes nothing), the log entry
//! is written, every open report of the target is closed with it, and the action is applied.
//! Actions on an article also touch its author's row: every instance hears of a user change
//! and acknowledges it (`conduit_store::Cache::forget`), and dropping a user drops every cached
//! article view, so a hidden article is gone from every instance before the moderator's
//! request returns.

use chrono::{DateTime, Utc};
use conduit_domain::model::UserId;
use conduit_store::moderation::*;
use conduit_store::{DbError, DeletedContent};
use sqlx::{FromRow, QueryBuilder};

use crate::account::delete_in;
use crate::outbox::write_outgoing;
use crate::{Connection, Db, Pool};

/// Files a report; `None` when the target does not exist. Fails with
/// `DbError::Conflict("report")` when the reporter already has an open report of it.
pub async fn report(db: &Pool, new: &NewReport) -> Result<Option<Report>, DbError> {
    let now = Utc::now();
    let mut tx = db.begin().await?;
    if target_of(&mut tx, new.target).await?.is_none() {
        return Ok(None);
    }
    let id = file_report(&mut tx, Some(new.reporter), new.target, new.reason, &new.details, now).await?;
    tx.commit().await?;
    Ok(Some(Report {
        id,
        target: new.target,
        reason: new.reason.to_owned(),
        details: new.details.clone(),
        state: "open".into(),
        created_at: now,
        resolved_at: None,
    }))
}

/// Holds a new article or comment for review, in the transaction that wrote it: hidden as a
/// moderator's `hide` would hide it, and in the queue with a report from no one (reason
/// `spam`) whose details say why. A moderator's `unhide` lets it out and `delete` drops it;
/// either closes the report, as for any other.
pub async fn hold(tx: &mut Connection, target: Target, details: &str, now: DateTime<Utc>) -> Result<(), DbError> {
    let id = target.id;
    match target.kind {
        TargetKind::Article => {
            sqlx::query!("INSERT INTO hidden_articles (article_id, hidden_at) VALUES ($1, $2)", id, now)
                .execute(&mut *tx)
                .await?;
        }
        TargetKind::Comment => {
            sqlx::query!("UPDATE comments SET hidden = TRUE WHERE id = $1", id).execute(&mut *tx).await?;
        }
        TargetKind::Profile | TargetKind::Mail | TargetKind::Backup => {
            return Err(DbError::Other("only articles and comments are held for review".into()));
        }
    }
    file_report(tx, None, target, "spam", details, now).await?;
    Ok(())
}

/// Writes an open report and counts it in its target's queue entry; the report's id.
async fn file_report(
    tx: &mut Connection,
    reporter: Option<UserId>,
    target: Target,
    reason: &str,
    details: &str,
    now: DateTime<Utc>,
) -> Result<i64, DbError> {
    let (kind, target, reporter) = (target.kind.as_str(), target.id, reporter.map(UserId::get));
    let id = sqlx::query_scalar!(
        r#"INSERT INTO reports (reporter_id, target_kind, target_id, reason, details, created_at)
           VALUES ($1, $2, $3, $4, $5, $6) RETURNING id AS "id!""#,
        reporter,
        kind,
        target,
        reason,
        details,
        now
    )
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO report_targets (target_kind, target_id, open_reports, first_open_id) VALUES ($1, $2, 1, $3)
         ON CONFLICT (target_kind, target_id) DO UPDATE SET
             first_open_id = CASE WHEN report_targets.open_reports = 0 THEN excluded.first_open_id
                                  ELSE report_targets.first_open_id END,
             open_reports = report_targets.open_reports + 1",
        kind,
        target,
        id
    )
    .execute(&mut *tx)
    .await?;
    Ok(id)
}

/// `reporter`'s reports, newest first, older than report id `before`.
pub async fn reports_of(db: &Pool, reporter: UserId, before: Option<i64>, limit: i64) -> Result<Vec<Report>, DbError> {
    let (reporter, before) = (reporter.get(), before.unwrap_or(i64::MAX));
    let rows = sqlx::query!(
        r#"SELECT id AS "id!", target_kind, target_id, reason, details, state,
                  created_at AS "created_at!: DateTime<Utc>", resolved_at AS "resolved_at: DateTime<Utc>"
           FROM reports WHERE reporter_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"#,
        reporter,
        before,
        limit
    )
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Report {
                id: r.id,
                target: Target { kind: kind_of(&r.target_kind)?, id: r.target_id },
                reason: r.reason,
                details: r.details,
                state: r.state,
                created_at: r.created_at,
                resolved_at: r.resolved_at,
            })
        })
        .collect()
}

/// The report queue: reported targets with open reports, by their oldest open report, after
/// report id `after`.
pub async fn queue(db: &Pool, after: Option<i64>, limit: i64) -> Result<Vec<QueueEntry>, DbError> {
    let after = after.unwrap_or(0);
    let rows = sqlx::query!(
        r#"SELECT t.target_kind, t.target_id AS "target_id!", t.open_reports AS "open_reports!",
                  t.first_open_id AS "first_open_id!", r.created_at AS "created_at!: DateTime<Utc>", r.reason, r.details,
                  CASE t.target_kind
                      WHEN 'article' THEN (SELECT a.slug FROM articles a WHERE a.id = t.target_id)
                      WHEN 'comment' THEN (SELECT a.slug FROM comments c JOIN articles a ON a.id = c.article_id
                                           WHERE c.id = t.target_id)
                      ELSE (SELECT u.username FROM users u WHERE u.id = t.target_id) END AS "label?: String",
                  CASE t.target_kind
                      WHEN 'article' THEN (SELECT u.username FROM articles a JOIN users u ON u.id = a.author_id
                                           WHERE a.id = t.target_id)
                      WHEN 'comment' THEN (SELECT u.username FROM comments c JOIN users u ON u.id = c.author_id
                                           WHERE c.id = t.target_id)
                      ELSE (SELECT u.username FROM users u WHERE u.id = t.target_id) END AS "user?: String"
           FROM report_targets t JOIN reports r ON r.id = t.first_open_id
           WHERE t.open_reports > 0 AND t.first_open_id > $1
           ORDER BY t.first_open_id LIMIT $2"#,
        after,
        limit
    )
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(QueueEntry {
                target: Target { kind: kind_of(&r.target_kind)?, id: r.target_id },
                label: r.label,
                user: r.user,
                open_reports: r.open_reports,
                first_report: r.first_open_id,
                first_reported_at: r.created_at,
                reason: r.reason,
                details: r.details,
            })
        })
        .collect()
}

/// The target as an action sees it: how it is named, and whose it is.
struct TargetRow {
    label: String,
    user_id: i64,
    username: String,
    email: String,
    role: String,
}

async fn target_of(tx: &mut Connection, target: Target) -> Result<Option<TargetRow>, DbError> {
    let id = target.id;
    Ok(match target.kind {
        TargetKind::Article => sqlx::query_as!(
            TargetRow,
            r#"SELECT a.slug AS label, u.id AS "user_id!", u.username, u.email, u.role
               FROM articles a JOIN users u ON u.id = a.author_id WHERE a.id = $1"#,
            id
        )
        .fetch_optional(&mut *tx)
        .await?,
        TargetKind::Comment => sqlx::query_as!(
            TargetRow,
            r#"SELECT a.slug || '#' || CAST(c.id AS TEXT) AS "label!: String", u.id AS "user_id!", u.username, u.email, u.role
               FROM comments c JOIN articles a ON a.id = c.article_id JOIN users u ON u.id = c.author_id
               WHERE c.id = $1"#,
            id
        )
        .fetch_optional(&mut *tx)
        .await?,
        TargetKind::Profile => sqlx::query_as!(
            TargetRow,
            r#"SELECT username AS label, id AS "user_id!", username, email, role FROM users WHERE id = $1"#,
            id
        )
        .fetch_optional(&mut *tx)
        .await?,
        // Only the admins' operations name these, in the log; nobody reports or moderates them.
        TargetKind::Mail | TargetKind::Backup => None,
    })
}

/// Takes `action` (see the module's doc).
pub async fn moderate(db: &Pool, action: &ModerationAction) -> Result<Moderated, DbError> {
    let now = Utc::now();
    let (kind, target_id) = (action.target.kind.as_str(), action.target.id);
    let applies = match action.action {
        Action::Dismiss => true,
        Action::Hide | Action::Unhide | Action::Delete => action.target.kind != TargetKind::Profile,
        Action::Suspend { .. } | Action::Unsuspend | Action::Purge => true,
    };
    if !applies {
        return Ok(Moderated::TargetGone);
    }
    let mut tx = db.begin().await?;
    let found = target_of(&mut tx, action.target).await?;
    let target = match (&found, action.action) {
        (Some(target), _) => Some(target),
        // Reports of what is gone can still be dismissed.
        (None, Action::Dismiss) => None,
        (None, _) => return Ok(Moderated::TargetGone),
    };
    if action.action.on_user() && target.is_some_and(|t| t.role != "user") {
        return Ok(Moderated::Protected);
    }
    let state = if action.action == Action::Dismiss { "dismissed" } else { "actioned" };
    if let Some(report) = action.report {
        // Waits for a concurrent answer to commit (PostgreSQL re-reads the row; SQLite has one
        // writer): whoever comes second finds it closed.
        let closed = sqlx::query!(
            "UPDATE reports SET state = $2, resolved_at = $3
             WHERE id = $1 AND state = 'open' AND target_kind = $4 AND target_id = $5",
            report,
            state,
            now,
            kind,
            target_id
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if closed == 0 {
            return Ok(Moderated::ReportClosed);
        }
    }
    let moderator_id = action.moderator.get();
    let moderator =
        sqlx::query_scalar!("SELECT username FROM users WHERE id = $1", moderator_id).fetch_one(&mut *tx).await?;
    let label = target.map_or_else(|| format!("#{target_id}"), |t| t.label.clone());
    let user = target.map(|t| t.username.clone());
    let until = match action.action {
        Action::Suspend { until } => Some(until),
        _ => None,
    };
    let verb = action.action.as_str();
    let log_id = sqlx::query_scalar!(
        r#"INSERT INTO moderation_log (at, moderator_id, moderator, action, target_kind, target_id, target, target_user,
                                       reason, until_at, report_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id AS "id!""#,
        now,
        moderator_id,
        moderator,
        verb,
        kind,
        target_id,
        label,
        user,
        action.reason,
        until,
        action.report
    )
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE reports SET state = $3, resolved_at = $4, log_id = $5
         WHERE target_kind = $1 AND target_id = $2 AND (state = 'open' OR id = $6)",
        kind,
        target_id,
        state,
        now,
        log_id,
        action.report
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE report_targets SET open_reports = 0 WHERE target_kind = $1 AND target_id = $2",
        kind,
        target_id
    )
    .execute(&mut *tx)
    .await?;
    let changed = match target {
        Some(target) => apply(&mut tx, action, target, now).await?,
        None => None,
    };
    // The author hears of what was done to their content or account (a purge leaves nobody).
    if let Some(target) = target.filter(|t| action.action.tells_author() && t.user_id != moderator_id) {
        crate::notifications::moderation(&mut tx, target.user_id, verb, &label, now).await?;
    }
    tx.commit().await?;
    let entry = LogEntry {
        id: log_id,
        at: now,
        moderator,
        action: verb.to_owned(),
        target: action.target,
        label,
        user,
        reason: action.reason.clone(),
        until,
        report: action.report,
    };
    Ok(Moderated::Done { entry: Box::new(entry), user: changed })
}

/// Applies the action to its (existing) target; whose row it changed or touched, if any.
async fn apply(
    tx: &mut Connection,
    action: &ModerationAction,
    target: &TargetRow,
    now: DateTime<Utc>,
) -> Result<Option<UserId>, DbError> {
    let (id, user) = (action.target.id, target.user_id);
    let article = action.target.kind == TargetKind::Article;
    match action.action {
        Action::Dismiss => return Ok(None),
        Action::Hide if article => {
            sqlx::query!(
                "INSERT INTO hidden_articles (article_id, hidden_at) VALUES ($1, $2) ON CONFLICT (article_id) DO NOTHING",
                id,
                now
            )
            .execute(&mut *tx)
            .await?;
        }
        Action::Unhide if article => {
            sqlx::query!("DELETE FROM hidden_articles WHERE article_id = $1", id).execute(&mut *tx).await?;
        }
        Action::Delete if article => {
            // Shown again first, so the delete counts down what it counts (see the migration).
            sqlx::query!("DELETE FROM hidden_articles WHERE article_id = $1", id).execute(&mut *tx).await?;
            sqlx::query!("DELETE FROM articles WHERE id = $1", id).execute(&mut *tx).await?;
        }
        Action::Hide | Action::Unhide => {
            let hidden = action.action == Action::Hide;
            sqlx::query!("UPDATE comments SET hidden = $2 WHERE id = $1", id, hidden).execute(&mut *tx).await?;
            // Comments are not cached: nobody to tell.
            return Ok(None);
        }
        Action::Delete => {
            sqlx::query!("DELETE FROM comments WHERE id = $1", id).execute(&mut *tx).await?;
            return Ok(None);
        }
        Action::Suspend { until } => {
            sqlx::query!(
                "UPDATE users SET suspended_until = $2, suspension_reason = $3, updated_at = $4 WHERE id = $1",
                user,
                until,
                action.reason,
                now
            )
            .execute(&mut *tx)
            .await?;
            let mut outgoing = action.outgoing.clone();
            for mail in outgoing.mails.iter_mut().filter(|mail| mail.to.is_empty()) {
                mail.to.clone_from(&target.email);
            }
            write_outgoing(tx, UserId::new(user), &outgoing).await?;
            return Ok(Some(UserId::new(user)));
        }
        Action::Unsuspend => {
            sqlx::query!(
                "UPDATE users SET suspended_until = NULL, suspension_reason = NULL, updated_at = $2 WHERE id = $1",
                user,
                now
            )
            .execute(&mut *tx)
            .await?;
            return Ok(Some(UserId::new(user)));
        }
        Action::Purge => {
            delete_in(tx, UserId::new(user), None, DeletedContent::Delete, &action.outgoing).await?;
            return Ok(Some(UserId::new(user)));
        }
    }
    // An article changed: its author's row is touched so that every instance drops its cached
    // views (see the module's doc).
    sqlx::query!("UPDATE users SET updated_at = updated_at WHERE id = $1", user).execute(&mut *tx).await?;
    Ok(Some(UserId::new(user)))
}

#[derive(FromRow)]
struct LogRow {
    id: i64,
    at: DateTime<Utc>,
    moderator: String,
    action: String,
    target_kind: String,
    target_id: i64,
    target: String,
    target_user: Option<String>,
    reason: String,
    until_at: Option<i64>,
    report_id: Option<i64>,
}

/// The log, newest first, by the filters of `query` (each has its index, led by it).
pub async fn log(db: &Pool, query: &LogQuery) -> Result<Vec<LogEntry>, DbError> {
    let mut sql = QueryBuilder::<Db>::new(
        "SELECT id, at, moderator, action, target_kind, target_id, target, target_user, reason, until_at, report_id \
         FROM moderation_log WHERE id < ",
    );
    sql.push_bind(query.before.unwrap_or(i64::MAX));
    if let Some(target) = query.target {
        sql.push(" AND target_kind = ");
        sql.push_bind(target.kind.as_str());
        sql.push(" AND target_id = ");
        sql.push_bind(target.id);
    }
    if !query.operations {
        sql.push(" AND target_kind IN ('article', 'comment', 'profile')");
    }
    if let Some(moderator) = &query.moderator {
        sql.push(" AND moderator_id = (SELECT id FROM users WHERE username = ");
        sql.push_bind(moderator.as_str());
        sql.push(")");
    }
    if let Some(action) = query.action {
        sql.push(" AND action = ");
        sql.push_bind(action);
    }
    sql.push(" ORDER BY id DESC LIMIT ");
    sql.push_bind(query.limit);
    let rows: Vec<LogRow> = sql.build_query_as().fetch_all(db).await?;
    rows.into_iter()
        .map(|r| {
            Ok(LogEntry {
                id: r.id,
                at: r.at,
                moderator: r.moderator,
                action: r.action,
                target: Target { kind: kind_of(&r.target_kind)?, id: r.target_id },
                label: r.target,
                user: r.target_user,
                reason: r.reason,
                until: r.until_at,
                report: r.report_id,
            })
        })
        .collect()
}

fn kind_of(raw: &str) -> Result<TargetKind, DbError> {
    TargetKind::parse(raw).ok_or_else(|| DbError::Other(format!("unknown moderation target kind '{raw}'")))
}
