//! A real Conduit server for tests: the app on a real TCP port with a fresh database of either
//! backend, and a client with one helper per common request.

#![allow(dead_code)] // not every helper is used by every backend's cases

pub mod process;
pub mod smtp;

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use conduit_domain::token::TokenKeys;
use conduit_server::config::{HttpSettings, MailSettings};
use conduit_server::{AppState, app, serve};
use conduit_store::Store;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const SECRET: &[u8] = b"a test secret that is long enough!!";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    _database: Box<dyn Any + Send>,
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

/// The defaults, but with room for the many registrations from one address that most tests
/// make (the limit itself is tested in `attacks.rs`, with the real default).
pub fn settings() -> HttpSettings {
    HttpSettings { registrations_per_hour: 100_000, ..HttpSettings::default() }
}

pub fn keys() -> TokenKeys {
    TokenKeys::new(SECRET, chrono::Duration::hours(1))
}

impl TestApp {
    pub async fn sqlite() -> Self {
        Self::sqlite_with(settings()).await
    }

    pub async fn postgres() -> Self {
        Self::postgres_with(settings()).await
    }

    pub async fn sqlite_with(settings: HttpSettings) -> Self {
        let (store, dir) = conduit_store_sqlite::testing::fresh_store().await;
        Self::start(Arc::new(store), Box::new(dir), settings).await
    }

    pub async fn postgres_with(settings: HttpSettings) -> Self {
        let (store, db) = conduit_store_postgres::testing::fresh_store().await;
        Self::start(Arc::new(store), Box::new(db), settings).await
    }

    /// On SQLite, with these mail settings.
    pub async fn sqlite_with_mail(mail: MailSettings) -> Self {
        let (store, dir) = conduit_store_sqlite::testing::fresh_store().await;
        let state = AppState::new(Arc::new(store), keys())
            .with_http(settings())
            .with_mail(mail, "https://frontend.example".into());
        Self::serve(state, Box::new(dir)).await
    }

    async fn start(store: Arc<dyn Store>, database: Box<dyn Any + Send>, settings: HttpSettings) -> Self {
        Self::serve(AppState::new(store, keys()).with_http(settings), database).await
    }

    async fn serve(state: AppState, database: Box<dyn Any + Send>) -> Self {
        let store = state.store.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(serve(listener, app(state), Duration::from_secs(30), std::future::pending()));
        TestApp { base, client: reqwest::Client::new(), store, _database: database }
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
