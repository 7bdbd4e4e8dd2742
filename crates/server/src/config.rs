//! Typed configuration, layered: built-in defaults, then an optional `conduit.toml`, then
//! environment variables, then command-line flags. Every mistake is one clear line.
//!
//! Each setting is declared once, as a field of [`Config`] or [`HttpSettings`]: its flag, its
//! environment variable, its `conduit.toml` key (the flag's name with `_`), its default, its
//! validation (the value parser) and its `--help` line all come from that declaration.
//! [`Config::load`] resolves the layers by handing clap the file's and the environment's
//! values as defaults, then parsing the flags, so every source goes through one parser.
//!
//! This module imports nothing of the server: everything else reads its settings from here.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, FromArgMatches};

pub const DEFAULT_BIND: &str = "127.0.0.1:3000";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://conduit.db";
pub const DEFAULT_CONFIG_FILE: &str = "conduit.toml";
pub const DEFAULT_LOG_FILTER: &str = "info,sqlx=warn,tower_http=warn";
/// HS256 keys shorter than this are guessable; refuse them.
pub const MIN_SECRET_LEN: usize = 32;
/// Password hashes that may wait per core by default: at ~20 ms a hash, about a second's wait.
pub const DEFAULT_HASH_QUEUE_PER_CORE: usize = 32;

/// Environment variables read outside [`Config`], for `--help` and the README.
pub const OTHER_ENV_VARS: &[(&str, &str)] = &[
    ("CONDUIT_CONFIG", "config file (default ./conduit.toml when present); same as --config"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "export traces over OTLP/HTTP to this collector (and other OTEL_*)"),
];

/// Every setting of the process. See the module documentation for how they are declared.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on
    #[arg(long, env = "CONDUIT_BIND", value_name = "IP:PORT", default_value = DEFAULT_BIND, value_parser = socket_addr)]
    pub bind: SocketAddr,
    /// sqlite://PATH, sqlite::memory:, or postgres://USER:PASS@HOST:PORT/DB
    #[arg(long, env = "DATABASE_URL", value_name = "URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,
    /// Token signing secret, at least 32 characters; required on PostgreSQL, generated beside
    /// the database file on SQLite
    #[arg(long, env = "CONDUIT_JWT_SECRET", value_name = "SECRET", hide_env_values = true, value_parser = secret)]
    pub jwt_secret: Option<Secret>,
    /// Token lifetime in seconds
    #[arg(id = "token_ttl_secs", long = "token-ttl-secs", env = "CONDUIT_TOKEN_TTL_SECS", value_name = "SECONDS",
        default_value = "86400", value_parser = token_ttl)]
    pub token_ttl: chrono::Duration,
    /// Log filter, as RUST_LOG
    #[arg(id = "log", long = "log", env = "RUST_LOG", value_name = "FILTER", default_value = DEFAULT_LOG_FILTER)]
    pub log_filter: String,
    /// json or pretty [default: json unless stdout is a terminal]
    #[arg(long, env = "CONDUIT_LOG_FORMAT", value_name = "FORMAT", value_parser = log_format)]
    pub log_format: Option<LogFormat>,
    #[command(flatten)]
    pub http: HttpSettings,
    #[command(flatten)]
    pub mail: MailSettings,
    /// Serve /metrics only on this IP:PORT (keep it private) [default: on the main address]
    #[arg(long, env = "CONDUIT_METRICS_BIND", value_name = "IP:PORT", value_parser = socket_addr)]
    pub metrics_bind: Option<SocketAddr>,
    /// Seconds to finish in-flight requests after SIGTERM; past it, exit 1
    #[arg(id = "shutdown_grace_secs", long = "shutdown-grace-secs", env = "CONDUIT_SHUTDOWN_GRACE",
        value_name = "SECONDS", default_value = "30", value_parser = seconds)]
    pub shutdown_grace: Duration,
    /// Seconds a client gets to send a request's headers; also how long a keep-alive
    /// connection may sit idle
    #[arg(id = "header_timeout_secs", long = "header-timeout-secs", env = "CONDUIT_HEADER_TIMEOUT",
        value_name = "SECONDS", default_value = "10", value_parser = seconds)]
    pub header_read_timeout: Duration,
    /// redis://HOST:PORT: sessions and rate-limit counters shared by every instance
    #[arg(long, env = "REDIS_URL", value_name = "URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Database connections per instance, 1 to 1000 (SQLite: readers beside its one writer)
    /// [default: PostgreSQL 16, SQLite 2 per core]
    #[arg(long, env = "CONDUIT_DB_POOL_SIZE", value_name = "N", value_parser = pool_size)]
    pub db_pool_size: Option<u32>,
    /// Seconds a request waits for a database connection before a 503
    #[arg(id = "db_acquire_timeout_secs", long = "db-acquire-timeout-secs", env = "CONDUIT_DB_ACQUIRE_TIMEOUT",
        value_name = "SECONDS", default_value = "5", value_parser = seconds)]
    pub db_acquire_timeout: Duration,
}

