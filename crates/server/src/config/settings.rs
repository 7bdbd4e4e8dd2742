//! The settings, grouped by what they govern. Each field is one setting: its flag, variable,
//! file key, default, validation and `--help` line are its declaration (see the module above).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, FromArgMatches};

use super::values::{
    DeletedContentPolicy, IpNet, SmtpUrl, UnverifiedPolicy, ip_net, origin, positive, public_url, seconds, smtp_url,
    whole,
};

/// Password hashes that may wait per core by default: at ~20 ms a hash, about a second's wait.
pub const DEFAULT_HASH_QUEUE_PER_CORE: usize = 32;

/// The edge: how much a request may take (time, body, concurrency), CORS, gzip, proxies, cookies.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct HttpSettings {
    /// Seconds before a request is answered 503
    #[arg(id = "request_timeout_secs", long = "request-timeout-secs", env = "CONDUIT_REQUEST_TIMEOUT",
        value_name = "SECONDS", default_value = "30", value_parser = seconds)]
    pub request_timeout: Duration,
    /// Requests handled at once; more are shed with 503 and Retry-After
    #[arg(long, env = "CONDUIT_MAX_CONCURRENCY", value_name = "N", default_value = "1024", value_parser = positive::<usize>)]
    pub max_concurrency: usize,
    /// Requests one client address (an IPv6 /64) may have in flight, its body's arrival
    /// included; more get 429 at once
    #[arg(long, env = "CONDUIT_MAX_REQUESTS_PER_ADDRESS", value_name = "N", default_value = "32",
        value_parser = positive::<usize>)]
    pub max_requests_per_address: usize,
    /// Connections one client address may hold open; more are closed as they are accepted.
    /// Trusted proxies are exempt (their clients are counted by request instead)
    #[arg(long, env = "CONDUIT_MAX_CONNECTIONS_PER_ADDRESS", value_name = "N", default_value = "128",
        value_parser = positive::<usize>)]
    pub max_connections_per_address: usize,
    /// Largest request body in bytes; bigger gets 413
    #[arg(id = "body_limit_bytes", long = "body-limit-bytes", env = "CONDUIT_BODY_LIMIT", value_name = "BYTES",
        default_value = "1048576", value_parser = positive::<usize>)]
    pub body_limit: usize,
    /// Seconds a client has to send a request body once its headers arrived; slower gets 408
    #[arg(id = "body_timeout_secs", long = "body-timeout-secs", env = "CONDUIT_BODY_TIMEOUT",
        value_name = "SECONDS", default_value = "10", value_parser = seconds)]
    pub body_timeout: Duration,
    /// Comma-separated scheme://host[:port] origins allowed by CORS [default: none, and no CORS layer]
    #[arg(long, env = "CONDUIT_ALLOWED_ORIGINS", value_name = "ORIGINS", value_delimiter = ',', value_parser = origin)]
    pub allowed_origins: Vec<String>,
    /// gzip responses for clients that accept it: true or false
    #[arg(long, env = "CONDUIT_GZIP", value_name = "BOOL", default_value = "true", action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new())]
    pub gzip: bool,
    /// Comma-separated IPs or CIDR blocks of proxies whose X-Forwarded-For and -Proto are believed
    #[arg(long, env = "CONDUIT_TRUSTED_PROXIES", value_name = "NETS", value_delimiter = ',', value_parser = ip_net)]
    pub trusted_proxies: Vec<IpNet>,
    /// Mark the session cookie Secure always, not only on requests that came over HTTPS
    #[arg(long, env = "CONDUIT_SECURE_COOKIES", value_name = "BOOL", default_value = "false", action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new())]
    pub secure_cookies: bool,
}

