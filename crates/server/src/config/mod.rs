//! Typed configuration, layered: built-in defaults, then an optional `conduit.toml`, then
//! environment variables, then command-line flags. Every mistake is one clear line.
//!
//! Each setting is declared once, as a field of [`Config`] or of one of its groups
//! ([`settings`]: the edge, limits, accounts, mail): its flag, its
//! environment variable, its `conduit.toml` key (the flag's name with `_`), its default, its
//! validation (the value parser) and its `--help` line all come from that declaration.
//! [`Config::load`] resolves the layers by handing clap the file's and the environment's
//! values as defaults, then parsing the flags, so every source goes through one parser.
//!
//! Files: [`settings`] (the groups), [`values`] (each kind of value and its parser).
//!
//! Imports: nothing of the server; everything else reads its settings from here.

mod settings;
#[cfg(test)]
mod tests;
mod values;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, FromArgMatches};

use settings::settings_command;
pub use settings::{
    AccountSettings, BackupSettings, DEFAULT_HASH_QUEUE_PER_CORE, HttpSettings, LimitSettings, MailSettings,
};
pub use values::{
    DeletedContentPolicy, IpNet, LogFormat, MIN_SECRET_LEN, Secret, SmtpUrl, UnverifiedPolicy, ip_net,
    is_trusted_proxy, redact_password,
};
use values::{seconds, secret, socket_addr, token_ttl};

pub const DEFAULT_BIND: &str = "127.0.0.1:3000";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://conduit.db";
pub const DEFAULT_CONFIG_FILE: &str = "conduit.toml";
pub const DEFAULT_LOG_FILTER: &str = "info,sqlx=warn,tower_http=warn";

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
    #[arg(long, env = "CONDUIT_LOG_FORMAT", value_name = "FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    #[command(flatten)]
    pub http: HttpSettings,
    #[command(flatten)]
    pub limits: LimitSettings,
    #[command(flatten)]
    pub accounts: AccountSettings,
    #[command(flatten)]
    pub mail: MailSettings,
    #[command(flatten)]
    pub backup: BackupSettings,
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
    #[arg(long, env = "CONDUIT_DB_POOL_SIZE", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub db_pool_size: Option<u32>,
    /// Seconds a request waits for a database connection before a 503
    #[arg(id = "db_acquire_timeout_secs", long = "db-acquire-timeout-secs", env = "CONDUIT_DB_ACQUIRE_TIMEOUT",
        value_name = "SECONDS", default_value = "5", value_parser = seconds)]
    pub db_acquire_timeout: Duration,
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
        if matches!(self.mail.smtp_url, Some(SmtpUrl::Smtp(_))) && self.mail.public_url.is_none() {
            return Err(error(
                "CONDUIT_SMTP_URL is set but CONDUIT_PUBLIC_URL is not: the links in mail would point at this \
                 server's bind address; set CONDUIT_PUBLIC_URL to the address people open, e.g. \
                 https://conduit.example.com",
            ));
        }
        if let Some(queue) = self.limits.hash_queue
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
    let expected = match (std::error::Error::source(e), e.get(ContextKind::ValidValue)) {
        (Some(source), _) => in_our_words(&source.to_string()),
        // An enum's values: clap lists them, we say them as the other settings do.
        (None, Some(ContextValue::Strings(values))) => format!("expected {}", values.join(" or ")),
        (None, _) => "not accepted".into(),
    };
    if expected.starts_with("is ") {
        // Says what is wrong without repeating the value (a secret).
        error(format!("{from} {expected}"))
    } else {
        error(format!("invalid {from} '{value}': {expected}"))
    }
}

/// clap's messages for its own parsers, said as ours are: what was expected.
fn in_our_words(message: &str) -> String {
    if message == "value was not a boolean" {
        return "expected true or false".into();
    }
    // A range parser's "0 is not in 1..=1000" or "0 is not in 1..=4294967295" (no upper bound).
    match message.split_once(" is not in ").and_then(|(_, range)| range.split_once("..=")) {
        Some((low, high)) if high.len() >= 10 => format!("expected a whole number of at least {low}"),
        Some((low, high)) => format!("expected a whole number from {low} to {high}"),
        None => message.to_owned(),
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
