//! Taking an account over through its address, or learning whether it has one (issue 25, items
//! 1, 2, 3 and 10), each attack as the
//! attacker would send it, on both backends: an attacker inside the owner's re-authentication
//! window changes the address twice, or registers the freed address; an attacker who parks an
//! address they never proved on their own account, for its owner to find and use.

use crate::common::TestApp;
use reqwest::StatusCode;
use serde_json::json;

on_both_backends!(
    the_owners_undo_link_survives_later_changes_and_keeps_the_address,
    the_owners_undo_link_survives_the_attackers_own_undo,
    an_unproven_address_does_not_keep_its_owner_from_registering,
    proving_the_address_ends_the_undo_rights_of_whoever_never_proved_theirs,
    no_reset_link_goes_to_an_address_nobody_has_proven,
    a_deactivated_account_redeems_no_reset_or_undo_link,
    a_reset_moves_the_counters_alike_whoever_has_the_address,
);

/// Registers `name` and opens the verification link mailed to `name@example.com`.
async fn verified(app: &TestApp, name: &str) -> String {
    let token = app.register(name).await;
    let link = app.mailed_token_to(&format!("{name}@example.com"), "verify-email").await;
    let (status, body) = app.post("/api/users/verify", None, json!({"token": link})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    token
}

async fn change_email(app: &TestApp, token: &str, email: &str) -> (StatusCode, serde_json::Value) {
    app.put("/api/user", Some(token), json!({"user": {"email": email}})).await
}

async fn undo(app: &TestApp, link: &str) -> (StatusCode, serde_json::Value) {
    app.post("/api/users/email-change/revert", None, json!({"token": link})).await
}

fn registration(name: &str, email: &str) -> serde_json::Value {
    json!({"user": {"username": name, "email": email, "password": "password123"}})
}

/// A reset of `email`'s password, from the link mailed to it; the account it lands in.
async fn reset(app: &TestApp, email: &str, password: &str) -> (StatusCode, serde_json::Value) {
    let earlier = app.mailed_tokens_to(email, "reset-password").len();
    let (status, _) = app.post("/api/users/password-reset", None, json!({"user": {"email": email}})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let link = app.next_mailed_token_to(email, "reset-password", earlier).await;
    app.post("/api/users/password-reset/confirm", None, json!({"token": link, "password": password})).await
}

/// The attacker holds a fresh login to the owner's account (inside the re-authentication
/// window): two changes in a row, then a squatter's registration of the freed address. The
/// second change must not erase the owner's undo link, nobody may take the address meanwhile,
/// and the link gives it back.
async fn the_owners_undo_link_survives_later_changes_and_keeps_the_address(app: TestApp) {
    let stolen = verified(&app, "owner").await;
    let (status, body) = change_email(&app, &stolen, "x@evil.example").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let owners_undo = app.mailed_token_to("owner@example.com", "revert-email").await;
    let (status, body) = change_email(&app, &stolen, "y@evil.example").await;
    assert_eq!(status, StatusCode::OK, "the second change: {body}");

    // The address the owner's link restores is theirs until the link is used or expires.
    let (status, body) = app.post("/api/users", None, registration("squatter", "owner@example.com")).await;
    assert_eq!(status, StatusCode::CONFLICT, "a squatter registers the owner's address: {body}");
    assert_eq!(body["errors"]["email"][0], "has already been taken");
    let other = app.register("anna").await;
    let (status, _) = change_email(&app, &other, "owner@example.com").await;
    assert_eq!(status, StatusCode::CONFLICT, "another account moves to the owner's address");

    let (status, body) = undo(&app, &owners_undo).await;
    assert_eq!(status, StatusCode::OK, "the owner's undo after two changes: {body}");
    assert_eq!(body["user"]["email"], "owner@example.com");
    // A reset of the address lands in the owner's account, not a squatter's.
    let (status, body) = reset(&app, "owner@example.com", "the owner's new password").await;
    assert_eq!((status, body["user"]["username"].as_str()), (StatusCode::OK, Some("owner")));
    assert_eq!(app.get("/api/user", Some(&stolen)).await.0, StatusCode::UNAUTHORIZED, "the thief is out");
}

/// The attacker uses the undo link of their own second change first (it was mailed to their
/// address): that must not end the owner's, older, link.
async fn the_owners_undo_link_survives_the_attackers_own_undo(app: TestApp) {
    let stolen = verified(&app, "owner").await;
    assert_eq!(change_email(&app, &stolen, "x@evil.example").await.0, StatusCode::OK);
    let owners_undo = app.mailed_token_to("owner@example.com", "revert-email").await;
    assert_eq!(change_email(&app, &stolen, "y@evil.example").await.0, StatusCode::OK);
    let attackers_undo = app.mailed_token_to("x@evil.example", "revert-email").await;
    let (status, body) = undo(&app, &attackers_undo).await;
    assert_eq!((status, body["user"]["email"].as_str()), (StatusCode::OK, Some("x@evil.example")));
    let (status, body) = undo(&app, &owners_undo).await;
    assert_eq!(status, StatusCode::OK, "the owner's undo after the attacker's: {body}");
    assert_eq!(body["user"]["email"], "owner@example.com");
    // The owner's undo, once used, ends every other: the attacker cannot take it back again.
    assert_eq!(undo(&app, &attackers_undo).await.0, StatusCode::UNPROCESSABLE_ENTITY);
}

/// Pre-hijacking: the attacker moves their own account to the victim's address, which they never
/// prove. It does not own the address: the victim's registration succeeds, and the attacker's
/// account is back on its old address, its undo link spent.
async fn an_unproven_address_does_not_keep_its_owner_from_registering(app: TestApp) {
    let attacker = app.register("mallory").await;
    let (status, body) = change_email(&app, &attacker, "victim@example.com").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let attackers_undo = app.mailed_token_to("mallory@example.com", "revert-email").await;

    let (status, body) = app.post("/api/users", None, registration("victim", "victim@example.com")).await;
    assert_eq!(status, StatusCode::CREATED, "the victim registers their own address: {body}");
    let (_, me) = app.get("/api/user", Some(&attacker)).await;
    assert_eq!(me["user"]["email"], "mallory@example.com", "the unproven claim was dropped");
    assert_eq!(undo(&app, &attackers_undo).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    let login = json!({"user": {"email": "victim@example.com", "password": "password123"}});
    let (status, body) = app.post("/api/users/login", None, login).await;
    assert_eq!((status, body["user"]["username"].as_str()), (StatusCode::OK, Some("victim")));
}

/// The victim opens the verification link the attacker's change mailed them, then resets the
/// password and uses the account: proving the address ends the attacker's undo right to an
/// address they never proved, so it cannot take the account back days later.
async fn proving_the_address_ends_the_undo_rights_of_whoever_never_proved_theirs(app: TestApp) {
    let attacker = app.register("mallory").await;
    assert_eq!(change_email(&app, &attacker, "victim@example.com").await.0, StatusCode::OK);
    let attackers_undo = app.mailed_token_to("mallory@example.com", "revert-email").await;
    let verify = app.mailed_token_to("victim@example.com", "verify-email").await;
    assert_eq!(app.post("/api/users/verify", None, json!({"token": verify})).await.0, StatusCode::OK);
    let (status, _) = reset(&app, "victim@example.com", "the victim's password").await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = undo(&app, &attackers_undo).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "the attacker's undo: {body}");
    let login = json!({"user": {"email": "victim@example.com", "password": "the victim's password"}});
    assert_eq!(app.post("/api/users/login", None, login).await.0, StatusCode::OK);
    assert_eq!(app.get("/api/user", Some(&attacker)).await.0, StatusCode::UNAUTHORIZED);
}

/// A reset asked for an address that an account holds without having proven it (an email change
/// not yet verified) mails nothing: it would hand the account to whoever reads that address. The
/// answer is the same as for any address.
async fn no_reset_link_goes_to_an_address_nobody_has_proven(app: TestApp) {
    let attacker = app.register("mallory").await;
    assert_eq!(change_email(&app, &attacker, "victim@example.com").await.0, StatusCode::OK);
    let ask = json!({"user": {"email": "victim@example.com"}});
    let (status, body) = app.post("/api/users/password-reset", None, ask).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    // What is mailed instead (so the request looks like any other) arrives without a link.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let outbox = app.store.list_mail(Some("sent"), 100).await.unwrap();
        if outbox.iter().any(|m| m.to == "victim@example.com" && m.kind == "reset") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the reset request was not answered by mail");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(app.mailed_tokens_to("victim@example.com", "reset-password").is_empty(), "a reset link was mailed");
}

/// The mail counters of `/metrics` (and the reset route's request count), by line.
async fn counters(app: &TestApp) -> std::collections::BTreeMap<String, f64> {
    let text = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("conduit_mail_")
                || (l.starts_with("conduit_http_requests_total") && l.contains("/api/users/password-reset"))
        })
        .filter_map(|l| l.rsplit_once(' ').map(|(name, value)| (name.to_owned(), value.parse().unwrap())))
        .collect()
}

