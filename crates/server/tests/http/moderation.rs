//! Moderation end to end over HTTP: reports, the queue, actions, the log, suspensions, hidden
//! content, purges, and the new-account limits; on both backends, and across two instances on
//! PostgreSQL (a hidden article and a suspension hold on the other instance at once).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::process::{RedisServer, Server, conduit, run};
use crate::common::{TestApp, error_messages, keys, real_limits};
use conduit_domain::model::Role;
use conduit_server::ops::clock::ManualClock;
use conduit_store::moderation::BackupAction;
use conduit_store::{AccountChanges, NewUser};
use conduit_store_postgres::testing::TestDatabase;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Registers `name` and makes them a moderator through the store (as `conduit user promote
/// --role moderator` does); returns their token.
async fn moderator(app: &TestApp, name: &str) -> String {
    let token = app.register(name).await;
    let changes = AccountChanges { role: Some(Role::Moderator), active: None, by: None };
    let name = conduit_domain::Username::parse(name).unwrap();
    app.store.set_account(&name, &changes).await.unwrap().unwrap();
    token
}

fn report(reason: &str) -> Value {
    json!({"report": {"reason": reason, "details": "see for yourself"}})
}

fn action(kind: &str, target: (&str, Value), report: Option<i64>) -> Value {
    let mut action = json!({"kind": kind, "reason": format!("{kind}: against the rules")});
    action[target.0] = target.1;
    if let Some(report) = report {
        action["report"] = json!(report);
    }
    json!({ "action": action })
}

async fn moderate(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    app.post("/api/moderation/actions", Some(token), body).await
}

