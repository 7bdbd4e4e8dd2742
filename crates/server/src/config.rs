//! Typed configuration, layered: built-in defaults, then an optional `conduit.toml`, then
//! environment variables, then command-line flags. Every mistake is one clear line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const DEFAULT_BIND: &str = "127.0.0.1:3000";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://conduit.db";
pub const DEFAULT_CONFIG_FILE: &str = "conduit.toml";
pub const DEFAULT_TOKEN_TTL_SECS: u64 = 24 * 60 * 60;
pub const DEFAULT_LOG_FILTER: &str = "info,sqlx=warn,tower_http=warn";
/// HS256 keys shorter than this are guessable; refuse them.
pub const MIN_SECRET_LEN: usize = 32;

/// The environment variables read, for `--help` and the README.
pub const ENV_VARS: &[(&str, &str)] = &[
    (
        "DATABASE_URL",
        "sqlite://PATH (default sqlite://conduit.db) or postgres://USER:PASS@HOST/DB",
    ),
    (
        "CONDUIT_BIND",
        "address to listen on (default 127.0.0.1:3000)",
    ),
    (
        "CONDUIT_JWT_SECRET",
        "token signing secret, at least 32 characters; required on PostgreSQL",
    ),
    (
        "CONDUIT_TOKEN_TTL_SECS",
        "token lifetime in seconds (default 86400)",
    ),
    (
        "CONDUIT_CONFIG",
        "config file (default ./conduit.toml when present)",
    ),
    (
        "CONDUIT_LOG_FORMAT",
        "json or pretty (default json when stdout is not a terminal)",
    ),
    ("RUST_LOG", "log filter (default info)"),
];

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
}

/// What `conduit.toml` may contain. Unknown keys are an error, so a typo cannot be ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    bind: Option<String>,
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
        let file_path = sources
            .file
            .clone()
            .or_else(|| env("CONDUIT_CONFIG").map(PathBuf::from));
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

        let database_url = env("DATABASE_URL")
            .or(file.database_url)
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());

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

        let token_ttl_secs = match env("CONDUIT_TOKEN_TTL_SECS") {
            Some(raw) => raw.parse::<u64>().ok().filter(|s| *s > 0).ok_or_else(|| {
                error(format!(
                    "invalid CONDUIT_TOKEN_TTL_SECS '{raw}': expected a positive number of seconds"
                ))
            })?,
            None => file.token_ttl_secs.unwrap_or(DEFAULT_TOKEN_TTL_SECS),
        };
        let token_ttl = i64::try_from(token_ttl_secs)
            .ok()
            .and_then(chrono::Duration::try_seconds)
            .filter(|_| token_ttl_secs > 0)
            .ok_or_else(|| error(format!("token lifetime {token_ttl_secs} s is out of range")))?;

        let log_filter = env("RUST_LOG")
            .or(file.log)
            .unwrap_or_else(|| DEFAULT_LOG_FILTER.to_owned());
        let log_format = match env("CONDUIT_LOG_FORMAT").or(file.log_format).as_deref() {
            None => None,
            Some("json") => Some(LogFormat::Json),
            Some("pretty") => Some(LogFormat::Pretty),
            Some(other) => {
                return Err(error(format!(
                    "invalid CONDUIT_LOG_FORMAT '{other}': expected json or pretty"
                )));
            }
        };

        Ok(Config {
            bind,
            database_url,
            jwt_secret,
            token_ttl,
            log_filter,
            log_format,
        })
    }

    /// The configuration from the real environment.
    pub fn from_env(
        file: Option<PathBuf>,
        bind_flag: Option<String>,
    ) -> Result<Config, ConfigError> {
        Config::load(Sources {
            file,
            default_file: PathBuf::from(DEFAULT_CONFIG_FILE),
            env: &|name| std::env::var(name).ok(),
            bind_flag,
        })
    }
}

fn read_file(path: &Path, required: bool) -> Result<FileConfig, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| {
            // toml's messages span several lines with a source excerpt; keep the first line.
            let message = e
                .message()
                .lines()
                .next()
                .unwrap_or("invalid TOML")
                .to_owned();
            error(format!("invalid config file {}: {message}", path.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            Ok(FileConfig::default())
        }
        Err(e) => Err(error(format!(
            "cannot read config file {}: {e}",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(
        vars: &[(&str, &str)],
        file: Option<&str>,
        bind_flag: Option<&str>,
    ) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = file.map(|text| {
            let path = dir.path().join("conduit.toml");
            std::fs::write(&path, text).unwrap();
            path
        });
        let env = move |name: &str| vars.get(name).cloned();
        let default_file = dir.path().join("absent.toml");
        Config::load(Sources {
            file: path,
            default_file,
            env: &env,
            bind_flag: bind_flag.map(Into::into),
        })
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
        let file =
            "bind = \"127.0.0.1:4000\"\ndatabase_url = \"sqlite://file.db\"\ntoken_ttl_secs = 60\n";
        let config = load(&[], Some(file), None).unwrap();
        assert_eq!(
            (config.bind.port(), config.database_url.as_str()),
            (4000, "sqlite://file.db")
        );
        assert_eq!(config.token_ttl, chrono::Duration::seconds(60));

        let env = [
            ("CONDUIT_BIND", "127.0.0.1:5000"),
            ("DATABASE_URL", "sqlite://env.db"),
        ];
        let config = load(&env, Some(file), None).unwrap();
        assert_eq!(
            (config.bind.port(), config.database_url.as_str()),
            (5000, "sqlite://env.db")
        );

        let config = load(&env, Some(file), Some("127.0.0.1:6000")).unwrap();
        assert_eq!(config.bind.port(), 6000);
    }

    #[test]
    fn mistakes_are_one_line_naming_the_setting() {
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>, &'a str);
        let cases: &[Case] = &[
            (
                &[("CONDUIT_BIND", "nonsense")],
                None,
                "invalid CONDUIT_BIND 'nonsense'",
            ),
            (
                &[("CONDUIT_JWT_SECRET", "short")],
                None,
                "CONDUIT_JWT_SECRET is too short",
            ),
            (
                &[("CONDUIT_TOKEN_TTL_SECS", "-5")],
                None,
                "invalid CONDUIT_TOKEN_TTL_SECS",
            ),
            (
                &[("CONDUIT_LOG_FORMAT", "xml")],
                None,
                "invalid CONDUIT_LOG_FORMAT",
            ),
            (&[], Some("bnid = \"x\""), "unknown field `bnid`"),
            (&[], Some("bind = "), "invalid config file"),
        ];
        for (env, file, expected) in cases {
            let message = load(env, *file, None).unwrap_err().0;
            assert!(
                message.contains(expected),
                "{message:?} should mention {expected:?}"
            );
            assert!(!message.contains('\n'), "{message:?} should be one line");
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
