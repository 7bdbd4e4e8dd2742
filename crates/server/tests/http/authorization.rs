//! The authorization matrix on both backends: every mutating operation on another user's
//! resource with their token gives 403, with no token 401, and nothing changes; private data
//! (email) is never shown to anyone else.

use crate::common::{TestApp, error_messages};
use conduit_domain::model::Role;
use conduit_store::AccountChanges;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    nobody_else_may_change_what_is_yours,
    private_data_stays_private,
    concurrent_edits_of_one_article_keep_a_whole_tag_list_and_a_fitting_slug,
    favorite_and_follow_storms_end_as_a_serial_replay_would,
);

/// Everything a user can observe about the owner's data, to compare before and after.
async fn snapshot(app: &TestApp, owner: &str, slug: &str, admin: &str) -> Value {
    json!({
        "article": app.get(&format!("/api/articles/{slug}"), Some(owner)).await.1,
        "comments": app.get(&format!("/api/articles/{slug}/comments"), Some(owner)).await.1,
        "owner": app.get("/api/user", Some(owner)).await.1["user"].as_object().map(|u| {
            let mut u = u.clone();
            u.remove("token");
            u
        }),
        "users": app.get("/api/admin/users", Some(admin)).await.1,
    })
}

async fn nobody_else_may_change_what_is_yours(app: TestApp) {
    let owner = app.register("owner").await;
    let other = app.register("other").await;
    let admin = app.register("admin").await;
    app.store
        .set_account(
            &conduit_domain::Username::parse("admin").unwrap(),
            &AccountChanges { role: Some(Role::Admin), active: None, by: None },
        )
        .await
        .unwrap();
    let slug = app.article(&owner, "Mine", &["keep"]).await;
    let (_, comment) =
        app.post(&format!("/api/articles/{slug}/comments"), Some(&owner), json!({"comment": {"body": "mine"}})).await;
    let comment_id = comment["comment"]["id"].as_i64().unwrap();
    let before = snapshot(&app, &owner, &slug, &admin).await;

    let operations: Vec<(Method, String, Option<Value>, &str)> = vec![
        (
            Method::PUT,
            format!("/api/articles/{slug}"),
            Some(json!({"article": {"title": "Stolen", "tagList": []}})),
            "article",
        ),
        (Method::DELETE, format!("/api/articles/{slug}"), None, "article"),
        (Method::DELETE, format!("/api/articles/{slug}/comments/{comment_id}"), None, "comment"),
        (Method::PUT, "/api/admin/users/owner".into(), Some(json!({"user": {"active": false}})), "user"),
        (Method::PUT, "/api/admin/users/other".into(), Some(json!({"user": {"role": "admin"}})), "user"),
        (Method::GET, "/api/admin/users".into(), None, "user"),
    ];
    for (method, path, body, field) in &operations {
        let (status, answer) = app.send(method.clone(), path, Some(&other), body.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} by another user: {answer}");
        assert_eq!(error_messages(&answer, field), ["forbidden"], "{method} {path}");
        let (status, answer) = app.send(method.clone(), path, None, body.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} anonymously: {answer}");
        assert_eq!(error_messages(&answer, "token"), ["is missing"]);
    }
    // Anonymous attempts at the caller's own resources and at favorites and follows.
    for (method, path) in [
        (Method::PUT, "/api/user".to_string()),
        (Method::POST, "/api/articles".into()),
        (Method::POST, format!("/api/articles/{slug}/favorite")),
        (Method::DELETE, format!("/api/articles/{slug}/favorite")),
        (Method::POST, format!("/api/articles/{slug}/comments")),
        (Method::POST, "/api/profiles/owner/follow".into()),
        (Method::DELETE, "/api/profiles/owner/follow".into()),
        (Method::GET, "/api/articles/feed".into()),
    ] {
        let (status, _) = app.send(method.clone(), &path, None, Some(json!({}))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    assert_eq!(snapshot(&app, &owner, &slug, &admin).await, before, "no refused request changed anything");
}

async fn private_data_stays_private(app: TestApp) {
    let owner = app.register("owner").await;
    let other = app.register("other").await;
    let slug = app.article(&owner, "Public", &[]).await;
    let (status, _) =
        app.post(&format!("/api/articles/{slug}/comments"), Some(&owner), json!({"comment": {"body": "c"}})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = app.post("/api/profiles/owner/follow", Some(&other), json!(null)).await;
    assert_eq!(status, StatusCode::OK);
    // Each answer has the owner's data in it (a pointer into the body, its expected value),
    // and no email.
    for (path, token, pointer, expected) in [
        ("/api/profiles/owner".to_string(), Some(other.as_str()), "/profile/username", json!("owner")),
        ("/api/profiles/owner".into(), None, "/profile/username", json!("owner")),
        (format!("/api/articles/{slug}"), Some(&other), "/article/author/username", json!("owner")),
        (format!("/api/articles/{slug}/comments"), None, "/comments/0/author/username", json!("owner")),
        ("/api/articles".into(), Some(&other), "/articles/0/author/username", json!("owner")),
        ("/api/articles/feed".into(), Some(&other), "/articles/0/author/username", json!("owner")),
        ("/api/articles?author=owner".into(), None, "/articles/0/slug", json!(slug)),
    ] {
        let (status, body) = app.get(&path, token).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(body.pointer(pointer), Some(&expected), "{path}: {pointer} in {body}");
        let text = body.to_string();
        assert!(!text.contains("owner@example.com") && !text.contains("\"email\""), "{path} shows an email: {text}");
    }
    let (_, me) = app.get("/api/user", Some(&other)).await;
    assert_eq!(me["user"]["email"], "other@example.com", "the caller's own view only");
}

async fn concurrent_edits_of_one_article_keep_a_whole_tag_list_and_a_fitting_slug(app: TestApp) {
    let owner = app.register("owner").await;
    let slug = app.article(&owner, "Contested", &["a", "b"]).await;
    let edits = (0..12).map(|i| {
        let tags: Vec<String> = (0..3).map(|t| format!("e{i}t{t}")).collect();
        let title = if i % 2 == 0 { format!("Contested {i}") } else { "Contested".to_string() };
        (title, tags)
    });
    let edits: Vec<_> = edits.collect();
    let path = format!("/api/articles/{slug}");
    let results = futures::future::join_all(
        edits
            .iter()
            .map(|(title, tags)| app.put(&path, Some(&owner), json!({"article": {"title": title, "tagList": tags}}))),
    )
    .await;
    // Every edit either applied whole or (its article renamed under it) found no article.
    assert!(results.iter().all(|(s, _)| *s == StatusCode::OK || *s == StatusCode::NOT_FOUND), "{results:?}");
    let (_, list) = app.get("/api/articles?author=owner", None).await;
    assert_eq!(list["articlesCount"], 1, "still one article");
    let article = &list["articles"][0];
    let final_tags: Vec<String> = serde_json::from_value(article["tagList"].clone()).unwrap();
    assert!(edits.iter().any(|(_, tags)| *tags == final_tags), "tags {final_tags:?} are not one edit's whole list");
    let title = article["title"].as_str().unwrap();
    let final_slug = article["slug"].as_str().unwrap();
    assert!(conduit_domain::slug::fits(final_slug, title), "slug {final_slug} does not fit {title}");
    let (status, fetched) = app.get(&format!("/api/articles/{final_slug}"), None).await;
    assert_eq!((status, fetched["article"]["tagList"].clone()), (StatusCode::OK, json!(final_tags)));
    let (_, tags) = app.get("/api/tags", None).await;
    let mut in_use: Vec<String> = serde_json::from_value(tags["tags"].clone()).unwrap();
    in_use.sort();
    let mut expected = final_tags.clone();
    expected.sort();
    assert_eq!(in_use, expected, "no tag of a lost edit lingers");
}

async fn favorite_and_follow_storms_end_as_a_serial_replay_would(app: TestApp) {
    let author = app.register("author").await;
    let slug = app.article(&author, "Stormy", &[]).await;
    let app = &app;
    let fans: Vec<String> =
        futures::future::join_all((0..12).map(|i| async move { app.register(&format!("fan{i}")).await })).await;
    // Each fan runs its own fixed sequence; the fans run at once. A serial replay of any
    // interleaving ends with each fan in the state of their own last operation.
    let plans: Vec<Vec<bool>> = (0..fans.len()).map(|i| (0..6).map(|step| (i + step * 7) % 3 != 0).collect()).collect();
    let favorite_path = format!("/api/articles/{slug}/favorite");
    futures::future::join_all(fans.iter().zip(&plans).map(|(token, plan)| {
        let path = &favorite_path;
        async move {
            for &on in plan {
                let method = if on { Method::POST } else { Method::DELETE };
                let (status, _) = app.send(method.clone(), path, Some(token), None).await;
                assert_eq!(status, StatusCode::OK);
                let follow = if on { Method::POST } else { Method::DELETE };
                let (status, _) = app.send(follow, "/api/profiles/author/follow", Some(token), None).await;
                assert_eq!(status, StatusCode::OK);
            }
        }
    }))
    .await;
    let expected = plans.iter().filter(|plan| *plan.last().unwrap()).count() as i64;
    let (_, article) = app.get(&format!("/api/articles/{slug}"), None).await;
    assert_eq!(article["article"]["favoritesCount"].as_i64(), Some(expected));
    for (token, plan) in fans.iter().zip(&plans) {
        let (_, profile) = app.get("/api/profiles/author", Some(token)).await;
        assert_eq!(profile["profile"]["following"].as_bool(), plan.last().copied());
        let (_, seen) = app.get(&format!("/api/articles/{slug}"), Some(token)).await;
        assert_eq!(seen["article"]["favorited"].as_bool(), plan.last().copied());
    }
}
