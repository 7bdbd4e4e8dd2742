//! Typed configuration, layered: built-in defaults, then an optional `conduit.toml`, then
//! environment variables, then command-line flags. Every mistake is one clear line.
//!
//! This module imports nothing of the server: everything else reads its settings from here.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

pub const DEFAULT_BIND: &str = "127.0.0.1:3000";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://conduit.db";
pub const DEFAULT_CONFIG_FILE: &str = "conduit.toml";
pub const DEFAULT_TOKEN_TTL_SECS: u64 = 24 * 60 * 60;
pub const DEFAULT_LOG_FILTER: &str = "info,sqlx=warn,tower_http=warn";
/// HS256 keys shorter than this are guessable; refuse them.
pub const MIN_SECRET_LEN: usize = 32;
/// Password hashes that may wait per core by default: at ~20 ms a hash, about a second's wait.
pub const DEFAULT_HASH_QUEUE_PER_CORE: usize = 32;

/// The environment variables read, for `--help` and the README.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("DATABASE_URL", "sqlite://PATH (default sqlite://conduit.db) or postgres://USER:PASS@HOST/DB"),
    ("CONDUIT_BIND", "address to listen on (default 127.0.0.1:3000)"),
    ("CONDUIT_JWT_SECRET", "token signing secret, at least 32 characters; required on PostgreSQL"),
    ("CONDUIT_TOKEN_TTL_SECS", "token lifetime in seconds (default 86400)"),
    ("CONDUIT_CONFIG", "config file (default ./conduit.toml when present)"),
    ("CONDUIT_LOG_FORMAT", "json or pretty (default json when stdout is not a terminal)"),
    ("CONDUIT_METRICS_BIND", "serve /metrics on this IP:PORT instead of the main address"),
    ("CONDUIT_REQUEST_TIMEOUT", "seconds before a request is answered 503 (default 30)"),
    ("CONDUIT_MAX_CONCURRENCY", "requests handled at once; more get 503 (default 1024)"),
    ("CONDUIT_BODY_LIMIT", "largest request body in bytes (default 1048576)"),
    ("CONDUIT_ALLOWED_ORIGINS", "comma-separated origins allowed by CORS (default none)"),
    ("REDIS_URL", "redis://HOST:PORT: sessions and rate-limit counters shared by every instance"),
    ("CONDUIT_TRUSTED_PROXIES", "comma-separated proxy IPs/CIDRs whose X-Forwarded-For/-Proto are believed"),
    (
        "CONDUIT_LOGIN_ATTEMPTS",
        "failed logins per account from one address each minute; 10x per account and per address (default 10)",
    ),
    ("CONDUIT_REGISTRATIONS_PER_HOUR", "registrations (successful or not) per client address each hour (default 20)"),
    (
        "CONDUIT_REAUTH_WINDOW",
        "seconds after a login in which password and email may change without currentPassword (default 600)",
    ),
    ("CONDUIT_BODY_TIMEOUT", "seconds a client has to send a request body; slower gets 408 (default 10)"),
    ("CONDUIT_HASH_QUEUE", "password hashes that may wait for a core; more get 503 at once (default 32 per core)"),
    ("CONDUIT_SECURE_COOKIES", "always mark the session cookie Secure (default: only over HTTPS)"),
    ("CONDUIT_DB_POOL_SIZE", "database connections per instance (PostgreSQL: 16; SQLite readers: 2 per core)"),
    ("CONDUIT_DB_ACQUIRE_TIMEOUT", "seconds a request waits for a database connection before 503 (default 5)"),
    ("CONDUIT_GZIP", "gzip responses for clients that accept it: true or false (default true)"),
    ("CONDUIT_HEADER_TIMEOUT", "seconds a client has to send request headers, and to idle on keep-alive (default 10)"),
    ("CONDUIT_SHUTDOWN_GRACE", "seconds to finish in-flight requests on shutdown (default 30)"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "export traces over OTLP/HTTP to this collector (and other OTEL_*)"),
    ("RUST_LOG", "log filter (default info)"),
];

