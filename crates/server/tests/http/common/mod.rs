//! A real Conduit server for tests: the app on a real TCP port with a fresh database of either
//! backend, and a client with one helper per common request.

#![allow(dead_code)] // not every helper is used by every backend's cases

pub mod process;
pub mod smtp;

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conduit_domain::token::TokenKeys;
use conduit_server::config::{Config, Sources};
use conduit_server::ops::clock::Clock;
use conduit_server::startup::Application;
use conduit_store::Store;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const SECRET: &[u8] = b"a test secret that is long enough!!";

/// A real server, built by `Application::build` as `conduit serve` builds it (the cached store,
/// the mail sender, the limits), on a fresh database and a free port. Its mail goes to a folder
/// (`CONDUIT_SMTP_URL=file:///...`), where [`TestApp::mailed_token`] reads it.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub mail_dir: PathBuf,
    _database: Box<dyn Any + Send>,
    _dir: tempfile::TempDir,
}

/// Generates each listed case once per backend: `sqlite::case` and `postgres::case`.
#[macro_export]
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::common::TestApp::sqlite().await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::common::TestApp::postgres().await).await
                }
            )*
        }
    };
}

pub fn keys() -> TokenKeys {
    TokenKeys::new(SECRET, chrono::Duration::hours(1))
}

/// The configuration of a test server: the defaults, as from an empty environment, but for the
/// database, a free port, the shared secret, mail to `dir/mail`, and room for the many
/// registrations, requests and connections from one address that most tests make (the limits
/// themselves are tested in `attacks.rs` and `ratelimit.rs`, with the real defaults).
pub fn test_config(database_url: &str, dir: &Path) -> Config {
    let mail = url::Url::from_directory_path(dir.join("mail")).unwrap().to_string();
    let secret = std::str::from_utf8(SECRET).unwrap().to_owned();
    let vars: Vec<(&str, String)> = vec![
        ("DATABASE_URL", database_url.to_owned()),
        ("CONDUIT_BIND", "127.0.0.1:0".to_owned()),
        ("CONDUIT_JWT_SECRET", secret),
        ("CONDUIT_TOKEN_TTL_SECS", "3600".to_owned()),
        ("CONDUIT_SMTP_URL", mail),
        ("CONDUIT_PUBLIC_URL", "https://frontend.example".to_owned()),
        ("CONDUIT_REGISTRATIONS_PER_HOUR", "100000".to_owned()),
        ("CONDUIT_MAX_REQUESTS_PER_ADDRESS", "100000".to_owned()),
        ("CONDUIT_ARTICLES_PER_HOUR", "100000".to_owned()),
        ("CONDUIT_COMMENTS_PER_MINUTE", "100000".to_owned()),
        ("CONDUIT_EXPORTS_PER_HOUR", "100000".to_owned()),
        ("CONDUIT_MAX_CONNECTIONS_PER_ADDRESS", "100000".to_owned()),
        ("CONDUIT_SHUTDOWN_GRACE", "5".to_owned()),
    ];
    let env = move |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone());
    Config::load(Sources { file: None, default_file: dir.join("absent.toml"), env: &env, flags: Vec::new() })
        .expect("the test configuration loads")
}

/// A quoted-printable body decoded (soft line breaks joined, `=XX` escapes turned back into
/// bytes), as the sender writes long lines.
fn quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'=')
            .then(|| std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok())
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Time for a SQLite test server to open its database while the suite loads both cores: twice
/// (of some 400 tests a run) opening a fresh file took over the default 5 s and failed a test
/// that was not about it. No SQLite test waits on this timeout for an answer (the PostgreSQL
/// outage tests do, with the default).
fn roomy_sqlite(config: &mut Config) {
    config.db_acquire_timeout = std::time::Duration::from_secs(20);
}

/// The real default limits, instead of the test configuration's room for many registrations.
pub fn real_limits(config: &mut Config) {
    config.limits = conduit_server::config::LimitSettings::default();
}

impl TestApp {
    pub async fn sqlite() -> Self {
        Self::sqlite_with(|_| {}).await
    }

    pub async fn postgres() -> Self {
        Self::postgres_with(|_| {}).await
    }