/// Limits and policies of the HTTP layer and of accounts.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct HttpSettings {
    /// Seconds before a request is answered 503
    #[arg(id = "request_timeout_secs", long = "request-timeout-secs", env = "CONDUIT_REQUEST_TIMEOUT",
        value_name = "SECONDS", default_value = "30", value_parser = seconds)]
    pub request_timeout: Duration,
    /// Requests handled at once; more are shed with 503 and Retry-After
    #[arg(long, env = "CONDUIT_MAX_CONCURRENCY", value_name = "N", default_value = "1024", value_parser = positive::<usize>)]
    pub max_concurrency: usize,
    /// Largest request body in bytes; bigger gets 413
    #[arg(id = "body_limit_bytes", long = "body-limit-bytes", env = "CONDUIT_BODY_LIMIT", value_name = "BYTES",
        default_value = "1048576", value_parser = positive::<usize>)]
    pub body_limit: usize,
    /// Comma-separated scheme://host[:port] origins allowed by CORS [default: none, and no CORS layer]
    #[arg(long, env = "CONDUIT_ALLOWED_ORIGINS", value_name = "ORIGINS", value_delimiter = ',', value_parser = origin)]
    pub allowed_origins: Vec<String>,
    /// gzip responses for clients that accept it: true or false
    #[arg(long, env = "CONDUIT_GZIP", value_name = "BOOL", default_value = "true", action = clap::ArgAction::Set, value_parser = flag)]
    pub gzip: bool,
    /// Comma-separated IPs or CIDR blocks of proxies whose X-Forwarded-For and -Proto are believed
    #[arg(long, env = "CONDUIT_TRUSTED_PROXIES", value_name = "NETS", value_delimiter = ',', value_parser = ip_net)]
    pub trusted_proxies: Vec<IpNet>,
    /// Failed logins allowed per account from one client address each minute (ten times as many
    /// per account over all addresses, and per address over all accounts)
    #[arg(id = "login_attempts_per_minute", long = "login-attempts-per-minute", env = "CONDUIT_LOGIN_ATTEMPTS",
        value_name = "N", default_value = "10", value_parser = positive::<u32>)]
    pub login_attempts_per_minute: u32,
    /// Registrations, successful or not, per client address each hour
    #[arg(long, env = "CONDUIT_REGISTRATIONS_PER_HOUR", value_name = "N", default_value = "20", value_parser = positive::<u32>)]
    pub registrations_per_hour: u32,
    /// Seconds after a login in which its token or session may change the email or password
    /// without currentPassword
    #[arg(id = "reauth_window_secs", long = "reauth-window-secs", env = "CONDUIT_REAUTH_WINDOW",
        value_name = "SECONDS", default_value = "600", value_parser = seconds)]
    pub reauth_window: Duration,
    /// Seconds a client has to send a request body once its headers arrived; slower gets 408
    #[arg(id = "body_timeout_secs", long = "body-timeout-secs", env = "CONDUIT_BODY_TIMEOUT",
        value_name = "SECONDS", default_value = "10", value_parser = seconds)]
    pub body_timeout: Duration,
    /// Password hashes that may wait for a free core; more get 503 at once. Below
    /// max_concurrency [default: 32 per core, at most half of max_concurrency]
    #[arg(long, env = "CONDUIT_HASH_QUEUE", value_name = "N", value_parser = whole::<usize>)]
    pub hash_queue: Option<usize>,
    /// Mark the session cookie Secure always, not only on requests that came over HTTPS
    #[arg(long, env = "CONDUIT_SECURE_COOKIES", value_name = "BOOL", default_value = "false", action = clap::ArgAction::Set, value_parser = flag)]
    pub secure_cookies: bool,
}