async fn reports_flow_to_the_queue_and_moderators_answer_them(app: TestApp) {
    let jake = app.register("jake").await;
    let anna = app.register("anna").await;
    let mo = moderator(&app, "mo").await;
    let slug = app.article(&jake, "Buy cheap things", &["spam"]).await;
    let path = format!("/api/articles/{slug}/report");

    let (status, body) = app.post(&path, Some(&anna), report("spam")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let first = body["report"]["id"].as_i64().unwrap();
    assert_eq!(
        (body["report"]["state"].as_str(), body["report"]["target"]["kind"].as_str()),
        (Some("open"), Some("article"))
    );
    let (status, body) = app.post(&path, Some(&anna), report("spam")).await;
    assert_eq!(status, StatusCode::CONFLICT, "one open report per reporter and target");
    assert!(error_messages(&body, "report")[0].contains("already open"));
    let (status, body) = app.post(&path, Some(&anna), report("boring")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_messages(&body, "reason")[0].contains("spam, harassment, illegal, other"));
    assert_eq!(
        app.post("/api/articles/no-such-article/report", Some(&anna), report("spam")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.post(&path, None, report("spam")).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.post(&path, Some(&mo), report("illegal")).await.0, StatusCode::CREATED);
    assert_eq!(app.post("/api/profiles/jake/report", Some(&anna), report("harassment")).await.0, StatusCode::CREATED);

    // Only moderators see the queue: one entry per target, the oldest report first.
    let (status, _) = app.get("/api/moderation/queue", Some(&anna)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, queue) = app.get("/api/moderation/queue", Some(&mo)).await;
    assert_eq!(status, StatusCode::OK, "{queue}");
    let entries = queue["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{queue}");
    assert_eq!((entries[0]["label"].as_str(), entries[0]["openReports"].as_i64()), (Some(slug.as_str()), Some(2)));
    assert_eq!((entries[0]["firstReport"].as_i64(), entries[0]["user"].as_str()), (Some(first), Some("jake")));
    assert_eq!(entries[1]["target"]["kind"], "profile");

    // Hidden, answering the report: gone for everyone but its author and moderators.
    let (status, body) = moderate(&app, &mo, action("hide", ("article", json!(slug)), Some(first))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["entry"]["moderator"].as_str(), body["entry"]["report"].as_i64()), (Some("mo"), Some(first)));
    let article = format!("/api/articles/{slug}");
    assert_eq!(app.get(&article, None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&article, Some(&anna)).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("{article}/comments"), Some(&anna)).await.0, StatusCode::NOT_FOUND);
    let comment = json!({"comment": {"body": "still here?"}});
    assert_eq!(app.post(&format!("{article}/comments"), Some(&anna), comment).await.0, StatusCode::NOT_FOUND);
    for (who, token) in [("its author", &jake), ("a moderator", &mo)] {
        let (status, body) = app.get(&article, Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{who}");
        assert_eq!(body["article"]["hidden"], true, "{who} sees it marked");
    }
    assert_eq!(app.articles_count().await, 0);
    let (_, listed) = app.get("/api/articles?tag=spam", None).await;
    assert_eq!(listed["articlesCount"], 0);
    let (_, tags) = app.get("/api/tags", None).await;
    assert_eq!(tags["tags"], json!([]), "its tags went with it");
    let (_, mine) = app.get("/api/user/reports", Some(&anna)).await;
    let states: Vec<&str> = mine["reports"].as_array().unwrap().iter().map(|r| r["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["open", "actioned"], "the reporter sees what became of each, newest first");

    // Answering an answered report changes nothing, with a clear 409.
    let (status, body) = moderate(&app, &mo, action("unhide", ("article", json!(slug)), Some(first))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(error_messages(&body, "report")[0].contains("already answered"));
    assert_eq!(app.get(&article, None).await.0, StatusCode::NOT_FOUND, "still hidden");

    // Bad actions are refused with the field to fix.
    let (status, body) =
        moderate(&app, &mo, json!({"action": {"kind": "ban", "profile": "jake", "reason": "r"}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_messages(&body, "kind")[0].contains("dismiss"));
    let (status, body) = moderate(&app, &mo, json!({"action": {"kind": "hide", "reason": "r"}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!error_messages(&body, "target").is_empty());
    let (status, body) = moderate(
        &app,
        &mo,
        json!({"action": {"kind": "suspend", "profile": "jake", "reason": "r", "until": "2001-01-01T00:00:00Z"}}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_messages(&body, "until"), ["must be in the future"]);
    assert_eq!(
        moderate(&app, &anna, action("dismiss", ("profile", json!("jake")), None)).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        moderate(&app, &mo, action("purge", ("profile", json!("mo")), None)).await.0,
        StatusCode::FORBIDDEN,
        "moderators are not purged by moderators"
    );

    // The log: whole for moderators, filtered by kind; closed to others unless made public.
    let (status, log) = app.get("/api/moderation/log?action=hide", Some(&mo)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(log["entries"].as_array().unwrap().len(), 1, "{log}");
    assert_eq!(log["entries"][0]["moderator"], "mo");
    let (status, body) = app.get("/api/moderation/log", Some(&anna)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(error_messages(&body, "user")[0].contains("CONDUIT_PUBLIC_MODERATION_LOG"), "names the setting: {body}");
    let (status, body) = app.get("/api/moderation/log?action=ban", Some(&mo)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

async fn a_suspended_user_reads_and_exports_but_cannot_write(app: TestApp) {
    let jake = app.register("jake").await;
    let mo = moderator(&app, "mo").await;
    let slug = app.article(&jake, "Before", &[]).await;
    let until = (chrono::Utc::now() + chrono::Duration::days(3)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let body = json!({"action": {"kind": "suspend", "profile": "jake", "reason": "flooding", "until": until}});
    let (status, answer) = moderate(&app, &mo, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    let writes = [
        ("POST", "/api/articles".to_owned(), Some(json!({"article": {"title": "t", "description": "d", "body": "b"}}))),
        ("PUT", format!("/api/articles/{slug}"), Some(json!({"article": {"title": "New title"}}))),
        ("DELETE", format!("/api/articles/{slug}"), None),
        ("POST", format!("/api/articles/{slug}/favorite"), None),
        ("POST", format!("/api/articles/{slug}/comments"), Some(json!({"comment": {"body": "c"}}))),
        ("POST", "/api/profiles/mo/follow".to_owned(), None),
        ("PUT", "/api/user".to_owned(), Some(json!({"user": {"bio": "spam"}}))),
        ("POST", "/api/profiles/mo/report".to_owned(), Some(report("spam"))),
    ];
    for (method, path, body) in writes {
        let (status, answer) = app.send(method.parse().unwrap(), &path, Some(&jake), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
        let message = &error_messages(&answer, "user")[0];
        assert!(message.contains(&until) && message.contains("flooding"), "names the end and the reason: {message}");
    }
    assert_eq!(app.get("/api/user", Some(&jake)).await.0, StatusCode::OK, "reads");
    assert_eq!(app.get(&format!("/api/articles/{slug}"), Some(&jake)).await.0, StatusCode::OK);
    assert_eq!(app.get("/api/user/export", Some(&jake)).await.0, StatusCode::OK, "exports");
    let login = json!({"user": {"email": "jake@example.com", "password": "password123"}});
    assert_eq!(app.post("/api/users/login", None, login).await.0, StatusCode::OK, "logs in");
    // The notice went out through the outbox.
    let notices = app.store.list_mail(None, 10).await.unwrap();
    let notice = notices.iter().find(|m| m.kind == "suspended").expect("a suspension notice");
    assert_eq!(notice.to, "jake@example.com");

    let (status, _) = moderate(&app, &mo, action("unsuspend", ("profile", json!("jake")), None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.post(&format!("/api/articles/{slug}/favorite"), Some(&jake), json!({})).await.0, StatusCode::OK);
}

async fn hidden_comments_and_purged_accounts(app: TestApp) {
    let jake = app.register("jake").await;
    let troll = app.register("troll").await;
    let mo = moderator(&app, "mo").await;
    let slug = app.article(&jake, "Thread", &[]).await;
    let comments = format!("/api/articles/{slug}/comments");
    let (_, rude) = app.post(&comments, Some(&troll), json!({"comment": {"body": "rude"}})).await;
    let rude = rude["comment"]["id"].as_i64().unwrap();
    app.post(&comments, Some(&jake), json!({"comment": {"body": "polite"}})).await;
    let (status, answer) = app.post(&format!("{comments}/{rude}/report"), Some(&jake), report("harassment")).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let (status, answer) = moderate(&app, &mo, action("hide", ("comment", json!(rude)), None)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let bodies = |body: &Value| -> Vec<String> {
        body["comments"].as_array().unwrap().iter().map(|c| c["body"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(bodies(&app.get(&comments, None).await.1), ["polite"]);
    assert_eq!(bodies(&app.get(&comments, Some(&jake)).await.1), ["polite"]);
    let (_, own) = app.get(&comments, Some(&troll)).await;
    assert_eq!(
        (bodies(&own), own["comments"][0]["hidden"].as_bool()),
        (vec!["rude".to_owned(), "polite".to_owned()], Some(true))
    );

    // Purged: the account and all it wrote, at once; its token ends.
    app.article(&troll, "Troll article", &[]).await;
    let (status, answer) = moderate(&app, &mo, action("purge", ("profile", json!("troll")), None)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(app.get("/api/user", Some(&troll)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/api/profiles/troll", None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(bodies(&app.get(&comments, Some(&mo)).await.1), ["polite"]);
    assert_eq!(app.articles_count().await, 1);
    // Acting on what was just deleted: 404, and nothing is logged for it.
    let (status, _) = moderate(&app, &mo, action("delete", ("comment", json!(rude)), None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, log) = app.get("/api/moderation/log", Some(&mo)).await;
    let actions: Vec<&str> = log["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["purge", "hide", "role"], "and the moderator's promotion, first");
}

/// A thousand accounts report one article: one queue entry with a count of 1,000, which one
/// action answers; every reporter then sees their report answered.
async fn a_thousand_reports_of_one_article_are_one_queue_entry(app: TestApp) {
    let jake = app.register("jake").await;
    let mo = moderator(&app, "mo").await;
    let slug = app.article(&jake, "Reported by everyone", &[]).await;
    let new: Vec<NewUser> = (0..1000)
        .map(|i| NewUser {
            username: conduit_domain::Username::parse(&format!("reader{i}")).unwrap(),
            email: conduit_domain::Email::parse(&format!("reader{i}@example.com")).unwrap(),
            password_hash: "not a login".into(),
        })
        .collect();
    let ids = app.store.seed_users(&new).await.unwrap();
    let grant = conduit_domain::token::Grant::login(chrono::Utc::now());
    let tokens: Vec<String> = ids.iter().map(|id| keys().mint(*id, 0, &grant, chrono::Utc::now())).collect();
    let path = format!("/api/articles/{slug}/report");
    for chunk in tokens.chunks(50) {
        let sends = chunk.iter().map(|token| app.post(&path, Some(token), report("spam")));
        for (status, body) in futures::future::join_all(sends).await {
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
    }
    let (_, queue) = app.get("/api/moderation/queue", Some(&mo)).await;
    let entries = queue["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "one entry, not 1,000 rows to scroll: {queue}");
    assert_eq!(entries[0]["openReports"], 1000);
    let (status, _) = moderate(&app, &mo, action("delete", ("article", json!(slug)), None)).await;
    assert_eq!(status, StatusCode::OK);
    let (_, queue) = app.get("/api/moderation/queue", Some(&mo)).await;
    assert_eq!(queue["entries"], json!([]));
    for token in [&tokens[0], &tokens[999]] {
        let (_, mine) = app.get("/api/user/reports", Some(token)).await;
        assert_eq!(mine["reports"][0]["state"], "actioned");
    }
}

/// A user writing as fast as they can while a moderator suspends them: every write that began
/// after the suspension's request returned is refused, whichever it was.
async fn a_suspended_users_writes_racing_the_suspension(app: TestApp) {
    let jake = app.register("jake").await;
    let mo = moderator(&app, "mo").await;
    let suspended_at: Arc<std::sync::Mutex<Option<Instant>>> = Arc::default();
    let writer = {
        let (base, client, suspended_at) = (app.base.clone(), app.client.clone(), suspended_at.clone());
        tokio::spawn(async move {
            let mut after = Vec::new();
            for i in 0..400 {
                let started = Instant::now();
                let article = json!({"article": {"title": format!("Flood {i}"), "description": "d", "body": "b"}});
                let request =
                    client.post(format!("{base}/api/articles")).header("authorization", format!("Token {jake}"));
                let status = request.json(&article).send().await.unwrap().status();
                let began_after = suspended_at.lock().unwrap().is_some_and(|at| started > at);
                if began_after {
                    after.push(status);
                }
                if after.len() >= 20 {
                    break;
                }
            }
            after
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let until = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let body = json!({"action": {"kind": "suspend", "profile": "jake", "reason": "flood", "until": until}});
    let (status, answer) = moderate(&app, &mo, body).await;
    *suspended_at.lock().unwrap() = Some(Instant::now());
    assert_eq!(status, StatusCode::OK, "{answer}");
    let after = writer.await.unwrap();
    assert!(!after.is_empty(), "the writer went on writing after the suspension");
    assert!(after.iter().all(|s| *s == StatusCode::FORBIDDEN), "every write begun after it was refused: {after:?}");
}

/// With `CONDUIT_PUBLIC_MODERATION_LOG` on, anyone signed in reads the log, without names.
async fn the_public_log_names_no_moderator(app: TestApp) {
    let jake = app.register("jake").await;
    let mo = moderator(&app, "mo").await;
    let slug = app.article(&jake, "Off topic", &[]).await;
    moderate(&app, &mo, action("hide", ("article", json!(slug)), None)).await;
    let (status, log) = app.get("/api/moderation/log", Some(&jake)).await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let entry = &log["entries"][0];
    assert_eq!((entry["action"].as_str(), entry["label"].as_str()), (Some("hide"), Some(slug.as_str())));
    assert!(entry.get("moderator").is_none(), "no moderator's name in the public log: {entry}");
    let (status, body) = app.get("/api/moderation/log?moderator=mo", Some(&jake)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!error_messages(&body, "moderator").is_empty());
    assert_eq!(app.get("/api/moderation/log", None).await.0, StatusCode::UNAUTHORIZED);

    // An admin's operations (here a backup downloaded, as the console logs it) are the staff's:
    // a signed-in reader of the public log never learns a backup's name, filtering or not.
    let mo_id = app.store.user_id_by_name(&conduit_domain::Username::parse("mo").unwrap()).await.unwrap().unwrap();
    app.store.log_backup(mo_id, BackupAction::Download, "conduit-20261207.backup").await.unwrap();
    for path in ["/api/moderation/log", "/api/moderation/log?action=download"] {
        let (status, log) = app.get(path, Some(&jake)).await;
        assert_eq!(status, StatusCode::OK, "{log}");
        assert!(!log.to_string().contains("conduit-20261207"), "{path}: {log}");
    }
    let (_, log) = app.get("/api/moderation/log?action=download", Some(&mo)).await;
    assert_eq!(log["entries"][0]["label"], "conduit-20261207.backup", "moderators see it: {log}");
    assert_eq!(log["entries"][0]["target"]["kind"], "backup");
}

async fn public_log(app: impl std::future::Future<Output = TestApp>) {
    the_public_log_names_no_moderator(app.await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_log_names_no_moderator_on_sqlite() {
    public_log(TestApp::sqlite_with(|c| c.accounts.public_moderation_log = true)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_log_names_no_moderator_on_postgres() {
    public_log(TestApp::postgres_with(|c| c.accounts.public_moderation_log = true)).await;
}

on_both_backends!(
    reports_flow_to_the_queue_and_moderators_answer_them,
    a_suspended_user_reads_and_exports_but_cannot_write,
    hidden_comments_and_purged_accounts,
    a_thousand_reports_of_one_article_are_one_queue_entry,
    a_suspended_users_writes_racing_the_suspension,
    blocks_hide_the_blocked_from_the_blocker,
    blocking_and_unblocking_in_a_tight_loop_while_reading,
    a_new_accounts_link_heavy_posts_are_held_for_review,
);

/// A new account's post naming three web addresses (across an article's fields, however
/// written) is held: 201 with `hidden`, seen by its author and moderators only, in the queue
/// with why; a moderator lets it out or deletes it. Two links, or a moderator's post, are not held.
async fn a_new_accounts_link_heavy_posts_are_held_for_review(app: TestApp) {
    let spammer = app.register("spammer").await;
    let anna = app.register("anna").await;
    let mo = moderator(&app, "mo").await;
    let post = |title: &str, body: &str| json!({"article": {"title": title, "description": "see WWW.cheap.example", "body": body, "tagList": ["deals"]}});
    let (status, body) =
        app.post("/api/articles", Some(&spammer), post("Deals at https://a.example", "[here](HTTP://b.example)")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["article"]["hidden"], true, "the author is told: {body}");
    let held = format!("/api/articles/{}", body["article"]["slug"].as_str().unwrap());
    assert_eq!(app.get(&held, Some(&anna)).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&held, Some(&spammer)).await.0, StatusCode::OK, "its author still reads it");
    assert_eq!(app.get("/api/articles", None).await.1["articlesCount"], 0);
    assert_eq!(app.get("/api/tags", None).await.1["tags"], json!([]));

    let (status, body) = app.post("/api/articles", Some(&spammer), post("Two links", "just prose")).await;
    assert_eq!((status, body["article"].get("hidden")), (StatusCode::CREATED, None), "two links are not held");
    let open = format!("/api/articles/{}", body["article"]["slug"].as_str().unwrap());
    let links = json!({"comment": {"body": "https://x.example https://y.example www.z.example"}});
    let (status, comment) = app.post(&format!("{open}/comments"), Some(&spammer), links.clone()).await;
    assert_eq!((status, &comment["comment"]["hidden"]), (StatusCode::CREATED, &json!(true)), "{comment}");
    let thread = app.get(&format!("{open}/comments"), Some(&anna)).await.1;
    assert_eq!(thread["comments"], json!([]), "nobody else sees it");
    let (status, body) = app.post(&format!("{open}/comments"), Some(&mo), links).await;
    assert_eq!((status, body["comment"].get("hidden")), (StatusCode::CREATED, None), "moderators are not held");

    let (status, queue) = app.get("/api/moderation/queue", Some(&mo)).await;
    assert_eq!(status, StatusCode::OK);
    let entries = queue["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{queue}");
    assert_eq!((entries[0]["target"]["kind"].as_str(), entries[0]["reason"].as_str()), (Some("article"), Some("spam")));
    assert!(entries[0]["details"].as_str().unwrap().contains("3 links"), "{queue}");
    let (article_slug, first) = (entries[0]["label"].clone(), entries[0]["firstReport"].as_i64());
    let comment_id = entries[1]["target"]["id"].clone();
    let (status, body) = moderate(&app, &mo, action("unhide", ("article", article_slug), first)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(app.get(&held, Some(&anna)).await.0, StatusCode::OK, "let out");
    assert_eq!(app.get("/api/articles", None).await.1["articlesCount"], 2);
    let (status, body) = moderate(&app, &mo, action("delete", ("comment", comment_id), None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(app.get("/api/moderation/queue", Some(&mo)).await.1["entries"], json!([]));
}

// --- blocks ---

fn slugs_of(body: &Value) -> Vec<String> {
    body["articles"].as_array().unwrap().iter().map(|a| a["slug"].as_str().unwrap().to_owned()).collect()
}

async fn blocks_hide_the_blocked_from_the_blocker(app: TestApp) {
    let anna = app.register("anna").await;
    let troll = app.register("troll").await;
    let mo = moderator(&app, "mo").await;
    let mine = app.article(&anna, "Annas words", &["t"]).await;
    let trolls = app.article(&troll, "Trolls words", &["t"]).await;
    let comments = format!("/api/articles/{mine}/comments");
    app.post(&comments, Some(&troll), json!({"comment": {"body": "troll comment"}})).await;
    assert_eq!(app.post("/api/profiles/anna/follow", Some(&troll), json!({})).await.0, StatusCode::OK);

    let (status, body) = app.post("/api/profiles/troll/block", Some(&anna), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["profile"]["username"], "troll");
    let (_, blocks) = app.get("/api/user/blocks", Some(&anna)).await;
    assert_eq!(blocks["blocks"][0]["username"], "troll", "{blocks}");
    for path in ["/api/articles", "/api/articles?tag=t", "/api/articles?q=words"] {
        let (status, body) = app.get(path, Some(&anna)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(slugs_of(&body), std::slice::from_ref(&mine), "{path} for the blocker");
        assert_eq!(slugs_of(&app.get(path, None).await.1).len(), 2, "{path} for anyone else");
        assert_eq!(slugs_of(&app.get(path, Some(&mo)).await.1).len(), 2, "{path} for a moderator");
    }
    assert!(app.get(&comments, Some(&anna)).await.1["comments"].as_array().unwrap().is_empty());
    assert_eq!(app.get(&comments, None).await.1["comments"].as_array().unwrap().len(), 1);

    // The blocked can no longer follow the blocker or comment on her articles; nor she follow him.
    let (status, body) = app.post("/api/profiles/anna/follow", Some(&troll), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(error_messages(&body, "profile")[0].contains("blocks you"));
    let (status, _) = app.post(&comments, Some(&troll), json!({"comment": {"body": "again"}})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app.post("/api/profiles/troll/follow", Some(&anna), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(error_messages(&body, "profile")[0].contains("blocked by you"));
    let (_, profile) = app.get("/api/profiles/anna", Some(&troll)).await;
    assert_eq!(profile["profile"]["following"], false, "the follow ended with the block");
    // A moderator still comments where the author blocks them.
    assert_eq!(app.post("/api/profiles/mo/block", Some(&anna), json!({})).await.0, StatusCode::OK);
    assert_eq!(app.post(&comments, Some(&mo), json!({"comment": {"body": "moderating"}})).await.0, StatusCode::CREATED);

    let (status, body) = app.post("/api/profiles/anna/block", Some(&anna), json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!error_messages(&body, "profile").is_empty());
    assert_eq!(app.post("/api/profiles/nobody/block", Some(&anna), json!({})).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.post("/api/profiles/troll/block", None, json!({})).await.0, StatusCode::UNAUTHORIZED);

    assert_eq!(app.delete("/api/profiles/troll/block", Some(&anna)).await.0, StatusCode::OK);
    assert_eq!(slugs_of(&app.get("/api/articles", Some(&anna)).await.1).len(), 2);
    assert!(slugs_of(&app.get("/api/articles", Some(&anna)).await.1).contains(&trolls));
}

/// A reader blocks and unblocks in a tight loop (from two clients at once) while reading their
/// listings and feed: every answer is a 200, and at the end the count of blocks on her row
/// agrees with her list of blocks, and her listings with both.
async fn blocking_and_unblocking_in_a_tight_loop_while_reading(app: TestApp) {
    let anna = app.register("anna").await;
    let troll = app.register("troll").await;
    let jake = app.register("jake").await;
    app.post("/api/profiles/jake/follow", Some(&anna), json!({})).await;
    app.article(&troll, "Troll", &[]).await;
    app.article(&jake, "Jake", &[]).await;
    let toggle = |start: usize| {
        let (base, client, token) = (app.base.clone(), app.client.clone(), anna.clone());
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in start..start + 60 {
                let method = if i % 2 == 0 { reqwest::Method::POST } else { reqwest::Method::DELETE };
                let request = client.request(method, format!("{base}/api/profiles/troll/block"));
                statuses.push(request.header("authorization", format!("Token {token}")).send().await.unwrap().status());
            }
            statuses
        })
    };
    let read = {
        let (base, client, token) = (app.base.clone(), app.client.clone(), anna.clone());
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..120 {
                let path = ["/api/articles", "/api/articles/feed", "/api/articles?q=troll"][i % 3];
                let request = client.get(format!("{base}{path}")).header("authorization", format!("Token {token}"));
                statuses.push(request.send().await.unwrap().status());
            }
            statuses
        })
    };
    let (one, two) = (toggle(0), toggle(1));
    let (one, two, reads) = (one.await.unwrap(), two.await.unwrap(), read.await.unwrap());
    for status in one.iter().chain(&two).chain(&reads) {
        assert_eq!(*status, StatusCode::OK);
    }
    let (_, blocks) = app.get("/api/user/blocks", Some(&anna)).await;
    let listed = blocks["blocks"].as_array().unwrap().len() as i64;
    let anna_user = app.store.user_by_id(conduit_domain::model::UserId::new(1)).await.unwrap().unwrap();
    assert_eq!(anna_user.username, "anna");
    assert_eq!(anna_user.blocking, listed, "the count on her row agrees with her blocks");
    let seen = slugs_of(&app.get("/api/articles", Some(&anna)).await.1).len();
    assert_eq!(seen, if listed == 1 { 1 } else { 2 });
    assert_eq!(app.get("/api/articles/feed", Some(&anna)).await.1["articlesCount"], 1, "the feed is jake's");
}

/// One account filing reports as fast as it can, each of a different target (so no 409 stops
/// it), floods the queue no further than `CONDUIT_REPORTS_PER_HOUR` (20): the 21st is a 429
/// with Retry-After, and the queue holds 20 entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_account_cannot_flood_the_queue_with_reports() {
    let app = TestApp::sqlite().await;
    let author = app.register("author").await;
    let flooder = app.register("flooder").await;
    let mo = moderator(&app, "mo").await;
    let mut slugs = Vec::new();
    for i in 0..21 {
        slugs.push(app.article(&author, &format!("Target {i}"), &[]).await);
    }
    let sends = slugs.iter().map(|slug| {
        let request = app.client.post(format!("{}/api/articles/{slug}/report", app.base));
        request.header("authorization", format!("Token {flooder}")).json(&report("spam")).send()
    });
    let answers = futures::future::join_all(sends).await;
    let mut statuses: Vec<StatusCode> = answers.iter().map(|a| a.as_ref().unwrap().status()).collect();
    statuses.sort();
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CREATED).count(), 20, "{statuses:?}");
    let refused = answers.into_iter().map(Result::unwrap).find(|a| a.status() == StatusCode::TOO_MANY_REQUESTS);
    let refused = refused.expect("the 21st report is refused");
    assert!(refused.headers().contains_key("retry-after"));
    let (_, queue) = app.get("/api/moderation/queue?limit=100", Some(&mo)).await;
    assert_eq!(queue["entries"].as_array().unwrap().len(), 20);
}

/// New accounts earn trust: unverified, or younger than a day, an account publishes a third of
/// what an older verified one may each hour (10 of 30 at the defaults) and answers 429 with
/// Retry-After past it; verified and a day old, the account's own limit is all that holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_accounts_publish_under_a_tighter_limit() {
    let clock = Arc::new(ManualClock::default());
    let app = TestApp::sqlite_with_clock(clock.clone(), real_limits).await;
    let token = app.register("newbie").await;
    let post = |i: usize| json!({"article": {"title": format!("Post {i}"), "description": "d", "body": "b"}});
    for i in 0..10 {
        assert_eq!(app.post("/api/articles", Some(&token), post(i)).await.0, StatusCode::CREATED, "article {i}");
    }
    let response = app
        .client
        .post(format!("{}/api/articles", app.base))
        .header("authorization", format!("Token {token}"))
        .json(&post(10))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry), "Retry-After {retry}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_messages(&body, "rate"), ["too many attempts"]);

    // A day later and verified, it is held by the account limit (30) only.
    let verify = app.mailed_token("verify-email").await;
    assert_eq!(app.post("/api/users/verify", None, json!({"token": verify})).await.0, StatusCode::OK);
    clock.advance(Duration::from_secs(25 * 3600));
    for i in 11..41 {
        assert_eq!(app.post("/api/articles", Some(&token), post(i)).await.0, StatusCode::CREATED, "article {i}");
    }
    assert_eq!(app.post("/api/articles", Some(&token), post(41)).await.0, StatusCode::TOO_MANY_REQUESTS);
}

// --- two instances ---

const SECRET: &str = "a shared secret for both instances, 32+ characters";

async fn call(
    base: &str,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let client = reqwest::Client::new();
    let mut request = client.request(method, format!("{base}{path}"));
    if let Some(token) = token {
        request = request.header("authorization", format!("Token {token}"));
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap_or(Value::Null))
}

async fn register(base: &str, name: &str) -> String {
    let body = json!({"user": {"username": name, "email": format!("{name}@example.com"), "password": "password123"}});
    let (status, answer) = call(base, reqwest::Method::POST, "/api/users", None, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    answer["user"]["token"].as_str().unwrap().to_owned()
}

/// A moderator hides an article and suspends its author through instance A; instance B, which
/// had both cached, answers as though it had made the change itself, at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderation_holds_on_every_instance_before_the_request_returns() {
    let redis = RedisServer::start();
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let env = |db: &str, redis: &str| -> Vec<(String, String)> {
        vec![
            ("DATABASE_URL".into(), db.into()),
            ("REDIS_URL".into(), redis.into()),
            ("CONDUIT_JWT_SECRET".into(), SECRET.into()),
        ]
    };
    let vars = env(&database.url, &redis.url());
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let a = Server::start_with(dir.path(), &vars);
    let b = Server::start_with(dir.path(), &vars);
    let jake = register(&a.base, "jake").await;
    register(&a.base, "mo").await;
    let (ok, out, err) = run(conduit(dir.path()).env("DATABASE_URL", &database.url).args([
        "user",
        "promote",
        "mo",
        "--role",
        "moderator",
    ]));
    assert!(ok, "{out}{err}");
    assert!(out.contains("'mo' is now a moderator"), "{out}");
    let login = json!({"user": {"email": "mo@example.com", "password": "password123"}});
    let (_, answer) = call(&a.base, reqwest::Method::POST, "/api/users/login", None, Some(login)).await;
    let mo = answer["user"]["token"].as_str().unwrap().to_owned();

    // A block through A holds on B at once: B had the reader cached as blocking nobody.
    let anna = register(&a.base, "anna").await;
    let article = json!({"article": {"title": "Visible", "description": "d", "body": "b"}});
    let (_, answer) = call(&b.base, reqwest::Method::POST, "/api/articles", Some(&jake), Some(article)).await;
    let visible = answer["article"]["slug"].as_str().unwrap().to_owned();
    let listed = |base: String, token: String| {
        let visible = visible.clone();
        async move {
            let (_, body) = call(&base, reqwest::Method::GET, "/api/articles", Some(&token), None).await;
            body["articles"].as_array().unwrap().iter().any(|a| a["slug"] == visible.as_str())
        }
    };
    assert!(listed(b.base.clone(), anna.clone()).await);
    let (status, _) = call(&a.base, reqwest::Method::POST, "/api/profiles/jake/block", Some(&anna), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!listed(b.base.clone(), anna.clone()).await, "B still listed a blocked author's article");

    let mut slugs = Vec::new();
    for round in 0..5 {
        let article = json!({"article": {"title": format!("Cached {round}"), "description": "d", "body": "b"}});
        let (status, answer) = call(&b.base, reqwest::Method::POST, "/api/articles", Some(&jake), Some(article)).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        let slug = answer["article"]["slug"].as_str().unwrap().to_owned();
        // B reads it anonymously (and caches that view) and has jake cached from his write.
        for _ in 0..3 {
            assert_eq!(
                call(&b.base, reqwest::Method::GET, &format!("/api/articles/{slug}"), None, None).await.0,
                StatusCode::OK
            );
        }
        let hide = action("hide", ("article", json!(slug)), None);
        let (status, answer) =
            call(&a.base, reqwest::Method::POST, "/api/moderation/actions", Some(&mo), Some(hide)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let (status, _) = call(&b.base, reqwest::Method::GET, &format!("/api/articles/{slug}"), None, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "round {round}: B still served the hidden article");
        slugs.push(slug);
    }
    let until = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let suspend = json!({"action": {"kind": "suspend", "profile": "jake", "reason": "flood", "until": until}});
    let (status, answer) =
        call(&a.base, reqwest::Method::POST, "/api/moderation/actions", Some(&mo), Some(suspend)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let article = json!({"article": {"title": "After", "description": "d", "body": "b"}});
    let (status, answer) = call(&b.base, reqwest::Method::POST, "/api/articles", Some(&jake), Some(article)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "B let the suspended user write: {answer}");
    drop((a, b));
}