/// Limits and policies of the HTTP layer and of accounts; each has a setting below.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    /// A request still running after this is answered 503.
    pub request_timeout: Duration,
    /// Requests handled at once; more are shed with 503 and `Retry-After`.
    pub max_concurrency: usize,
    /// Largest accepted request body, in bytes; bigger gets 413.
    pub body_limit: usize,
    /// Origins allowed by CORS, as `scheme://host[:port]`. Empty: no CORS headers at all.
    pub allowed_origins: Vec<String>,
    /// gzip responses for clients that accept it.
    pub gzip: bool,
    /// Proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Failed logins allowed per account from one client address each minute (ten times as
    /// many per account over all addresses, and per address over all accounts).
    pub login_attempts_per_minute: u32,
    /// Registrations, successful or not, per client address each hour.
    pub registrations_per_hour: u32,
    /// How long after a login its token or session may change the password or email without
    /// sending `currentPassword`.
    pub reauth_window: Duration,
    /// How long a client has to send a request's body once its headers arrived.
    pub body_timeout: Duration,
    /// Password hashes that may wait for a free core; past it, logins and registrations get 503.
    pub hash_queue: usize,
    /// Mark the session cookie `Secure` always, not only on requests that came over HTTPS.
    pub secure_cookies: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            max_concurrency: 1024,
            body_limit: 1024 * 1024,
            allowed_origins: Vec::new(),
            gzip: true,
            trusted_proxies: Vec::new(),
            login_attempts_per_minute: 10,
            registrations_per_hour: 20,
            reauth_window: Duration::from_secs(600),
            body_timeout: Duration::from_secs(10),
            hash_queue: DEFAULT_HASH_QUEUE_PER_CORE
                * std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            secure_cookies: false,
        }
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

#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub database_url: String,
    pub jwt_secret: Option<Secret>,
    pub token_ttl: chrono::Duration,
    pub log_filter: String,
    /// `None`: decide by whether stdout is a terminal.
    pub log_format: Option<LogFormat>,
    /// Limits and policies of the HTTP layer.
    pub http: HttpSettings,
    /// Serve `/metrics` here instead of on the main address.
    pub metrics_bind: Option<SocketAddr>,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// How long a client may take over a request's headers (also the keep-alive idle timeout).
    pub header_read_timeout: Duration,
    /// Redis for sessions and rate-limit counters shared by every instance.
    pub redis_url: Option<String>,
    /// Database connections per instance (SQLite: readers, beside its one writer); `None`
    /// leaves it to the backend's default.
    pub db_pool_size: Option<u32>,
    /// How long a request waits for a free database connection before it gets a 503.
    pub db_acquire_timeout: Duration,
}

/// What `conduit.toml` may contain. Unknown keys are an error, so a typo cannot be ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    bind: Option<String>,
    metrics_bind: Option<String>,
    shutdown_grace_secs: Option<f64>,
    header_timeout_secs: Option<f64>,
    request_timeout_secs: Option<f64>,
    max_concurrency: Option<usize>,
    body_limit_bytes: Option<usize>,
    allowed_origins: Option<Vec<String>>,
    gzip: Option<bool>,
    secure_cookies: Option<bool>,
    login_attempts_per_minute: Option<u32>,
    registrations_per_hour: Option<u32>,
    reauth_window_secs: Option<f64>,
    body_timeout_secs: Option<f64>,
    hash_queue: Option<usize>,
    trusted_proxies: Option<Vec<String>>,
    redis_url: Option<String>,
    db_pool_size: Option<u32>,
    db_acquire_timeout_secs: Option<f64>,
    database_url: Option<String>,
    jwt_secret: Option<String>,
    token_ttl_secs: Option<u64>,
    log: Option<String>,
    log_format: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn error(message: impl Into<String>) -> ConfigError {
    ConfigError(message.into())
}