/// Rate limits: logins, registrations and mail per account, address and recipient, and the
/// queue in front of password hashing.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct LimitSettings {
    /// Failed logins allowed per account from one client address each minute (ten times as many
    /// per account over all addresses, and per address over all accounts)
    #[arg(id = "login_attempts_per_minute", long = "login-attempts-per-minute", env = "CONDUIT_LOGIN_ATTEMPTS",
        value_name = "N", default_value = "10", value_parser = clap::value_parser!(u32).range(1..))]
    pub login_attempts_per_minute: u32,
    /// Registrations, successful or not, per client address each hour
    #[arg(long, env = "CONDUIT_REGISTRATIONS_PER_HOUR", value_name = "N", default_value = "20", value_parser = clap::value_parser!(u32).range(1..))]
    pub registrations_per_hour: u32,
    /// Mails each hour one recipient can be sent by the mailing endpoints (verification,
    /// reset); ten times as many per client address
    #[arg(long, env = "CONDUIT_MAILS_PER_HOUR", value_name = "N", default_value = "5", value_parser = clap::value_parser!(u32).range(1..))]
    pub mails_per_hour: u32,
    /// Articles one account may publish each hour
    #[arg(long, env = "CONDUIT_ARTICLES_PER_HOUR", value_name = "N", default_value = "30", value_parser = clap::value_parser!(u32).range(1..))]
    pub articles_per_hour: u32,
    /// Comments one account may post each minute
    #[arg(long, env = "CONDUIT_COMMENTS_PER_MINUTE", value_name = "N", default_value = "10", value_parser = clap::value_parser!(u32).range(1..))]
    pub comments_per_minute: u32,
    /// Reports one account may file each hour
    #[arg(long, env = "CONDUIT_REPORTS_PER_HOUR", value_name = "N", default_value = "20", value_parser = clap::value_parser!(u32).range(1..))]
    pub reports_per_hour: u32,
    /// Hours an account stays new: until then (and while its address is unverified) it
    /// publishes and comments under the tighter new-account limits. 0: only unverified
    /// accounts are new
    #[arg(long, env = "CONDUIT_NEW_ACCOUNT_HOURS", value_name = "HOURS", default_value = "24")]
    pub new_account_hours: u32,
    /// Articles a new account may publish each hour [default: a third of articles-per-hour,
    /// at least 1]
    #[arg(long, env = "CONDUIT_NEW_ACCOUNT_ARTICLES_PER_HOUR", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub new_account_articles: Option<u32>,
    /// Comments a new account may post each hour [default: comments-per-minute × 6]
    #[arg(long, env = "CONDUIT_NEW_ACCOUNT_COMMENTS_PER_HOUR", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub new_account_comments: Option<u32>,
    /// A new account's article or comment naming this many web addresses or more is held for
    /// review: stored hidden, with a report in the moderators' queue. 0: nothing is held
    #[arg(long, env = "CONDUIT_NEW_ACCOUNT_HOLD_LINKS", value_name = "N", default_value = "3")]
    pub new_account_hold_links: u32,
    /// Exports (GET /api/user/export) one account may ask for each hour
    #[arg(long, env = "CONDUIT_EXPORTS_PER_HOUR", value_name = "N", default_value = "10", value_parser = clap::value_parser!(u32).range(1..))]
    pub exports_per_hour: u32,
    /// Seconds one export may stream; a client that reads it slower is cut off then, and its
    /// place among the exports streaming at once is given back even while its connection stalls
    #[arg(id = "export_timeout_secs", long = "export-timeout-secs", env = "CONDUIT_EXPORT_TIMEOUT",
        value_name = "SECONDS", default_value = "300", value_parser = seconds)]
    pub export_timeout: Duration,
    /// Password hashes that may wait for a free core; more get 503 at once. Below
    /// max_concurrency [default: 32 per core, at most half of max_concurrency]
    #[arg(long, env = "CONDUIT_HASH_QUEUE", value_name = "N", value_parser = whole::<usize>)]
    pub hash_queue: Option<usize>,
}