/// Mail: how it is sent, what links in it point at, and the account rules it serves.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct MailSettings {
    /// Where mail goes: smtp://[USER:PASS@]HOST[:PORT] (add ?tls=required for STARTTLS),
    /// smtps://... (TLS from the start), or file:///DIR (one .eml file per message)
    /// [default: none; mail is written to the log]
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
    #[arg(long, env = "CONDUIT_MAIL_MAX_ATTEMPTS", value_name = "N", default_value = "10", value_parser = positive::<u32>)]
    pub mail_max_attempts: u32,
    /// Seconds before the first retry of a failed message; each retry waits twice as long as
    /// the one before, at most an hour
    #[arg(id = "mail_retry_secs", long = "mail-retry-secs", env = "CONDUIT_MAIL_RETRY",
        value_name = "SECONDS", default_value = "30", value_parser = seconds)]
    pub mail_retry: Duration,
    /// Mails each hour one recipient can be sent by the mailing endpoints (verification,
    /// reset); ten times as many per client address
    #[arg(long, env = "CONDUIT_MAILS_PER_HOUR", value_name = "N", default_value = "5", value_parser = positive::<u32>)]
    pub mails_per_hour: u32,
    /// What becomes of a deleted account's articles and comments: delete, or keep (shown
    /// under the author "[deleted]")
    #[arg(long, env = "CONDUIT_DELETED_CONTENT", value_name = "POLICY", default_value = "delete", value_parser = deleted_content)]
    pub deleted_content: DeletedContentPolicy,
    /// What users whose email is not verified may do: all (like anyone), read (log in, but
    /// change nothing except their own account), or none (cannot log in)
    #[arg(long, env = "CONDUIT_UNVERIFIED_USERS", value_name = "POLICY", default_value = "all", value_parser = unverified_policy)]
    pub unverified_users: UnverifiedPolicy,
}

impl Default for MailSettings {
    /// The declared defaults.
    fn default() -> Self {
        let matches = settings_command(MailSettings::augment_args(clap::Command::new("conduit")), &HashMap::new())
            .try_get_matches_from(["conduit"])
            .expect("the declared defaults parse");
        MailSettings::from_arg_matches(&matches).expect("the declared defaults parse")
    }
}

impl MailSettings {
    /// The base of links in mails, without a trailing slash.
    pub fn links_base(&self, bind: SocketAddr) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("http://{bind}"))
    }
}

/// `CONDUIT_SMTP_URL`: kept whole (lettre reads it), shown without its password.
#[derive(Clone, PartialEq, Eq)]
pub enum SmtpUrl {
    /// smtp:// or smtps://.
    Smtp(String),
    /// file:///DIR: each message as DIR/<id>.eml.
    Folder(PathBuf),
}

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SmtpUrl::Smtp(url) => write!(f, "Smtp({})", redact_password(url)),
            SmtpUrl::Folder(dir) => write!(f, "Folder({})", dir.display()),
        }
    }
}

/// A URL with any password replaced, for logs.
pub fn redact_password(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        Ok(url) => url.to_string(),
        Err(_) => "(unparsable URL)".into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeletedContentPolicy {
    Delete,
    Keep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnverifiedPolicy {
    All,
    Read,
    None,
}

impl Default for HttpSettings {
    /// The declared defaults.
    fn default() -> Self {
        let matches = settings_command(HttpSettings::augment_args(clap::Command::new("conduit")), &HashMap::new())
            .try_get_matches_from(["conduit"])
            .expect("the declared defaults parse");
        HttpSettings::from_arg_matches(&matches).expect("the declared defaults parse")
    }
}

impl HttpSettings {
    /// How many password hashes may wait: the setting, or 32 per core but at most half of
    /// `max_concurrency` (waiting hashes hold request slots and must never hold them all).
    pub fn hash_queue(&self) -> usize {
        self.hash_queue.unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
            (DEFAULT_HASH_QUEUE_PER_CORE * cores).min(self.max_concurrency / 2)
        })
    }
}

/// An IP address or a CIDR block such as `10.0.0.0/8` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let addr: IpAddr = addr.trim().parse().map_err(|_| format!("'{s}' is not an IP address or CIDR block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("'{s}' has a bad prefix length"))?,
        };
        Ok(IpNet { addr, prefix })
    }
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4-mapped IPv6 peer (::ffff:a.b.c.d) is compared as the IPv4 address it is.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// A value that must not appear in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn error(message: impl Into<String>) -> ConfigError {
    ConfigError(message.into())
}