/// Where each setting may come from besides the file.
pub struct Sources<'a> {
    /// `--config`, else `CONDUIT_CONFIG`, else `default_file` if it exists.
    pub file: Option<PathBuf>,
    pub default_file: PathBuf,
    /// Looks up an environment variable (a parameter so tests need not touch the process).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// `--bind`, which beats everything.
    pub bind_flag: Option<String>,
}

impl Config {
    pub fn load(sources: Sources<'_>) -> Result<Config, ConfigError> {
        let env = |name: &str| (sources.env)(name).filter(|v| !v.is_empty());
        let file_path = sources.file.clone().or_else(|| env("CONDUIT_CONFIG").map(PathBuf::from));
        let file = match &file_path {
            Some(path) => read_file(path, true)?,
            None => read_file(&sources.default_file, false)?,
        };

        let (bind, bind_from) = match (&sources.bind_flag, env("CONDUIT_BIND"), file.bind) {
            (Some(flag), _, _) => (flag.clone(), "--bind"),
            (None, Some(var), _) => (var, "CONDUIT_BIND"),
            (None, None, Some(file)) => (file, "bind in the config file"),
            (None, None, None) => (DEFAULT_BIND.to_owned(), "the default bind address"),
        };
        let bind = bind.parse::<SocketAddr>().map_err(|_| {
            error(format!("invalid {bind_from} '{bind}': expected IP:PORT, for example 127.0.0.1:3000 or 0.0.0.0:8080"))
        })?;

        let database_url = env("DATABASE_URL").or(file.database_url).unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());

        let jwt_secret = env("CONDUIT_JWT_SECRET").or(file.jwt_secret).map(Secret);
        if let Some(secret) = &jwt_secret
            && secret.0.len() < MIN_SECRET_LEN
        {
            return Err(error(format!(
                "CONDUIT_JWT_SECRET is too short ({} characters): use at least {MIN_SECRET_LEN}, \
                 for example the output of `openssl rand -hex 32`",
                secret.0.len()
            )));
        }

        let setting = Setting { env: &env };
        let token_ttl_secs: u64 = setting.number(
            ("CONDUIT_TOKEN_TTL_SECS", "token_ttl_secs"),
            file.token_ttl_secs,
            DEFAULT_TOKEN_TTL_SECS,
            "a positive number of seconds",
            |n| *n > 0,
        )?;
        let token_ttl = i64::try_from(token_ttl_secs)
            .ok()
            .and_then(chrono::Duration::try_seconds)
            .ok_or_else(|| error(format!("token lifetime {token_ttl_secs} s is out of range")))?;