/// Waits (up to three seconds) until the sender has sent all it was given.
async fn sender_idle(app: &TestApp) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while std::time::Instant::now() < deadline {
        let c = counters(app).await;
        let total = |state: &str| c.iter().filter(|(k, _)| k.starts_with(state)).map(|(_, v)| v).sum::<f64>();
        if total("conduit_mail_queued_total") > 0.0
            && total("conduit_mail_queued_total") == total("conduit_mail_sent_total")
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// No oracle: a reset of an address with an account and of one without move every counter on
/// `/metrics` alike (each is mailed: a link, or word that no account can be reset with it).
async fn a_reset_moves_the_counters_alike_whoever_has_the_address(app: TestApp) {
    app.register("jake").await;
    sender_idle(&app).await;
    let mut moved = Vec::new();
    for email in ["jake@example.com", "nobody@example.com"] {
        let before = counters(&app).await;
        let (status, _) = app.post("/api/users/password-reset", None, json!({"user": {"email": email}})).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        sender_idle(&app).await;
        let after = counters(&app).await;
        let delta: Vec<(String, f64)> = after
            .iter()
            .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
            .filter(|(_, d)| *d != 0.0)
            .collect();
        moved.push(delta);
    }
    assert!(!moved[0].is_empty(), "the known address's reset moved nothing");
    assert_eq!(moved[0], moved[1], "the counters that moved: known, then unknown address");
}

/// Deactivation ends what an account's links can do.
async fn a_deactivated_account_redeems_no_reset_or_undo_link(app: TestApp) {
    let token = verified(&app, "jake").await;
    assert_eq!(change_email(&app, &token, "new@example.com").await.0, StatusCode::OK);
    let undo_link = app.mailed_token_to("jake@example.com", "revert-email").await;
    let verify = app.mailed_token_to("new@example.com", "verify-email").await;
    assert_eq!(app.post("/api/users/verify", None, json!({"token": verify})).await.0, StatusCode::OK);
    let (status, _) = app.post("/api/users/password-reset", None, json!({"user": {"email": "new@example.com"}})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let reset_link = app.mailed_token_to("new@example.com", "reset-password").await;
    let off = conduit_store::AccountChanges { role: None, active: Some(false), by: None };
    app.store.set_account(&conduit_domain::Username::parse("jake").unwrap(), &off).await.unwrap().unwrap();

    let confirm = json!({"token": reset_link, "password": "a new password here"});
    let (status, body) = app.post("/api/users/password-reset/confirm", None, confirm).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a reset of a deactivated account: {body}");
    let (status, body) = undo(&app, &undo_link).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "an undo on a deactivated account: {body}");
}