/// Where settings come from besides the file.
pub struct Sources<'a> {
    /// `--config`, else `CONDUIT_CONFIG`, else `default_file` if it exists.
    pub file: Option<PathBuf>,
    pub default_file: PathBuf,
    /// Looks up an environment variable (a parameter so tests need not touch the process).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Setting flags from the command line, such as `["--bind", "0.0.0.0:8080"]`: they beat
    /// everything.
    pub flags: Vec<String>,
}

impl Config {
    pub fn load(sources: Sources<'_>) -> Result<Config, ConfigError> {
        let env = |name: &str| (sources.env)(name).filter(|v| !v.is_empty());
        let file_path = sources.file.clone().or_else(|| env("CONDUIT_CONFIG").map(PathBuf::from));
        let file = match &file_path {
            Some(path) => read_file(path, true)?,
            None => read_file(&sources.default_file, false)?,
        };
        let command = Config::augment_args(clap::Command::new("conduit"));
        // The environment's and the file's values become the defaults the flags override;
        // `given` remembers where each came from, for messages.
        let mut given = HashMap::new();
        for arg in command.get_arguments() {
            let id = arg.get_id().to_string();
            let name = arg.get_env().and_then(|n| n.to_str()).unwrap_or_default();
            if let Some(value) = env(name) {
                given.insert(id, (value, name.to_owned()));
            } else if let Some(value) = file.get(&id) {
                given.insert(id.clone(), (value.clone(), format!("{id} in the config file")));
            }
        }
        if let Some(key) = file.keys().find(|key| command.get_arguments().all(|a| a.get_id() != key.as_str())) {
            let known: Vec<_> = command.get_arguments().map(|a| a.get_id().to_string()).collect();
            return Err(error(format!(
                "invalid config file {}: unknown key '{key}' (known keys: {})",
                file_path.as_deref().unwrap_or(&sources.default_file).display(),
                known.join(", ")
            )));
        }
        // clap names a bad value by its flag: where did that setting's value come from?
        // The file or variable a rejected value came from; the flag itself when it was given on
        // the command line (which beats them, so its value is the one rejected).
        let source_of = |flag: &str, rejected: &str| {
            let arg = command.get_arguments().find(|a| a.get_long() == Some(flag.trim_start_matches("--")));
            arg.and_then(|a| given.get(a.get_id().as_str()))
                .filter(|(value, _)| value == rejected)
                .map_or_else(|| flag.to_owned(), |(_, from)| from.clone())
        };
        let flags = std::iter::once("conduit".to_owned()).chain(sources.flags.iter().cloned());
        let matches = settings_command(command.clone(), &given)
            .try_get_matches_from(flags)
            .map_err(|e| parse_error(&e, &source_of))?;
        let config = Config::from_arg_matches(&matches).map_err(|e| parse_error(&e, &source_of))?;
        config.check(&given)?;
        Ok(config)
    }

    /// What one setting alone cannot check.
    fn check(&self, given: &HashMap<String, (String, String)>) -> Result<(), ConfigError> {
        if let Some(queue) = self.http.hash_queue
            && queue >= self.http.max_concurrency
        {
            let from = given.get("hash_queue").map_or("--hash-queue", |(_, from)| from.as_str());
            return Err(error(format!(
                "invalid {from} '{queue}': expected a whole number below CONDUIT_MAX_CONCURRENCY ({})",
                self.http.max_concurrency
            )));
        }
        Ok(())
    }

    /// The configuration from the real environment.
    pub fn from_env(file: Option<PathBuf>, flags: Vec<String>) -> Result<Config, ConfigError> {
        Config::load(Sources {
            file,
            default_file: PathBuf::from(DEFAULT_CONFIG_FILE),
            env: &|name| std::env::var(name).ok(),
            flags,
        })
    }

    /// Every setting, one entry each, for `--help` and the README's table.
    pub fn settings() -> Vec<SettingInfo> {
        Config::augment_args(clap::Command::new("conduit"))
            .get_arguments()
            .map(|arg| SettingInfo {
                flag: format!("--{}", arg.get_long().unwrap_or_default()),
                env: arg.get_env().and_then(|n| n.to_str()).unwrap_or_default().to_owned(),
                key: arg.get_id().to_string(),
                default: arg.get_default_values().first().and_then(|v| v.to_str()).map(str::to_owned),
                help: arg.get_help().map(ToString::to_string).unwrap_or_default(),
            })
            .collect()
    }
}