        let seconds = |name: (&str, &str), file, default| {
            setting
                .number::<f64>(name, file, default, "a positive number of seconds", |s| {
                    s.is_finite() && *s > 0.0 && *s < 1e9
                })
                .map(Duration::from_secs_f64)
        };
        let defaults = HttpSettings::default();
        let http = HttpSettings {
            request_timeout: seconds(
                ("CONDUIT_REQUEST_TIMEOUT", "request_timeout_secs"),
                file.request_timeout_secs,
                defaults.request_timeout.as_secs_f64(),
            )?,
            max_concurrency: setting.number(
                ("CONDUIT_MAX_CONCURRENCY", "max_concurrency"),
                file.max_concurrency,
                defaults.max_concurrency,
                "a positive whole number",
                |n| *n > 0,
            )?,
            body_limit: setting.number(
                ("CONDUIT_BODY_LIMIT", "body_limit_bytes"),
                file.body_limit_bytes,
                defaults.body_limit,
                "a positive number of bytes",
                |n| *n > 0,
            )?,
            gzip: flag(env("CONDUIT_GZIP"), file.gzip, defaults.gzip, "CONDUIT_GZIP")?,
            secure_cookies: flag(
                env("CONDUIT_SECURE_COOKIES"),
                file.secure_cookies,
                defaults.secure_cookies,
                "CONDUIT_SECURE_COOKIES",
            )?,
            login_attempts_per_minute: setting.number(
                ("CONDUIT_LOGIN_ATTEMPTS", "login_attempts_per_minute"),
                file.login_attempts_per_minute,
                defaults.login_attempts_per_minute,
                "a positive whole number",
                |n| *n > 0,
            )?,
            registrations_per_hour: setting.number(
                ("CONDUIT_REGISTRATIONS_PER_HOUR", "registrations_per_hour"),
                file.registrations_per_hour,
                defaults.registrations_per_hour,
                "a positive whole number",
                |n| *n > 0,
            )?,
            reauth_window: seconds(
                ("CONDUIT_REAUTH_WINDOW", "reauth_window_secs"),
                file.reauth_window_secs,
                defaults.reauth_window.as_secs_f64(),
            )?,
            body_timeout: seconds(
                ("CONDUIT_BODY_TIMEOUT", "body_timeout_secs"),
                file.body_timeout_secs,
                defaults.body_timeout.as_secs_f64(),
            )?,
            hash_queue: defaults.hash_queue,
            trusted_proxies: match env("CONDUIT_TRUSTED_PROXIES") {
                Some(list) => list.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect(),
                None => file.trusted_proxies.unwrap_or_default(),
            }
            .iter()
            .map(|p| p.parse().map_err(|e| error(format!("invalid CONDUIT_TRUSTED_PROXIES: {e}"))))
            .collect::<Result<_, _>>()?,
            allowed_origins: match env("CONDUIT_ALLOWED_ORIGINS") {
                Some(list) => list.split(',').map(|o| o.trim().to_owned()).filter(|o| !o.is_empty()).collect(),
                None => file.allowed_origins.unwrap_or_default(),
            },
        };
        for origin in &http.allowed_origins {
            check_origin(origin)?;
        }
        // Requests waiting to hash a password hold request slots: they must never hold them all.
        let mut http = http;
        http.hash_queue = match setting.optional_number(
            ("CONDUIT_HASH_QUEUE", "hash_queue"),
            file.hash_queue,
            "a whole number below CONDUIT_MAX_CONCURRENCY",
            |n: &usize| *n < http.max_concurrency,
        )? {
            Some(queue) => queue,
            None => http.hash_queue.min(http.max_concurrency / 2),
        };
        let db_pool_size = setting.optional_number(
            ("CONDUIT_DB_POOL_SIZE", "db_pool_size"),
            file.db_pool_size,
            "a whole number from 1 to 1000",
            |n| (1..=1000).contains(n),
        )?;
        let db_acquire_timeout =
            seconds(("CONDUIT_DB_ACQUIRE_TIMEOUT", "db_acquire_timeout_secs"), file.db_acquire_timeout_secs, 5.0)?;
        let shutdown_grace =
            seconds(("CONDUIT_SHUTDOWN_GRACE", "shutdown_grace_secs"), file.shutdown_grace_secs, 30.0)?;
        let header_read_timeout =
            seconds(("CONDUIT_HEADER_TIMEOUT", "header_timeout_secs"), file.header_timeout_secs, 10.0)?;
        let metrics_bind = match env("CONDUIT_METRICS_BIND").or(file.metrics_bind) {
            Some(raw) => Some(raw.parse::<SocketAddr>().map_err(|_| {
                error(format!("invalid CONDUIT_METRICS_BIND '{raw}': expected IP:PORT, for example 127.0.0.1:9100"))
            })?),
            None => None,
        };

        let log_filter = env("RUST_LOG").or(file.log).unwrap_or_else(|| DEFAULT_LOG_FILTER.to_owned());
        let log_format = match env("CONDUIT_LOG_FORMAT").or(file.log_format).as_deref() {
            None => None,
            Some("json") => Some(LogFormat::Json),
            Some("pretty") => Some(LogFormat::Pretty),
            Some(other) => {
                return Err(error(format!("invalid CONDUIT_LOG_FORMAT '{other}': expected json or pretty")));
            }
        };

