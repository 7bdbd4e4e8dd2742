//! Moderation as the stores keep it: reports, the queue of reported targets, the actions a
//! moderator takes and the append-only log of them (README "Moderation").

use chrono::{DateTime, Utc};
use conduit_domain::model::UserId;

use crate::Outgoing;

/// What a report or an action is about. Reports and moderators' actions are about articles,
/// comments and profiles; the log also holds admins' operations on mail and backups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetKind {
    Article,
    Comment,
    Profile,
    /// An outbox message (id 0: every dead one).
    Mail,
    /// A backup file (id 0; the label is its name).
    Backup,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Article => "article",
            TargetKind::Comment => "comment",
            TargetKind::Profile => "profile",
            TargetKind::Mail => "mail",
            TargetKind::Backup => "backup",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "article" => Some(TargetKind::Article),
            "comment" => Some(TargetKind::Comment),
            "profile" => Some(TargetKind::Profile),
            "mail" => Some(TargetKind::Mail),
            "backup" => Some(TargetKind::Backup),
            _ => None,
        }
    }
}

/// An article, comment or profile, by its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Target {
    pub kind: TargetKind,
    pub id: i64,
}

/// The short list a reporter picks from (details are free text beside it).
pub const REPORT_REASONS: [&str; 4] = ["spam", "harassment", "illegal", "other"];

/// The longest free text a report or an action's reason may carry, in characters.
pub const MAX_REASON_CHARS: usize = 1000;

/// A report to file.
#[derive(Debug, Clone)]
pub struct NewReport {
    pub reporter: UserId,
    pub target: Target,
    /// One of [`REPORT_REASONS`].
    pub reason: &'static str,
    pub details: String,
}

/// A report as its reporter sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub id: i64,
    pub target: Target,
    pub reason: String,
    pub details: String,
    /// `open`, `dismissed` or `actioned`.
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// One entry of the report queue: a reported target with its open reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    pub target: Target,
    /// The article's slug, the comment's article slug, or the username; `None` once it is gone.
    pub label: Option<String>,
    /// The author of the article or comment, or the profile's user; `None` once gone.
    pub user: Option<String>,
    pub open_reports: i64,
    /// The oldest open report: the queue's order and its cursor.
    pub first_report: i64,
    pub first_reported_at: DateTime<Utc>,
    pub reason: String,
    pub details: String,
}

/// What a moderator does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Closes the target's open reports; nothing else changes.
    Dismiss,
    /// An article or comment: gone for everyone but its author and moderators.
    Hide,
    Unhide,
    /// An article or comment, for good.
    Delete,
    /// The target's user (the profile, or the author of the article or comment) may not write
    /// until then (Unix seconds).
    Suspend {
        until: i64,
    },
    Unsuspend,
    /// The target's user and everything they wrote, deleted at once.
    Purge,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Dismiss => "dismiss",
            Action::Hide => "hide",
            Action::Unhide => "unhide",
            Action::Delete => "delete",
            Action::Suspend { .. } => "suspend",
            Action::Unsuspend => "unsuspend",
            Action::Purge => "purge",
        }
    }

    /// Whether the target's author is notified of it: every action but a dismissal (nothing
    /// changed) and a purge (nobody left to tell).
    pub fn tells_author(self) -> bool {
        !matches!(self, Action::Dismiss | Action::Purge)
    }

    /// Whether it acts on the target's user rather than on an article or comment.
    pub fn on_user(self) -> bool {
        matches!(self, Action::Suspend { .. } | Action::Unsuspend | Action::Purge)
    }
}

/// The log's kinds, for filtering.
pub const ACTIONS: [&str; 7] = ["dismiss", "hide", "unhide", "delete", "suspend", "unsuspend", "purge"];

/// What the moderation log holds: the moderators' actions, the admins' changes to accounts (a
/// role given, a deactivation, a reactivation; `Store::set_account`) and their operations (dead
/// mail requeued, `Store::retry_mail`; a backup taken, verified, downloaded,
/// `Store::log_backup`).
pub const LOGGED_ACTIONS: [&str; 14] = [
    "dismiss",
    "hide",
    "unhide",
    "delete",
    "suspend",
    "unsuspend",
    "purge",
    "role",
    "deactivate",
    "reactivate",
    "requeue",
    "backup",
    "verify",
    "download",
];

/// What an admin did with a backup file, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupAction {
    /// Asked for one now (the file is named when it is written).
    Take,
    Verify,
    Download,
}

impl BackupAction {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupAction::Take => "backup",
            BackupAction::Verify => "verify",
            BackupAction::Download => "download",
        }
    }
}

/// An action to take, in one transaction with its log entry and the reports it answers.
#[derive(Debug, Clone)]
pub struct ModerationAction {
    pub moderator: UserId,
    pub action: Action,
    pub target: Target,
    pub reason: String,
    /// The report it answers: it must still be open (two moderators answering one report: one
    /// wins). Every open report of the target is closed with it either way.
    pub report: Option<i64>,
    /// Mail it sends (a suspension's notice), written in the same transaction. A mail without
    /// a recipient goes to the target's user (whose address the caller need not know).
    pub outgoing: Outgoing,
}

/// How an action went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moderated {
    /// Done, and logged. `user` is whose account or content it changed.
    Done { entry: Box<LogEntry>, user: Option<UserId> },
    /// The article, comment or user is gone (or the action does not apply to its kind).
    TargetGone,
    /// The report named is not open any more (another moderator answered it: the log says
    /// how), or it is about another target. Nothing changed.
    ReportClosed,
    /// Suspending or purging a moderator or admin: an admin must change their role first.
    Protected,
}

/// One action of the moderation log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub moderator: String,
    pub action: String,
    pub target: Target,
    /// The target as it was named then (slug, comment id, username).
    pub label: String,
    /// Whose content or account it was.
    pub user: Option<String>,
    pub reason: String,
    /// A suspension's end (Unix seconds).
    pub until: Option<i64>,
    pub report: Option<i64>,
}

/// Which log entries to read: newest first, older than `before` (an entry id).
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub target: Option<Target>,
    /// With the admins' operations on mail and backups; without, only what was done to
    /// content and accounts (the public log).
    pub operations: bool,
    pub moderator: Option<String>,
    pub action: Option<&'static str>,
    pub before: Option<i64>,
    pub limit: i64,
}