/// One setting as declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingInfo {
    pub flag: String,
    pub env: String,
    /// Its key in `conduit.toml`.
    pub key: String,
    pub default: Option<String>,
    pub help: String,
}

/// The declared settings with `given` values as their defaults, and clap's own reading of the
/// process environment turned off: [`Config::load`] reads it (through [`Sources`]) instead.
fn settings_command(command: clap::Command, given: &HashMap<String, (String, String)>) -> clap::Command {
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

/// One line naming the setting, where its value came from, and what was expected.
fn parse_error(e: &clap::Error, source_of: &dyn Fn(&str, &str) -> String) -> ConfigError {
    use clap::error::{ContextKind, ContextValue};
    let context = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    let (Some(arg), Some(value)) = (context(ContextKind::InvalidArg), context(ContextKind::InvalidValue)) else {
        let text = e.to_string();
        return error(text.lines().next().unwrap_or("invalid settings").trim_start_matches("error: ").to_owned());
    };
    let from = source_of(arg.split_whitespace().next().unwrap_or_default(), &value);
    let expected = std::error::Error::source(e).map(ToString::to_string).unwrap_or_else(|| "not accepted".into());
    if expected.starts_with("is ") {
        // Says what is wrong without repeating the value (a secret).
        error(format!("{from} {expected}"))
    } else {
        error(format!("invalid {from} '{value}': {expected}"))
    }
}

// --- value parsers: the validation of each kind of setting ---

fn seconds(raw: &str) -> Result<Duration, String> {
    raw.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| "expected a positive number of seconds".to_owned())
}

fn token_ttl(raw: &str) -> Result<chrono::Duration, String> {
    positive::<u64>(raw)
        .ok()
        .and_then(|s| i64::try_from(s).ok())
        .and_then(chrono::Duration::try_seconds)
        .ok_or_else(|| "expected a positive number of seconds".to_owned())
}

fn positive<T: FromStr + PartialOrd + Default>(raw: &str) -> Result<T, String> {
    raw.trim().parse::<T>().ok().filter(|n| *n > T::default()).ok_or_else(|| "expected a positive whole number".into())
}

fn whole<T: FromStr>(raw: &str) -> Result<T, String> {
    raw.trim().parse::<T>().map_err(|_| "expected a whole number".into())
}

fn pool_size(raw: &str) -> Result<u32, String> {
    whole::<u32>(raw)
        .ok()
        .filter(|n| (1..=1000).contains(n))
        .ok_or_else(|| "expected a whole number from 1 to 1000".into())
}