/// Account policy: re-authentication, unverified addresses, what a deletion leaves behind.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct AccountSettings {
    /// Seconds after a login in which its token or session may change the email or password
    /// without currentPassword
    #[arg(id = "reauth_window_secs", long = "reauth-window-secs", env = "CONDUIT_REAUTH_WINDOW",
        value_name = "SECONDS", default_value = "600", value_parser = seconds)]
    pub reauth_window: Duration,
    /// What becomes of a deleted account's articles and comments: delete, or keep (shown
    /// under the author "[deleted]")
    #[arg(long, env = "CONDUIT_DELETED_CONTENT", value_name = "POLICY", default_value = "delete", value_enum)]
    pub deleted_content: DeletedContentPolicy,
    /// What users whose email is not verified may do: all (like anyone), read (log in, but
    /// change nothing except their own account), or none (cannot log in)
    #[arg(long, env = "CONDUIT_UNVERIFIED_USERS", value_name = "POLICY", default_value = "all", value_enum)]
    pub unverified_users: UnverifiedPolicy,
    /// Whether every signed-in user may read the moderation log (GET /api/moderation/log),
    /// without the moderators' names; moderators always see it whole
    #[arg(long, env = "CONDUIT_PUBLIC_MODERATION_LOG", value_name = "BOOL", default_value = "false",
        action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub public_moderation_log: bool,
    /// Days a notification is kept (besides the newest 500 per person); a stream resuming from
    /// before what was dropped is told to start over (`event: reset`)
    #[arg(long, env = "CONDUIT_NOTIFICATIONS_KEEP_DAYS", value_name = "DAYS", default_value = "90",
        value_parser = clap::value_parser!(u32).range(1..))]
    pub notifications_keep_days: u32,
    /// Seconds between the comment lines an idle notification stream is sent, so that proxies
    /// do not close it: under the idle timeout of every proxy in front (nginx's
    /// proxy_read_timeout is 60 s)
    #[arg(id = "notifications_keep_alive_secs", long = "notifications-keep-alive-secs",
        env = "CONDUIT_NOTIFICATIONS_KEEP_ALIVE", value_name = "SECONDS", default_value = "30", value_parser = seconds)]
    pub notifications_keep_alive: Duration,
}

/// Mail delivery: where it goes, from whom, what its links point at, and how it is retried.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct MailSettings {
    /// Where mail goes: smtp://[USER:PASS@]HOST[:PORT] (add ?tls=required for STARTTLS),
    /// smtps://... (TLS from the start), file:///DIR (one .eml file per message), or log: (a log
    /// line per message, its links and their tokens included) [default: none; mail stays
    /// queued in the outbox, where `conduit mail list --show` reads it]
    #[arg(long, env = "CONDUIT_SMTP_URL", value_name = "URL", hide_env_values = true, value_parser = smtp_url)]
    pub smtp_url: Option<SmtpUrl>,
    /// The From: of every message
    #[arg(long, env = "CONDUIT_MAIL_FROM", value_name = "ADDRESS", default_value = "Conduit <no-reply@localhost>")]
    pub mail_from: String,
    /// The base of the links in mails (the frontend, which posts the token to the API)
    /// [default: http:// and the bind address]
    #[arg(long, env = "CONDUIT_PUBLIC_URL", value_name = "URL", value_parser = public_url)]
    pub public_url: Option<String>,
    /// Seconds one message may take to send; also sets how long a sender holds a message
    /// before another instance may try it
    #[arg(id = "smtp_timeout_secs", long = "smtp-timeout-secs", env = "CONDUIT_SMTP_TIMEOUT",
        value_name = "SECONDS", default_value = "10", value_parser = seconds)]
    pub smtp_timeout: Duration,
    /// Tries per message before it is dead (see `conduit mail retry`)
    #[arg(long, env = "CONDUIT_MAIL_MAX_ATTEMPTS", value_name = "N", default_value = "10", value_parser = clap::value_parser!(u32).range(1..))]
    pub mail_max_attempts: u32,
    /// Seconds before the first retry of a failed message; each retry waits twice as long as
    /// the one before, at most an hour
    #[arg(id = "mail_retry_secs", long = "mail-retry-secs", env = "CONDUIT_MAIL_RETRY",
        value_name = "SECONDS", default_value = "30", value_parser = seconds)]
    pub mail_retry: Duration,
    /// Days sent mail stays listed in the outbox (without its text) before it is deleted
    #[arg(long, env = "CONDUIT_MAIL_RETENTION_DAYS", value_name = "DAYS", default_value = "30",
        value_parser = clap::value_parser!(u32).range(1..))]
    pub mail_retention_days: u32,
}

