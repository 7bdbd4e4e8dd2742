//! Hostile input on both backends: NUL bytes, invalid UTF-8, SQL metacharacters, overlong and
//! deeply nested input, in paths, query strings and bodies. Always a 4xx in the API's error
//! shape or a correct 2xx with the value stored verbatim; never a 5xx.

use crate::common::{TestApp, error_messages};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    nul_and_invalid_utf8_in_paths_and_queries_are_4xx,
    hostile_bodies_are_4xx_or_stored_verbatim,
    control_characters_are_refused_naming_the_field,
);

async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Vec<u8>>,
) -> (StatusCode, Value) {
    let mut request = app.client.request(method, format!("{}{path}", app.base));
    if let Some(token) = token {
        request = request.header("authorization", format!("Token {token}"));
    }
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn assert_clean_4xx(status: StatusCode, body: &Value, what: &str) {
    assert!(status.is_client_error(), "{what}: {status} {body}");
    assert!(body["errors"].as_object().is_some_and(|e| !e.is_empty()), "{what}: not the error shape: {body}");
}

async fn nul_and_invalid_utf8_in_paths_and_queries_are_4xx(app: TestApp) {
    let token = app.register("jake").await;
    let slug = app.article(&token, "Target", &["t"]).await;
    let nasty = ["a%00b", "%00", "%ff%fe", "%c3%28"];
    for bad in nasty {
        for (method, path) in [
            (Method::GET, format!("/api/articles/{bad}")),
            (Method::GET, format!("/api/articles/{bad}/comments")),
            (Method::GET, format!("/api/profiles/{bad}")),
            (Method::POST, format!("/api/profiles/{bad}/follow")),
            (Method::DELETE, format!("/api/articles/{bad}")),
            (Method::PUT, format!("/api/admin/users/{bad}")),
            (Method::DELETE, format!("/api/articles/{slug}/comments/{bad}")),
        ] {
            let (status, body) = raw(&app, method.clone(), &path, Some(&token), Some(b"{}".to_vec())).await;
            assert_clean_4xx(status, &body, &format!("{method} {path}"));
        }
        for query in ["tag", "author", "favorited", "limit", "offset"] {
            let path = format!("/api/articles?{query}={bad}");
            let (status, body) = raw(&app, Method::GET, &path, None, None).await;
            assert_clean_4xx(status, &body, &path);
        }
    }
    // SQL metacharacters are just characters.
    for probe in ["' OR '1'='1", "\"; DROP TABLE users; --", "%' --", "\\\\", "tag'); --"] {
        let encoded: String = probe.bytes().map(|b| format!("%{b:02X}")).collect();
        let (status, body) = raw(&app, Method::GET, &format!("/api/articles?tag={encoded}"), None, None).await;
        assert_eq!((status, body["articlesCount"].as_i64()), (StatusCode::OK, Some(0)), "{probe}");
        let (status, _) = raw(&app, Method::GET, &format!("/api/profiles/{encoded}"), None, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{probe}");
    }
    assert_eq!(app.articles_count().await, 1, "nothing was lost");
}

async fn hostile_bodies_are_4xx_or_stored_verbatim(app: TestApp) {
    let token = app.register("jake").await;
    let post = |body: Vec<u8>| raw(&app, Method::POST, "/api/articles", Some(&token), Some(body));
    let article = |title: Value, tags: Value| {
        json!({"article": {"title": title, "description": "d", "body": "b", "tagList": tags}}).to_string().into_bytes()
    };
    for (what, body) in [
        ("NUL in title", article(json!("a\u{0}b"), json!([]))),
        ("NUL in a tag", article(json!("t"), json!(["a\u{0}"]))),
        ("1 MB title", article(json!("x".repeat(1_000_000)), json!([]))),
        ("10,000 tags", article(json!("t"), json!((0..10_000).map(|i| format!("t{i}")).collect::<Vec<_>>()))),
        ("deeply nested", format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes()),
        (
            "nested in a field",
            format!(r#"{{"article":{{"title":{}1{}}}}}"#, "[".repeat(5_000), "]".repeat(5_000)).into_bytes(),
        ),
        ("invalid UTF-8", b"{\"article\":{\"title\":\"\xff\xfe\",\"description\":\"d\",\"body\":\"b\"}}".to_vec()),
        ("lone surrogate", br#"{"article":{"title":"\ud800","description":"d","body":"b"}}"#.to_vec()),
    ] {
        let (status, answer) = post(body).await;
        assert_clean_4xx(status, &answer, what);
    }
    let login = |email: &str| json!({"user": {"email": email, "password": "password123"}}).to_string().into_bytes();
    let (status, answer) = raw(&app, Method::POST, "/api/users/login", None, Some(login("a\u{0}b@example.com"))).await;
    assert_clean_4xx(status, &answer, "NUL in a login email");

    // Metacharacters and unusual but valid text are stored and returned verbatim.
    let title = "Robert'); DROP TABLE articles; -- \"quoted\" <b>bold</b> \\ ünïcødé 🦀";
    let (status, created) = post(article(json!(title), json!(["' OR 1=1 --", "<script>"]))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["article"]["title"], title);
    let slug = created["article"]["slug"].as_str().unwrap();
    let (_, fetched) = raw(&app, Method::GET, &format!("/api/articles/{slug}"), None, None).await;
    assert_eq!(fetched["article"]["title"], title);
    assert_eq!(fetched["article"]["tagList"], json!(["' OR 1=1 --", "<script>"]));
    let (_, listed) = raw(&app, Method::GET, "/api/articles?tag=%27%20OR%201%3D1%20--", None, None).await;
    assert_eq!(listed["articlesCount"], 1);
    assert_eq!(app.articles_count().await, 1, "only the valid article was written");

    // A caller's request id is kept only when short and plain (at most 64 of [A-Za-z0-9._-]);
    // any other (a tab, 300 characters, a non-ASCII byte) is replaced by one of ours, once.
    let long = "a".repeat(300);
    let cases: [(&[u8], bool); 5] = [
        (b"req-1.A_b", true),
        (&[b'x'; 64], true),
        (b"abc\tdef", false),
        (long.as_bytes(), false),
        (b"caf\xc3\xa9", false),
    ];
    for (sent, kept) in cases {
        let value = reqwest::header::HeaderValue::from_bytes(sent).unwrap();
        let response =
            app.client.get(format!("{}/api/tags", app.base)).header("x-request-id", value).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let ids: Vec<&[u8]> = response.headers().get_all("x-request-id").iter().map(|v| v.as_bytes()).collect();
        assert_eq!(ids.len(), 1, "one id: {ids:?}");
        if kept {
            assert_eq!(ids[0], sent, "a plain id is kept");
        } else {
            assert_ne!(ids[0], sent, "{:?} is replaced", String::from_utf8_lossy(sent));
            assert_eq!(ids[0].len(), 36, "by a UUID of ours: {:?}", String::from_utf8_lossy(ids[0]));
        }
    }
    let response = app.client.get(format!("{}/api/tags", app.base)).send().await.unwrap();
    let answer: Value = response.json().await.unwrap();
    assert!(answer["tags"].is_array(), "{answer}");
}

/// C0 control characters other than tab and line breaks are refused in every text field, with a
/// 422 naming the field: stored, each became six bytes in every JSON answer (`\u0001`), so one
/// account could make an anonymous page of comments hundreds of MB.
async fn control_characters_are_refused_naming_the_field(app: TestApp) {
    let token = app.register("jake").await;
    let article = |title: &str, body: &str| json!({"article": {"title": title, "description": "d", "body": body}});
    let (status, body) = app.post("/api/articles", Some(&token), article("a\u{1}b", "b")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_messages(&body, "title"), [conduit_domain::validation::CONTROL_CHARACTERS]);
    let (status, created) = app.post("/api/articles", Some(&token), article("t", "tab\there\nand a line\r\n")).await;
    assert_eq!(status, StatusCode::CREATED, "tab and line breaks are text: {created}");
    let slug = created["article"]["slug"].as_str().unwrap();
    let comment = json!({"comment": {"body": "\u{1}".repeat(1000)}});
    let (status, body) = app.post(&format!("/api/articles/{slug}/comments"), Some(&token), comment).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_messages(&body, "body"), [conduit_domain::validation::CONTROL_CHARACTERS]);
    let (status, body) = app.put("/api/user", Some(&token), json!({"user": {"bio": "hi\u{7}"}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["errors"]["bio"].is_array(), "{body}");
    let (_, comments) = app.get(&format!("/api/articles/{slug}/comments"), None).await;
    assert_eq!(comments["comments"], json!([]), "nothing was stored");
}