fn flag(raw: &str) -> Result<bool, String> {
    match raw.trim() {
        "true" | "1" | "on" => Ok(true),
        "false" | "0" | "off" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

fn socket_addr(raw: &str) -> Result<SocketAddr, String> {
    raw.trim().parse().map_err(|_| "expected IP:PORT, for example 127.0.0.1:3000 or 0.0.0.0:8080".into())
}

fn secret(raw: &str) -> Result<Secret, String> {
    if raw.len() < MIN_SECRET_LEN {
        return Err(format!(
            "is too short ({} characters): use at least {MIN_SECRET_LEN}, for example the output of `openssl rand -hex 32`",
            raw.len()
        ));
    }
    Ok(Secret(raw.to_owned()))
}

fn log_format(raw: &str) -> Result<LogFormat, String> {
    match raw.trim() {
        "json" => Ok(LogFormat::Json),
        "pretty" => Ok(LogFormat::Pretty),
        _ => Err("expected json or pretty".into()),
    }
}

fn ip_net(raw: &str) -> Result<IpNet, String> {
    raw.trim().parse()
}

/// An origin is `scheme://host[:port]`, exactly as browsers send it: no path, no trailing slash.
fn origin(raw: &str) -> Result<String, String> {
    let origin = raw.trim();
    let valid = url::Url::parse(origin).ok().is_some_and(|u| {
        matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.origin().ascii_serialization() == origin
    });
    if valid {
        Ok(origin.to_owned())
    } else {
        Err("invalid origin: expected scheme://host[:port], for example https://app.example.com".into())
    }
}

fn smtp_url(raw: &str) -> Result<SmtpUrl, String> {
    let raw = raw.trim();
    let url = url::Url::parse(raw)
        .map_err(|_| "is not a URL: expected smtp://HOST:PORT, smtps://HOST or file:///DIR".to_owned())?;
    match url.scheme() {
        "smtp" | "smtps" if url.host_str().is_some_and(|h| !h.is_empty()) => Ok(SmtpUrl::Smtp(raw.to_owned())),
        "file" => url
            .to_file_path()
            .map(SmtpUrl::Folder)
            .map_err(|()| "is not a usable folder: expected file:///ABSOLUTE/DIR".to_owned()),
        _ => Err("is not a mail URL: expected smtp://HOST:PORT, smtps://HOST or file:///DIR".into()),
    }
}

fn public_url(raw: &str) -> Result<String, String> {
    let base = raw.trim().trim_end_matches('/');
    match url::Url::parse(base) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(base.to_owned()),
        _ => Err("expected http(s)://HOST[:PORT][/PATH], for example https://conduit.example.com".into()),
    }
}

fn deleted_content(raw: &str) -> Result<DeletedContentPolicy, String> {
    match raw.trim() {
        "delete" => Ok(DeletedContentPolicy::Delete),
        "keep" => Ok(DeletedContentPolicy::Keep),
        _ => Err("expected delete or keep".into()),
    }
}

fn unverified_policy(raw: &str) -> Result<UnverifiedPolicy, String> {
    match raw.trim() {
        "all" => Ok(UnverifiedPolicy::All),
        "read" => Ok(UnverifiedPolicy::Read),
        "none" => Ok(UnverifiedPolicy::None),
        _ => Err("expected all, read or none".into()),
    }
}

/// The file's settings by key, each as the text a flag would carry (a list joined by commas).
fn read_file(path: &Path, required: bool) -> Result<HashMap<String, String>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(HashMap::new()),
        Err(e) => return Err(error(format!("cannot read config file {}: {e}", path.display()))),
    };
    let invalid = |message: String| error(format!("invalid config file {}: {message}", path.display()));
    // toml's messages span several lines with a source excerpt; keep the first line.
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| invalid(e.message().lines().next().unwrap_or("invalid TOML").to_owned()))?;
    let text_of = |value: &toml::Value| match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(n) => Some(n.to_string()),
        toml::Value::Float(x) => Some(x.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    };
    table
        .iter()
        .map(|(key, value)| {
            let text = match value {
                toml::Value::Array(items) => items.iter().map(text_of).collect::<Option<Vec<_>>>().map(|v| v.join(",")),
                other => text_of(other),
            };
            text.map(|text| (key.clone(), text))
                .ok_or_else(|| invalid(format!("'{key}' must be a string, number, true/false or a list of them")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(vars: &[(&str, &str)], file: Option<&str>, bind_flag: Option<&str>) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = file.map(|text| {
            let path = dir.path().join("conduit.toml");
            std::fs::write(&path, text).unwrap();
            path
        });
        let env = move |name: &str| vars.get(name).cloned();
        let default_file = dir.path().join("absent.toml");
        let flags = bind_flag.map(|bind| vec!["--bind".to_owned(), bind.to_owned()]).unwrap_or_default();
        Config::load(Sources { file: path, default_file, env: &env, flags })
    }

    #[test]
    fn defaults_apply_with_nothing_set() {
        let config = load(&[], None, None).unwrap();
        assert_eq!(config.bind.to_string(), DEFAULT_BIND);
        assert_eq!(config.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(config.jwt_secret, None);
        assert_eq!(config.token_ttl, chrono::Duration::hours(24));
    }

    #[test]
    fn env_beats_file_and_flag_beats_env() {
        let file = "bind = \"127.0.0.1:4000\"\ndatabase_url = \"sqlite://file.db\"\ntoken_ttl_secs = 60\n";
        let config = load(&[], Some(file), None).unwrap();
        assert_eq!((config.bind.port(), config.database_url.as_str()), (4000, "sqlite://file.db"));
        assert_eq!(config.token_ttl, chrono::Duration::seconds(60));

        let env = [("CONDUIT_BIND", "127.0.0.1:5000"), ("DATABASE_URL", "sqlite://env.db")];
        let config = load(&env, Some(file), None).unwrap();
        assert_eq!((config.bind.port(), config.database_url.as_str()), (5000, "sqlite://env.db"));

        let config = load(&env, Some(file), Some("127.0.0.1:6000")).unwrap();
        assert_eq!(config.bind.port(), 6000);
    }

    #[test]
    fn mistakes_are_one_line_naming_the_setting() {
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>, &'a str);
        let cases: &[Case] = &[
            (&[("CONDUIT_BIND", "nonsense")], None, "invalid CONDUIT_BIND 'nonsense'"),
            (&[("CONDUIT_JWT_SECRET", "short")], None, "CONDUIT_JWT_SECRET is too short"),
            (&[("CONDUIT_TOKEN_TTL_SECS", "-5")], None, "invalid CONDUIT_TOKEN_TTL_SECS"),
            (&[("CONDUIT_LOG_FORMAT", "xml")], None, "invalid CONDUIT_LOG_FORMAT"),
            (&[("CONDUIT_REQUEST_TIMEOUT", "0")], None, "invalid CONDUIT_REQUEST_TIMEOUT '0'"),
            (&[("CONDUIT_MAX_CONCURRENCY", "many")], None, "invalid CONDUIT_MAX_CONCURRENCY"),
            (&[("CONDUIT_SHUTDOWN_GRACE", "-1")], None, "invalid CONDUIT_SHUTDOWN_GRACE"),
            (&[("CONDUIT_HEADER_TIMEOUT", "never")], None, "invalid CONDUIT_HEADER_TIMEOUT 'never'"),
            (&[("CONDUIT_DB_POOL_SIZE", "0")], None, "invalid CONDUIT_DB_POOL_SIZE '0'"),
            (&[("CONDUIT_METRICS_BIND", "9100")], None, "invalid CONDUIT_METRICS_BIND"),
            (&[("CONDUIT_ALLOWED_ORIGINS", "https://a.example/path")], None, "invalid origin"),
            (&[("CONDUIT_GZIP", "maybe")], None, "invalid CONDUIT_GZIP"),
            (&[("CONDUIT_TRUSTED_PROXIES", "10.0.0.0/40")], None, "invalid CONDUIT_TRUSTED_PROXIES"),
            (&[("CONDUIT_LOGIN_ATTEMPTS", "0")], None, "invalid CONDUIT_LOGIN_ATTEMPTS"),
            (&[("CONDUIT_SECURE_COOKIES", "yes please")], None, "invalid CONDUIT_SECURE_COOKIES"),
            (&[("CONDUIT_REGISTRATIONS_PER_HOUR", "0")], None, "invalid CONDUIT_REGISTRATIONS_PER_HOUR '0'"),
            (&[("CONDUIT_REAUTH_WINDOW", "soon")], None, "invalid CONDUIT_REAUTH_WINDOW 'soon'"),
            (&[("CONDUIT_BODY_TIMEOUT", "0")], None, "invalid CONDUIT_BODY_TIMEOUT '0'"),
            (&[("CONDUIT_HASH_QUEUE", "-1")], None, "invalid CONDUIT_HASH_QUEUE '-1'"),
            (&[("CONDUIT_HASH_QUEUE", "1024")], None, "expected a whole number below CONDUIT_MAX_CONCURRENCY"),
            (&[], Some("max_concurrency = 0"), "invalid max_concurrency in the config file '0'"),
            (&[], Some("bnid = \"x\""), "unknown key 'bnid'"),
            (&[], Some("bind = "), "invalid config file"),
        ];
        for (env, file, expected) in cases {
            let message = load(env, *file, None).unwrap_err().0;
            assert!(message.contains(expected), "{message:?} should mention {expected:?}");
            assert!(!message.contains('\n'), "{message:?} should be one line");
        }
    }

    #[test]
    fn a_rejected_flag_is_named_even_when_a_variable_sets_the_same_setting() {
        let message = load(&[("CONDUIT_BIND", "127.0.0.1:5000")], None, Some("nonsense")).unwrap_err().0;
        assert!(message.contains("invalid --bind 'nonsense'"), "{message:?}");
        let message = load(&[("CONDUIT_BIND", "nonsense")], None, Some("127.0.0.1:6000"));
        assert_eq!(message.map(|c| c.bind.port()).ok(), Some(6000), "the flag beats a bad variable");
    }

    #[test]
    fn operational_settings_layer_like_the_rest() {
        let config = load(&[], None, None).unwrap();
        assert_eq!(config.http.request_timeout, Duration::from_secs(30));
        assert_eq!((config.header_read_timeout, config.db_pool_size), (Duration::from_secs(10), None));
        assert_eq!((config.http.max_concurrency, config.http.body_limit), (1024, 1024 * 1024));
        assert_eq!((config.shutdown_grace, config.metrics_bind), (Duration::from_secs(30), None));
        assert!(config.http.allowed_origins.is_empty());

        let file = "request_timeout_secs = 2.5\nallowed_origins = [\"https://a.example\"]\nmetrics_bind = \"127.0.0.1:9100\"\n";
        let config = load(&[("CONDUIT_MAX_CONCURRENCY", "8")], Some(file), None).unwrap();
        assert_eq!(config.http.request_timeout, Duration::from_millis(2500));
        assert_eq!(config.http.max_concurrency, 8);
        assert_eq!(config.http.allowed_origins, ["https://a.example"]);
        assert_eq!(config.metrics_bind.unwrap().port(), 9100);

        let env = [("CONDUIT_ALLOWED_ORIGINS", "https://a.example, http://localhost:5173")];
        let config = load(&env, Some(file), None).unwrap();
        assert_eq!(config.http.allowed_origins, ["https://a.example", "http://localhost:5173"]);
    }

    #[test]
    fn flags_take_every_setting_and_beat_the_environment() {
        let env = [("CONDUIT_GZIP", "true"), ("CONDUIT_MAX_CONCURRENCY", "8")];
        let flags = ["--gzip", "false", "--request-timeout-secs", "1.5", "--trusted-proxies", "10.0.0.0/8,::1"];
        let dir = tempfile::tempdir().unwrap();
        let vars: HashMap<&str, &str> = env.into_iter().collect();
        let config = Config::load(Sources {
            file: None,
            default_file: dir.path().join("absent.toml"),
            env: &|name| vars.get(name).map(|v| v.to_string()),
            flags: flags.iter().map(|f| f.to_string()).collect(),
        })
        .unwrap();
        assert!(!config.http.gzip);
        assert_eq!(config.http.max_concurrency, 8);
        assert_eq!(config.http.request_timeout, Duration::from_millis(1500));
        assert_eq!(config.http.trusted_proxies.len(), 2);
    }

    #[test]
    fn declared_defaults_are_the_defaults() {
        let config = load(&[], None, None).unwrap();
        assert_eq!(config.http, HttpSettings::default());
        assert!(config.http.gzip && !config.http.secure_cookies);
        assert_eq!(config.http.reauth_window, Duration::from_secs(600));
        assert!(config.http.hash_queue() < config.http.max_concurrency);
    }

    /// The README's settings table lists exactly the declared settings, each with its
    /// environment variable, file key and default.
    #[test]
    fn the_readme_table_matches_the_declarations() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
        let rows: Vec<Vec<String>> = readme
            .lines()
            .skip_while(|line| !line.starts_with("| Variable | Flag | `conduit.toml` key | Default |"))
            .skip(2)
            .take_while(|line| line.starts_with('|'))
            .map(|line| line.split('|').map(|cell| cell.trim().to_owned()).collect())
            .collect();
        let declared = Config::settings();
        assert_eq!(rows.len(), declared.len() + OTHER_ENV_VARS.len(), "one README row per setting");
        for setting in &declared {
            let row = rows
                .iter()
                .find(|row| row[1] == format!("`{}`", setting.env))
                .unwrap_or_else(|| panic!("no README row for {}", setting.env));
            assert_eq!(row[2], format!("`{}`", setting.flag), "{}", setting.env);
            assert_eq!(row[3], format!("`{}`", setting.key), "{}", setting.env);
            if let Some(default) = &setting.default {
                assert!(
                    row[4].contains(&format!("`{default}`")),
                    "{}: README default {} vs {default}",
                    setting.env,
                    row[4]
                );
            }
        }
        for (name, _) in OTHER_ENV_VARS {
            assert!(rows.iter().any(|row| row[1].contains(name)), "no README row for {name}");
        }
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let secret = "s".repeat(40);
        let config = load(&[("CONDUIT_JWT_SECRET", &secret)], None, None).unwrap();
        assert!(!format!("{config:?}").contains(&secret));
        assert_eq!(config.jwt_secret.unwrap().expose(), secret);
    }
}
