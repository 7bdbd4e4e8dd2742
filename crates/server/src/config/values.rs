//! The kinds of value a setting takes, and the parser that checks each: a mistake is one line
//! saying what was expected.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

pub use ipnet::IpNet;

/// HS256 keys shorter than this are guessable; refuse them.
pub const MIN_SECRET_LEN: usize = 32;

/// `CONDUIT_SMTP_URL`: kept whole (lettre reads it), shown without its password.
#[derive(Clone, PartialEq, Eq)]
pub enum SmtpUrl {
    /// smtp:// or smtps://.
    Smtp(String),
    /// file:///DIR: each message as DIR/<id>.eml.
    Folder(PathBuf),
    /// log: each message as a log line, links included (chosen explicitly: tokens in logs).
    Log,
}

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SmtpUrl::Smtp(url) => write!(f, "Smtp({})", redact_password(url)),
            SmtpUrl::Folder(dir) => write!(f, "Folder({})", dir.display()),
            SmtpUrl::Log => write!(f, "Log"),
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeletedContentPolicy {
    Delete,
    Keep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UnverifiedPolicy {
    All,
    Read,
    None,
}

/// Whether `ip` is in one of `nets`: an IPv4-mapped IPv6 peer (`::ffff:a.b.c.d`) is compared as
/// the IPv4 address it is.
pub fn is_trusted_proxy(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    nets.iter().any(|net| net.contains(&ip))
}

/// A value that must not appear in logs or `Debug` output.
pub type Secret = secrecy::SecretString;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

// --- value parsers: the validation of each kind of setting ---

pub(super) fn seconds(raw: &str) -> Result<Duration, String> {
    raw.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| "expected a positive number of seconds".to_owned())
}

pub(super) fn token_ttl(raw: &str) -> Result<chrono::Duration, String> {
    positive::<u64>(raw)
        .ok()
        .and_then(|s| i64::try_from(s).ok())
        .and_then(chrono::Duration::try_seconds)
        .ok_or_else(|| "expected a positive number of seconds".to_owned())
}

pub(super) fn positive<T: FromStr + PartialOrd + Default>(raw: &str) -> Result<T, String> {
    raw.trim().parse::<T>().ok().filter(|n| *n > T::default()).ok_or_else(|| "expected a positive whole number".into())
}

pub(super) fn whole<T: FromStr>(raw: &str) -> Result<T, String> {
    raw.trim().parse::<T>().map_err(|_| "expected a whole number".into())
}

pub(super) fn socket_addr(raw: &str) -> Result<SocketAddr, String> {
    raw.trim().parse().map_err(|_| "expected IP:PORT, for example 127.0.0.1:3000 or 0.0.0.0:8080".into())
}

pub(super) fn secret(raw: &str) -> Result<Secret, String> {
    if raw.len() < MIN_SECRET_LEN {
        return Err(format!(
            "is too short ({} characters): use at least {MIN_SECRET_LEN}, for example the output of `openssl rand -hex 32`",
            raw.len()
        ));
    }
    Ok(Secret::from(raw))
}

/// A CIDR block such as `10.0.0.0/8` or `fd00::/8`, or one address (a block of one).
pub fn ip_net(raw: &str) -> Result<IpNet, String> {
    let raw = raw.trim();
    raw.parse::<IpNet>()
        .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("'{raw}' is not an IP address or CIDR block"))
}

/// An origin is `scheme://host[:port]`, exactly as browsers send it: no path, no trailing slash.
pub(super) fn origin(raw: &str) -> Result<String, String> {
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

pub(super) fn smtp_url(raw: &str) -> Result<SmtpUrl, String> {
    let raw = raw.trim();
    let url = url::Url::parse(raw)
        .map_err(|_| "is not a URL: expected smtp://HOST:PORT, smtps://HOST, file:///DIR or log:".to_owned())?;
    match url.scheme() {
        "smtp" | "smtps" if url.host_str().is_some_and(|h| !h.is_empty()) => Ok(SmtpUrl::Smtp(raw.to_owned())),
        "file" => url
            .to_file_path()
            .map(SmtpUrl::Folder)
            .map_err(|()| "is not a usable folder: expected file:///ABSOLUTE/DIR".to_owned()),
        "log" => Ok(SmtpUrl::Log),
        _ => Err("is not a mail URL: expected smtp://HOST:PORT, smtps://HOST, file:///DIR or log:".into()),
    }
}

pub(super) fn public_url(raw: &str) -> Result<String, String> {
    let base = raw.trim().trim_end_matches('/');
    match url::Url::parse(base) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(base.to_owned()),
        _ => Err("expected http(s)://HOST[:PORT][/PATH], for example https://conduit.example.com".into()),
    }
}