/// Scheduled backups, taken and verified inside `conduit serve` (see `crate::backup::schedule`).
#[derive(Debug, Clone, PartialEq, Args)]
pub struct BackupSettings {
    /// Folder for scheduled backups (created if missing) [default: none, and no scheduled
    /// backups; `conduit backup` takes one by hand]
    #[arg(long, env = "CONDUIT_BACKUP_DIR", value_name = "PATH")]
    pub backup_dir: Option<std::path::PathBuf>,
    /// Seconds between scheduled backups; of several instances sharing a database, one takes
    /// each
    #[arg(id = "backup_interval_secs", long = "backup-interval-secs", env = "CONDUIT_BACKUP_INTERVAL",
        value_name = "SECONDS", default_value = "86400", value_parser = seconds)]
    pub backup_interval: Duration,
    /// Scheduled backups kept in the folder; older ones are deleted once a newer one verified
    #[arg(long, env = "CONDUIT_BACKUP_KEEP", value_name = "N", default_value = "7", value_parser = positive::<usize>)]
    pub backup_keep: usize,
}

impl Default for BackupSettings {
    fn default() -> Self {
        declared_defaults()
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        declared_defaults()
    }
}

impl Default for LimitSettings {
    fn default() -> Self {
        declared_defaults()
    }
}

impl Default for AccountSettings {
    fn default() -> Self {
        declared_defaults()
    }
}

impl Default for MailSettings {
    fn default() -> Self {
        declared_defaults()
    }
}

impl MailSettings {
    /// The base of links in mails, without a trailing slash.
    pub fn links_base(&self, bind: SocketAddr) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("http://{bind}"))
    }
}

impl LimitSettings {
    /// How many password hashes may wait: the setting, or 32 per core but at most half of
    /// `max_concurrency` (waiting hashes hold request slots and must never hold them all).
    pub fn hash_queue(&self, max_concurrency: usize) -> usize {
        self.hash_queue.unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
            (DEFAULT_HASH_QUEUE_PER_CORE * cores).min(max_concurrency / 2)
        })
    }

    /// Derived from the account limits unless set, so a site that raised those (a benchmark, a
    /// busy community) raised these with them.
    pub fn new_account_articles_per_hour(&self) -> u32 {
        self.new_account_articles.unwrap_or((self.articles_per_hour / 3).max(1))
    }

    pub fn new_account_comments_per_hour(&self) -> u32 {
        self.new_account_comments.unwrap_or(self.comments_per_minute.saturating_mul(6))
    }
}

/// A group of settings at its declared defaults.
fn declared_defaults<T: Args + FromArgMatches>() -> T {
    let matches = settings_command(T::augment_args(clap::Command::new("conduit")), &HashMap::new())
        .try_get_matches_from(["conduit"])
        .expect("the declared defaults parse");
    T::from_arg_matches(&matches).expect("the declared defaults parse")
}

/// The declared settings with `given` values as their defaults, and clap's own reading of the
/// process environment turned off: [`Config::load`] reads it (through [`Sources`]) instead.
pub(super) fn settings_command(command: clap::Command, given: &HashMap<String, (String, String)>) -> clap::Command {
    let ids: Vec<String> = command.get_arguments().map(|a| a.get_id().to_string()).collect();
    ids.into_iter().fold(command.no_binary_name(false), |command, id| {
        let value = given.get(&id).map(|(value, _)| value.clone());
        command.mut_arg(&id, |arg| {
            let arg = arg.env(None);
            match value {
                Some(value) => arg.default_value(value),
                None => arg,
            }
        })
    })
}
