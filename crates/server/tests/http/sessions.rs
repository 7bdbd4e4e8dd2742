//! Cookie sessions over HTTP on both backends (sessions in the database): login and logout,
//! cookie attributes, id cycling, CSRF, revocation by password change and deactivation.

use crate::common::{TestApp, error_messages};
use conduit_domain::model::Role;
use conduit_store::AccountChanges;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    session_login_sets_a_safe_cookie_that_works_like_a_token,
    every_login_gets_a_new_session_id,
    cookie_changes_from_other_origins_are_refused,
    password_change_ends_other_sessions_and_renews_the_callers,
    password_change_by_token_or_deactivation_ends_sessions,
);

/// A browser-like call: the session cookie, and an Origin header when given.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    cookie: Option<&str>,
    origin: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Option<String>, Value) {
    let mut request = app.client.request(method, format!("{}{path}", app.base));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let set_cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("conduit_session="));
    let text = response.text().await.unwrap();
    (status, set_cookie, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `name=value` of a Set-Cookie header.
fn cookie_of(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

async fn session_login(app: &TestApp, name: &str, password: &str) -> (StatusCode, Option<String>, Value) {
    let body = json!({"user": {"email": format!("{name}@example.com"), "password": password}});
    call(app, Method::POST, "/api/session", None, None, Some(body)).await
}

async fn logged_in(app: &TestApp, name: &str) -> String {
    let (status, set_cookie, body) = session_login(app, name, "password123").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    cookie_of(&set_cookie.expect("a session cookie"))
}

fn article(title: &str) -> Option<Value> {
    Some(json!({"article": {"title": title, "description": "d", "body": "b"}}))
}

async fn session_login_sets_a_safe_cookie_that_works_like_a_token(app: TestApp) {
    app.register("jake").await;
    let (status, set_cookie, body) = session_login(&app, "jake", "password123").await;
    assert_eq!((status, body["user"]["username"].as_str()), (StatusCode::OK, Some("jake")));
    let set_cookie = set_cookie.expect("Set-Cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie} lacks {attribute}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP, no Secure: {set_cookie}");
    let cookie = cookie_of(&set_cookie);
    let own = Some(app.base.as_str());

    let (status, _, me) = call(&app, Method::GET, "/api/user", Some(&cookie), None, None).await;
    assert_eq!((status, me["user"]["email"].as_str()), (StatusCode::OK, Some("jake@example.com")));
    let (status, _, created) =
        call(&app, Method::POST, "/api/articles", Some(&cookie), own, article("By cookie")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let slug = created["article"]["slug"].as_str().unwrap().to_owned();
    let (status, _, favorite) =
        call(&app, Method::POST, &format!("/api/articles/{slug}/favorite"), Some(&cookie), own, None).await;
    assert_eq!((status, favorite["article"]["favorited"].as_bool()), (StatusCode::OK, Some(true)));

    let (status, _, _) = call(&app, Method::DELETE, "/api/session", Some(&cookie), own, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, body) = call(&app, Method::GET, "/api/user", Some(&cookie), None, None).await;
    assert_eq!((status, error_messages(&body, "token")), (StatusCode::UNAUTHORIZED, vec!["is missing".to_string()]));
    // Logging out twice is fine.
    assert_eq!(call(&app, Method::DELETE, "/api/session", Some(&cookie), own, None).await.0, StatusCode::NO_CONTENT);

    // Wrong credentials and bad bodies answer as the token login does.
    let (status, _, body) = session_login(&app, "jake", "wrong password").await;
    assert_eq!((status, error_messages(&body, "credentials")), (StatusCode::UNAUTHORIZED, vec!["invalid".to_string()]));
    let (status, _, _) = call(&app, Method::POST, "/api/session", None, None, Some(json!({"user": {}}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn every_login_gets_a_new_session_id(app: TestApp) {
    app.register("jake").await;
    let first = logged_in(&app, "jake").await;
    let body = json!({"user": {"email": "jake@example.com", "password": "password123"}});
    let (status, set_cookie, _) = call(&app, Method::POST, "/api/session", Some(&first), None, Some(body)).await;
    assert_eq!(status, StatusCode::OK);
    let second = cookie_of(&set_cookie.expect("a new cookie"));
    assert_ne!(first, second, "the session id is cycled at login");
    assert_eq!(call(&app, Method::GET, "/api/user", Some(&first), None, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&app, Method::GET, "/api/user", Some(&second), None, None).await.0, StatusCode::OK);
}

async fn cookie_changes_from_other_origins_are_refused(app: TestApp) {
    let token = app.register("jake").await;
    let cookie = logged_in(&app, "jake").await;
    for origin in [None, Some("https://evil.example"), Some("http://127.0.0.1:1")] {
        let (status, _, body) = call(&app, Method::POST, "/api/articles", Some(&cookie), origin, article("CSRF")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{origin:?}");
        assert_eq!(error_messages(&body, "origin"), ["not allowed"]);
    }
    assert_eq!(app.articles_count().await, 0, "nothing was written");
    // Reads are not changes.
    assert_eq!(
        call(&app, Method::GET, "/api/user", Some(&cookie), Some("https://evil.example"), None).await.0,
        StatusCode::OK
    );
    // Without Origin, the Referer's origin is checked.
    let response = app
        .client
        .post(format!("{}/api/articles", app.base))
        .header("cookie", &cookie)
        .header("referer", format!("{}/editor", app.base))
        .json(&article("Own page").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    // Token-authenticated requests are not subject to the check.
    let response = app
        .client
        .post(format!("{}/api/articles", app.base))
        .header("authorization", format!("Token {token}"))
        .header("origin", "https://evil.example")
        .json(&article("By token").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

async fn password_change_ends_other_sessions_and_renews_the_callers(app: TestApp) {
    let token = app.register("jake").await;
    let mine = logged_in(&app, "jake").await;
    let other = logged_in(&app, "jake").await;
    let change = Some(json!({"user": {"password": "a new password!"}}));
    let (status, set_cookie, body) =
        call(&app, Method::PUT, "/api/user", Some(&mine), Some(app.base.as_str()), change).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let renewed = cookie_of(&set_cookie.expect("the changing session is renewed"));
    assert_ne!(renewed, mine, "with a new id");
    assert_eq!(call(&app, Method::GET, "/api/user", Some(&renewed), None, None).await.0, StatusCode::OK);
    assert_eq!(call(&app, Method::GET, "/api/user", Some(&other), None, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/api/user", Some(&token)).await.0, StatusCode::UNAUTHORIZED, "tokens are revoked too");
    let fresh = body["user"]["token"].as_str().unwrap();
    assert_eq!(app.get("/api/user", Some(fresh)).await.0, StatusCode::OK);
}

async fn password_change_by_token_or_deactivation_ends_sessions(app: TestApp) {
    let token = app.register("jake").await;
    let cookie = logged_in(&app, "jake").await;
    let (status, _) = app.put("/api/user", Some(&token), json!({"user": {"password": "changed by token"}})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(call(&app, Method::GET, "/api/user", Some(&cookie), None, None).await.0, StatusCode::UNAUTHORIZED);

    let cookie = logged_in_with(&app, "jake", "changed by token").await;
    assert_eq!(call(&app, Method::GET, "/api/user", Some(&cookie), None, None).await.0, StatusCode::OK);
    let off = AccountChanges { active: Some(false), role: Some(Role::User), by: None };
    app.store.set_account(&conduit_domain::Username::parse("jake").unwrap(), &off).await.unwrap();
    assert_eq!(call(&app, Method::GET, "/api/user", Some(&cookie), None, None).await.0, StatusCode::UNAUTHORIZED);
    let (status, _, body) = session_login(&app, "jake", "changed by token").await;
    assert_eq!((status, error_messages(&body, "user")), (StatusCode::FORBIDDEN, vec!["is deactivated".to_string()]));
}

async fn logged_in_with(app: &TestApp, name: &str, password: &str) -> String {
    let (status, set_cookie, body) = session_login(app, name, password).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    cookie_of(&set_cookie.unwrap())
}

#[tokio::test]
async fn cookies_are_secure_over_https_or_when_configured() {
    let secure_flag = |set_cookie: &Option<String>| set_cookie.as_deref().unwrap().contains("; Secure");
    let login = |app: &TestApp, proto: Option<&'static str>| {
        let mut request = app
            .client
            .post(format!("{}/api/session", app.base))
            .json(&json!({"user": {"email": "jake@example.com", "password": "password123"}}));
        if let Some(proto) = proto {
            request = request.header("x-forwarded-proto", proto);
        }
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_owned())
        }
    };
    let app = TestApp::sqlite_with(|c| c.http.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    app.register("jake").await;
    assert!(secure_flag(&login(&app, Some("https")).await));
    assert!(!secure_flag(&login(&app, Some("http")).await));
    assert!(!secure_flag(&login(&app, None).await));

    // From a peer that is not a trusted proxy, the header proves nothing.
    let app = TestApp::sqlite().await;
    app.register("jake").await;
    assert!(!secure_flag(&login(&app, Some("https")).await));

    let app = TestApp::sqlite_with(|c| c.http.secure_cookies = true).await;
    app.register("jake").await;
    assert!(secure_flag(&login(&app, None).await));
}

#[tokio::test]
async fn allowed_origins_may_make_cookie_changes() {
    let app = TestApp::sqlite_with(|c| c.http.allowed_origins = vec!["https://app.example".into()]).await;
    app.register("jake").await;
    let cookie = logged_in(&app, "jake").await;
    let (status, _, _) =
        call(&app, Method::POST, "/api/articles", Some(&cookie), Some("https://app.example"), article("Allowed")).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn session_logins_are_rate_limited_with_token_logins() {
    let app = TestApp::sqlite().await;
    app.register("jake").await;
    for i in 0..10 {
        let path = if i % 2 == 0 { "/api/session" } else { "/api/users/login" };
        let body = json!({"user": {"email": "jake@example.com", "password": "wrong"}});
        assert_eq!(app.post(path, None, body).await.0, StatusCode::UNAUTHORIZED);
    }
    let (status, _, body) = session_login(&app, "jake", "password123").await;
    assert_eq!(
        (status, error_messages(&body, "rate")),
        (StatusCode::TOO_MANY_REQUESTS, vec!["too many attempts".to_string()])
    );
}