        Ok(Config {
            bind,
            database_url,
            jwt_secret,
            token_ttl,
            log_filter,
            log_format,
            http,
            metrics_bind,
            shutdown_grace,
            header_read_timeout,
            redis_url: env("REDIS_URL").or(file.redis_url),
            db_pool_size,
            db_acquire_timeout,
        })
    }

    /// The configuration from the real environment.
    pub fn from_env(file: Option<PathBuf>, bind_flag: Option<String>) -> Result<Config, ConfigError> {
        Config::load(Sources {
            file,
            default_file: PathBuf::from(DEFAULT_CONFIG_FILE),
            env: &|name| std::env::var(name).ok(),
            bind_flag,
        })
    }
}

/// An on/off setting: the environment's `true`/`false` (or 1/0, on/off), else the file's, else
/// the default.
fn flag(env: Option<String>, file: Option<bool>, default: bool, name: &str) -> Result<bool, ConfigError> {
    match env.as_deref() {
        None => Ok(file.unwrap_or(default)),
        Some("true" | "1" | "on") => Ok(true),
        Some("false" | "0" | "off") => Ok(false),
        Some(other) => Err(error(format!("invalid {name} '{other}': expected true or false"))),
    }
}

/// Reads one numeric setting: the environment variable, else the file's value, else the default.
struct Setting<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Setting<'_> {
    fn number<T: FromStr + std::fmt::Display + Copy>(
        &self,
        name: (&str, &str),
        file: Option<T>,
        default: T,
        expected: &str,
        valid: impl Fn(&T) -> bool,
    ) -> Result<T, ConfigError> {
        Ok(self.optional_number(name, file, expected, valid)?.unwrap_or(default))
    }

    /// The environment's value, else the file's, else `None`; a value given but invalid is an error.
    fn optional_number<T: FromStr + std::fmt::Display + Copy>(
        &self,
        (name, key): (&str, &str),
        file: Option<T>,
        expected: &str,
        valid: impl Fn(&T) -> bool,
    ) -> Result<Option<T>, ConfigError> {
        let (value, shown, source) = match (self.env)(name) {
            Some(raw) => (raw.trim().parse::<T>().ok(), raw, name.to_owned()),
            None => match file {
                Some(value) => (Some(value), value.to_string(), format!("{key} in the config file")),
                None => return Ok(None),
            },
        };
        match value.filter(|v| valid(v)) {
            Some(value) => Ok(Some(value)),
            None => Err(error(format!("invalid {source} '{shown}': expected {expected}"))),
        }
    }
}

/// An origin is `scheme://host[:port]`, exactly as browsers send it: no path, no trailing slash.
fn check_origin(origin: &str) -> Result<(), ConfigError> {
    let valid = url::Url::parse(origin).ok().is_some_and(|u| {
        matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.origin().ascii_serialization() == origin
    });
    if valid {
        Ok(())
    } else {
        Err(error(format!(
            "invalid origin '{origin}' in CONDUIT_ALLOWED_ORIGINS: expected scheme://host[:port], for example https://app.example.com"
        )))
    }
}

fn read_file(path: &Path, required: bool) -> Result<FileConfig, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| {
            // toml's messages span several lines with a source excerpt; keep the first line.
            let message = e.message().lines().next().unwrap_or("invalid TOML").to_owned();
            error(format!("invalid config file {}: {message}", path.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(FileConfig::default()),
        Err(e) => Err(error(format!("cannot read config file {}: {e}", path.display()))),
    }
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
        Config::load(Sources { file: path, default_file, env: &env, bind_flag: bind_flag.map(Into::into) })
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
            (&[], Some("bnid = \"x\""), "unknown field `bnid`"),
            (&[], Some("bind = "), "invalid config file"),
        ];
        for (env, file, expected) in cases {
            let message = load(env, *file, None).unwrap_err().0;
            assert!(message.contains(expected), "{message:?} should mention {expected:?}");
            assert!(!message.contains('\n'), "{message:?} should be one line");
        }
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
    fn secrets_never_show_in_debug_output() {
        let secret = "s".repeat(40);
        let config = load(&[("CONDUIT_JWT_SECRET", &secret)], None, None).unwrap();
        assert!(!format!("{config:?}").contains(&secret));
        assert_eq!(config.jwt_secret.unwrap().expose(), secret);
    }
}
