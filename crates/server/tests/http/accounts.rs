//! Accounts over HTTP on both backends: token revocation on password change, roles, the admin
//! user listing and account changes, deactivation.

use crate::common::{TestApp, error_messages};
use conduit_domain::model::Role;
use conduit_store::AccountChanges;
use reqwest::StatusCode;
use serde_json::json;

on_both_backends!(
    password_change_revokes_earlier_tokens_and_renews_the_callers,
    a_stolen_token_dies_with_the_password_change_it_made,
    only_admins_list_users,
    admins_change_roles_and_deactivate_accounts,
    no_username_shadows_a_route,
);

async fn promote(app: &TestApp, name: &str) {
    let changes = AccountChanges { role: Some(Role::Admin), active: None, by: None };
    app.store
        .set_account(&conduit_domain::Username::parse(name).unwrap(), &changes)
        .await
        .unwrap()
        .expect("user exists");
}

async fn login(app: &TestApp, name: &str, password: &str) -> (StatusCode, serde_json::Value) {
    app.post("/api/users/login", None, json!({"user": {"email": format!("{name}@example.com"), "password": password}}))
        .await
}

async fn password_change_revokes_earlier_tokens_and_renews_the_callers(app: TestApp) {
    let first = app.register("jake").await;
    let (_, body) = login(&app, "jake", "password123").await;
    let second = body["user"]["token"].as_str().unwrap().to_owned();
    let stale = crate::common::an_hour_old_login(&app, "jake").await;

    let (status, body) = app.put("/api/user", Some(&first), json!({"user": {"bio": "no revocation"}})).await;
    assert_eq!((status, body["user"]["token"].as_str()), (StatusCode::OK, Some(first.as_str())));

    // A change resting on a recent login (no current password): every earlier token is revoked
    // but the one that made it, which lasts until its login's re-authentication window closes.
    let (status, body) =
        app.put("/api/user", Some(&first), json!({"user": {"password": "a brand new password"}})).await;
    assert_eq!(status, StatusCode::OK);
    let renewed = body["user"]["token"].as_str().unwrap().to_owned();
    assert_ne!(renewed, first);
    for earlier in [&second, &stale] {
        let (status, body) = app.get("/api/user", Some(earlier)).await;
        assert_eq!(
            (status, error_messages(&body, "token")),
            (StatusCode::UNAUTHORIZED, vec!["has been revoked".to_string()])
        );
    }
    assert_eq!(app.get("/api/user", Some(&renewed)).await.0, StatusCode::OK);
    assert_eq!(app.get("/api/user", Some(&first)).await.0, StatusCode::OK);
    assert_eq!(login(&app, "jake", "a brand new password").await.0, StatusCode::OK);

    // A change with the current password spares nothing: the answer's token is the only one.
    let change = json!({"user": {"password": "yet another password", "currentPassword": "a brand new password"}});
    let (status, body) = app.put("/api/user", Some(&renewed), change).await;
    assert_eq!(status, StatusCode::OK);
    for earlier in [&first, &renewed] {
        assert_eq!(app.get("/api/user", Some(earlier)).await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(app.get("/api/user", Some(body["user"]["token"].as_str().unwrap())).await.0, StatusCode::OK);
}

/// The attack: a copy of a token from a login long ago. When its owner changes the password
/// with it (which now takes the current password), the copy dies with every other token and
/// cannot change the password back.
async fn a_stolen_token_dies_with_the_password_change_it_made(app: TestApp) {
    app.register("jake").await;
    let token = crate::common::an_hour_old_login(&app, "jake").await;
    let stolen = token.clone();
    let change = json!({"user": {"password": "a brand new password", "currentPassword": "password123"}});
    let (status, body) = app.put("/api/user", Some(&token), change).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.get("/api/user", Some(&stolen)).await;
    assert_eq!(
        (status, error_messages(&body, "token")),
        (StatusCode::UNAUTHORIZED, vec!["has been revoked".to_string()])
    );
    let back = json!({"user": {"password": "the attacker's", "currentPassword": "a brand new password"}});
    assert_eq!(app.put("/api/user", Some(&stolen), back).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(login(&app, "jake", "the attacker's").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(login(&app, "jake", "a brand new password").await.0, StatusCode::OK);
}

async fn only_admins_list_users(app: TestApp) {
    let boss = app.register("boss").await;
    let pleb = app.register("pleb").await;
    for name in ["c1", "c2", "c3"] {
        app.register(name).await;
    }
    promote(&app, "boss").await;

    assert_eq!(error_messages(&app.get("/api/admin/users", None).await.1, "token"), ["is missing"]);
    let (status, body) = app.get("/api/admin/users", Some(&pleb)).await;
    assert_eq!((status, error_messages(&body, "user")), (StatusCode::FORBIDDEN, vec!["forbidden".to_string()]));

    let (status, body) = app.get("/api/admin/users", Some(&boss)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["usersCount"], 5);
    let names: Vec<_> = body["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["boss", "pleb", "c1", "c2", "c3"], "ordered by createdAt");
    let first = &body["users"][0];
    assert_eq!(
        (first["role"].as_str(), first["active"].as_bool(), first["email"].as_str()),
        (Some("admin"), Some(true), Some("boss@example.com"))
    );
    assert!(first["createdAt"].as_str().unwrap().starts_with("20"));

    let (_, body) = app.get("/api/admin/users?limit=2&offset=1", Some(&boss)).await;
    let names: Vec<_> = body["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!((names, body["usersCount"].as_i64()), (vec!["pleb", "c1"], Some(5)));
    app.store
        .set_account(
            &conduit_domain::Username::parse("c2").unwrap(),
            &AccountChanges { active: Some(false), ..Default::default() },
        )
        .await
        .unwrap();
    let (_, body) = app.get("/api/admin/users?active=false", Some(&boss)).await;
    assert_eq!((body["usersCount"].as_i64(), body["users"][0]["username"].as_str()), (Some(1), Some("c2")));
    assert_eq!(app.get("/api/admin/users?active=true", Some(&boss)).await.1["usersCount"], 4);
    for bad in ["active=yes", "limit=-1"] {
        assert_eq!(
            app.get(&format!("/api/admin/users?{bad}"), Some(&boss)).await.0,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}"
        );
    }
}

async fn admins_change_roles_and_deactivate_accounts(app: TestApp) {
    let boss = app.register("boss").await;
    let jake = app.register("jake").await;
    promote(&app, "boss").await;

    // Not for non-admins, and nothing changes.
    let (status, _) = app.put("/api/admin/users/boss", Some(&jake), json!({"user": {"active": false}})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(app.get("/api/user", Some(&boss)).await.0, StatusCode::OK);

    let (status, body) = app.put("/api/admin/users/jake", Some(&boss), json!({"user": {"active": false}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["user"]["active"].as_bool(), body["user"]["role"].as_str()), (Some(false), Some("user")));
    // At once: the token is dead and the right password no longer logs in.
    let (status, body) = app.get("/api/user", Some(&jake)).await;
    assert_eq!(
        (status, error_messages(&body, "token")),
        (StatusCode::UNAUTHORIZED, vec!["belongs to a deactivated account".to_string()])
    );
    let (status, body) = login(&app, "jake", "password123").await;
    assert_eq!((status, error_messages(&body, "user")), (StatusCode::FORBIDDEN, vec!["is deactivated".to_string()]));
    assert_eq!(
        login(&app, "jake", "wrong password").await.0,
        StatusCode::UNAUTHORIZED,
        "a wrong password reveals nothing"
    );

    let (status, body) =
        app.put("/api/admin/users/jake", Some(&boss), json!({"user": {"active": true, "role": "admin"}})).await;
    assert_eq!((status, body["user"]["role"].as_str()), (StatusCode::OK, Some("admin")));
    assert_eq!(
        app.get("/api/user", Some(&jake)).await.0,
        StatusCode::UNAUTHORIZED,
        "reactivation does not revive old tokens"
    );
    let (status, body) = login(&app, "jake", "password123").await;
    assert_eq!(status, StatusCode::OK);
    let fresh = body["user"]["token"].as_str().unwrap().to_owned();
    assert_eq!(app.get("/api/admin/users", Some(&fresh)).await.0, StatusCode::OK, "jake is an admin now");

    for (body, field) in [
        (json!({"user": {"role": "emperor"}}), "role"),
        (json!({"user": {}}), "user"),
        (json!({"user": {"active": "no"}}), "body"),
    ] {
        let (status, answer) = app.put("/api/admin/users/jake", Some(&boss), body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(!error_messages(&answer, field).is_empty());
    }
    let (status, body) = app.put("/api/admin/users/nobody", Some(&boss), json!({"user": {"active": false}})).await;
    assert_eq!((status, error_messages(&body, "profile")), (StatusCode::NOT_FOUND, vec!["not found".to_string()]));
}

/// Users named like the routes beside `/api/users` (`login`, `verify`, `password-reset`) are
/// administered like anyone: admin routes live under `/api/admin/`, where no username reaches
/// a route of its own (under `/api/users/{username}` these answered 405).
async fn no_username_shadows_a_route(app: TestApp) {
    let boss = app.register("boss").await;
    promote(&app, "boss").await;
    for name in ["login", "verify", "password-reset", "admin", "users"] {
        let token = app.register(name).await;
        let (status, body) =
            app.put(&format!("/api/admin/users/{name}"), Some(&boss), json!({"user": {"active": false}})).await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        assert_eq!((body["user"]["username"].as_str(), body["user"]["active"].as_bool()), (Some(name), Some(false)));
        assert_eq!(app.get("/api/user", Some(&token)).await.0, StatusCode::UNAUTHORIZED, "{name} is deactivated");
    }
    // The routes named like them still answer as themselves.
    let login = json!({"user": {"email": "boss@example.com", "password": "password123"}});
    assert_eq!(app.post("/api/users/login", None, login).await.0, StatusCode::OK);
}