    /// On SQLite, with `change` made to the test configuration.
    /// The folder of the test's database (on SQLite, its `conduit.db`).
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub async fn sqlite_with(change: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("conduit.db").display());
        Self::start(&url, Box::new(()), dir, |config| {
            roomy_sqlite(config);
            change(config);
        })
        .await
    }

    /// On SQLite, with `change` made to the test configuration, on `clock` (for the rate limits
    /// and the re-authentication window).
    pub async fn sqlite_with_clock(clock: Arc<dyn Clock>, change: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("conduit.db").display());
        let mut config = test_config(&url, dir.path());
        roomy_sqlite(&mut config);
        change(&mut config);
        let application = Application::build_with_clock(config, clock).await.expect("build the application");
        Self::serve(application, Box::new(()), dir)
    }

    /// On a fresh PostgreSQL database, with `change` made to the test configuration.
    pub async fn postgres_with(change: impl FnOnce(&mut Config)) -> Self {
        let database = conduit_store_postgres::testing::TestDatabase::create().await;
        let url = database.url.clone();
        Self::start(&url, Box::new(database), tempfile::tempdir().expect("temporary directory"), change).await
    }

    async fn start(
        url: &str,
        database: Box<dyn Any + Send>,
        dir: tempfile::TempDir,
        change: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = test_config(url, dir.path());
        change(&mut config);
        let application = Application::build(config).await.expect("build the application");
        Self::serve(application, database, dir)
    }

    fn serve(application: Application, database: Box<dyn Any + Send>, dir: tempfile::TempDir) -> Self {
        let base = format!("http://{}", application.local_addr());
        let store = application.store();
        tokio::spawn(application.run_until(std::future::pending()));
        let mail_dir = dir.path().join("mail");
        TestApp { base, client: reqwest::Client::new(), store, mail_dir, _database: database, _dir: dir }
    }

    /// The token of the newest mailed link to `page` (such as `verify-email`), as the sender
    /// delivered it: waits up to ten seconds for it to arrive.
    pub async fn mailed_token(&self, page: &str) -> String {
        self.next_link(None, page, 0).await
    }

    /// The token of the newest link to `page` mailed to `to`: waits up to ten seconds for one.
    pub async fn mailed_token_to(&self, to: &str, page: &str) -> String {
        self.next_link(Some(to), page, 0).await
    }

    /// Waits (up to ten seconds) until more than `seen` links to `page` were mailed to `to`, and
    /// returns the newest: for a link asked for when an older one was mailed already.
    pub async fn next_mailed_token_to(&self, to: &str, page: &str, seen: usize) -> String {
        self.next_link(Some(to), page, seen).await
    }

    /// Every link to `page` mailed to `to` so far, oldest first.
    pub fn mailed_tokens_to(&self, to: &str, page: &str) -> Vec<String> {
        self.links(Some(to), page)
    }

    async fn next_link(&self, to: Option<&str>, page: &str, seen: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let links = self.links(to, page);
            if links.len() > seen {
                return links.last().unwrap().clone();
            }
            assert!(
                Instant::now() < deadline,
                "no new {page} link was mailed to {to:?} in {}",
                self.mail_dir.display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The tokens of the links to `page` in the delivered mail (to `to`, when given), oldest first.
    fn links(&self, to: Option<&str>, page: &str) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.mail_dir) else { return Vec::new() };
        let mut mails: Vec<(i64, PathBuf)> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter_map(|p| Some((p.file_stem()?.to_str()?.parse().ok()?, p)))
            .collect();
        mails.sort();
        let marker = format!("/{page}#token=");
        mails
            .iter()
            .filter_map(|(_, path)| {
                let text = quoted_printable(&std::fs::read_to_string(path).ok()?);
                if let Some(to) = to
                    && !text.lines().any(|line| line.trim_end() == format!("To: {to}"))
                {
                    return None;
                }
                let start = text.find(&marker)? + marker.len();
                text[start..].split_whitespace().next().map(str::to_owned)
            })
            .collect()
    }

    /// Sends a request and returns the status and the JSON body (`Null` when empty).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Token {token}"));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status} body is not JSON: {text:?}"))
        };
        (status, json)
    }

    /// Sends raw bytes as the body, with a JSON content type.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.header("Authorization", format!("Token {token}"));
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status} body is not JSON: {text:?}")))
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.send(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.send(Method::PUT, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.send(Method::DELETE, path, token, None).await
    }

    /// Registers `name` (email `name@example.com`, password `password123`) and returns the token.
    pub async fn register(&self, name: &str) -> String {
        let (status, body) = self
            .post(
                "/api/users",
                None,
                json!({"user": {"username": name, "email": format!("{name}@example.com"), "password": "password123"}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["user"]["token"].as_str().unwrap().to_owned()
    }

    /// Creates an article and returns its slug.
    pub async fn article(&self, token: &str, title: &str, tags: &[&str]) -> String {
        let (status, body) = self
            .post(
                "/api/articles",
                Some(token),
                json!({"article": {"title": title, "description": "d", "body": "b", "tagList": tags}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["article"]["slug"].as_str().unwrap().to_owned()
    }

    pub async fn articles_count(&self) -> i64 {
        let (status, body) = self.get("/api/articles", None).await;
        assert_eq!(status, StatusCode::OK);
        body["articlesCount"].as_i64().unwrap()
    }
}

/// A token for `name` whose login was an hour ago, as a stolen or long-lived one would be.
pub async fn an_hour_old_login(app: &TestApp, name: &str) -> String {
    let user = app
        .store
        .credentials_by_email(&conduit_domain::Email::parse(&format!("{name}@example.com")).unwrap())
        .await
        .unwrap()
        .unwrap()
        .user;
    let hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    let grant = conduit_domain::token::Grant::login(hour_ago);
    keys().mint(user.id, user.token_version, &grant, chrono::Utc::now())
}

/// Asserts the spec's error shape, `{"errors":{"<field>":["<message>", ...]}}`, and returns
/// the messages of `field`.
pub fn error_messages(body: &Value, field: &str) -> Vec<String> {
    let errors = body["errors"].as_object().unwrap_or_else(|| panic!("no errors object in {body}"));
    for (key, messages) in errors {
        let messages = messages.as_array().unwrap_or_else(|| panic!("errors.{key} is not a list in {body}"));
        assert!(!messages.is_empty() && messages.iter().all(Value::is_string), "errors.{key} in {body}");
    }
    errors
        .get(field)
        .unwrap_or_else(|| panic!("no errors.{field} in {body}"))
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect()
}
