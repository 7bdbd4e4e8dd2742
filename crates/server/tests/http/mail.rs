//! The account lifecycle by mail against a real SMTP server (aiosmtpd) and real `conduit`
//! processes: every flow followed from the mail's link over HTTP on both backends; a mail
//! server that is down, then back; an instance killed between the commit and the send; two
//! PostgreSQL instances sharing one outbox.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::common::process::{Server, conduit, run};
use crate::common::smtp::{SmtpSink, link_token};
use crate::common::{TestApp, an_hour_old_login};
use conduit_server::config::UnverifiedPolicy;
use conduit_store_postgres::testing::TestDatabase;
use reqwest::StatusCode;
use serde_json::{Value, json};

const SECRET: &str = "a shared secret for the mail tests, 32+ characters";
const WITHIN: Duration = Duration::from_secs(20);

/// Settings of every instance here: quick retries, links to a frontend.
fn env(database: Option<&str>, smtp: &str) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("CONDUIT_SMTP_URL", smtp.to_owned()),
        ("CONDUIT_PUBLIC_URL", "https://frontend.example".to_owned()),
        ("CONDUIT_MAIL_RETRY", "0.2".to_owned()),
        ("CONDUIT_SMTP_TIMEOUT", "2".to_owned()),
        ("CONDUIT_JWT_SECRET", SECRET.to_owned()),
    ];
    if let Some(url) = database {
        env.push(("DATABASE_URL", url.to_owned()));
    }
    env
}

fn start(dir: &std::path::Path, env: &[(&'static str, String)]) -> Server {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::start_with(dir, &env)
}

/// `conduit mail list ARGS` against an instance's database (its settings), after it stopped.
fn mail_list(dir: &std::path::Path, settings: &[(&'static str, String)], args: &[&str]) -> String {
    let env = settings.iter().map(|(k, v)| (*k, v.as_str()));
    let (ok, listed, stderr) = run(conduit(dir).envs(env).args(["mail", "list"]).args(args));
    assert!(ok, "{stderr}");
    listed
}

/// The `tries N` of each line of `conduit mail list`.
fn tries(listed: &str) -> Vec<u32> {
    listed
        .lines()
        .map(|line| {
            let after = line.split(" tries ").nth(1).unwrap_or_else(|| panic!("no tries in {line:?}"));
            after.split_whitespace().next().unwrap().parse().unwrap()
        })
        .collect()
}

/// Nothing left queued, so nothing claimed and unsent can come due and be sent again; and the
/// sent messages, each claimed as often as `claims` says (`tries` counts claims).
fn assert_outbox_done(dir: &std::path::Path, settings: &[(&'static str, String)], claims: &[u32]) -> String {
    let queued = mail_list(dir, settings, &["--state", "queued"]);
    assert_eq!(queued.trim_end(), "the outbox is empty (state queued)", "left in the outbox");
    let sent = mail_list(dir, settings, &["--state", "sent", "--limit", "1000"]);
    let mut counted = tries(&sent);
    counted.sort_unstable();
    let mut expected = claims.to_vec();
    expected.sort_unstable();
    assert_eq!(counted, expected, "sent messages and their tries:\n{sent}");
    sent
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(base: &str) -> Self {
        Client { http: reqwest::Client::new(), base: base.to_owned() }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("authorization", format!("Token {token}"));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, token, Some(body)).await
    }

    async fn register(&self, name: &str) -> String {
        let user =
            json!({"user": {"username": name, "email": format!("{name}@example.com"), "password": "password123"}});
        let (status, body) = self.post("/api/users", None, user).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["user"]["token"].as_str().unwrap().to_owned()
    }

    async fn login(&self, email: &str, password: &str) -> (StatusCode, Value) {
        self.post("/api/users/login", None, json!({"user": {"email": email, "password": password}})).await
    }

    async fn metric(&self, name: &str) -> f64 {
        let text = self.http.get(format!("{}/metrics", self.base)).send().await.unwrap().text().await.unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /metrics"))
    }
}

async fn every_flow_end_to_end(database: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start();
    let settings = env(database, &sink.url());
    let server = start(dir.path(), &settings);
    let api = Client::new(&server.base);

    // Registration mails a verification link; the link verifies the address, once.
    let token = api.register("jake").await;
    let (_, me) = api.send(reqwest::Method::GET, "/api/user", Some(&token), None).await;
    assert_eq!(me["user"]["emailVerified"], false);
    let mail = sink.wait_for("jake@example.com", "Confirm your email", WITHIN).await;
    assert!(mail["body"].as_str().unwrap().contains("https://frontend.example/verify-email#token="), "{mail}");
    let verify = link_token(&mail, "verify-email");
    let (status, body) = api.post("/api/users/verify", None, json!({"token": verify})).await;
    assert_eq!((status, &body["user"]["emailVerified"]), (StatusCode::OK, &json!(true)), "{body}");
    let (_, me) = api.send(reqwest::Method::GET, "/api/user", Some(&token), None).await;
    assert_eq!(me["user"]["emailVerified"], true);
    let (status, body) = api.post("/api/users/verify", None, json!({"token": verify})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "single use: {body}");
    assert!(body["errors"]["token"][0].as_str().unwrap().contains("ask for a new link"));

    // A reset request answers alike for an unknown address, and mails only the real one.
    let ask = |email: &str| json!({"user": {"email": email}});
    let (known, known_body) = api.post("/api/users/password-reset", None, ask("jake@example.com")).await;
    let (unknown, unknown_body) = api.post("/api/users/password-reset", None, ask("nobody@example.com")).await;
    assert_eq!((known, unknown), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    assert_eq!(known_body, unknown_body);
    let mail = sink.wait_for("jake@example.com", "Reset your Conduit password", WITHIN).await;
    let reset = link_token(&mail, "reset-password");
    let confirm = |token: &str, password: &str| json!({"token": token, "password": password});
    let (status, body) = api.post("/api/users/password-reset/confirm", None, confirm(&reset, "short")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = api.post("/api/users/password-reset/confirm", None, confirm(&reset, "a new password")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let fresh = body["user"]["token"].as_str().unwrap().to_owned();
    let (status, _) = api.send(reqwest::Method::GET, "/api/user", Some(&token), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a reset ends every earlier token");
    assert_eq!(api.login("jake@example.com", "password123").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(api.login("jake@example.com", "a new password").await.0, StatusCode::OK);
    let (status, _) = api.post("/api/users/password-reset/confirm", None, confirm(&reset, "another one")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a reset link works once");
    sink.wait_for("jake@example.com", "password was changed", WITHIN).await;
    // The unknown address is told that no account can be reset with it: no link.
    let note = sink.wait_for("nobody@example.com", "Reset your Conduit password", WITHIN).await;
    assert!(!note["body"].as_str().unwrap().contains("token="), "no link to an unknown address: {note}");

    // An email change: the old address gets a notice with an undo link, the new one a
    // verification link. The undo gives the old address back and ends every token.
    let change = json!({"user": {"email": "jacob@example.com"}});
    let (status, body) = api.send(reqwest::Method::PUT, "/api/user", Some(&fresh), Some(change)).await;
    assert_eq!((status, &body["user"]["emailVerified"]), (StatusCode::OK, &json!(false)), "{body}");
    let notice = sink.wait_for("jake@example.com", "email address was changed", WITHIN).await;
    assert!(notice["body"].as_str().unwrap().contains("jacob@example.com"));
    let verify_new = sink.wait_for("jacob@example.com", "Confirm your email", WITHIN).await;
    let (status, body) =
        api.post("/api/users/verify", None, json!({"token": link_token(&verify_new, "verify-email")})).await;
    assert_eq!((status, &body["user"]["email"]), (StatusCode::OK, &json!("jacob@example.com")));
    let (status, body) =
        api.post("/api/users/email-change/revert", None, json!({"token": link_token(&notice, "revert-email")})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((&body["user"]["email"], &body["user"]["emailVerified"]), (&json!("jake@example.com"), &json!(true)));
    let (status, _) = api.send(reqwest::Method::GET, "/api/user", Some(&fresh), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "undoing the change ends every token");
    let restored = sink.wait_for_nth("jake@example.com", "Reset your Conduit password", 1, WITHIN).await;
    assert!(restored["body"].as_str().unwrap().contains("has this address again"), "{restored}");
    assert_ne!(link_token(&restored, "reset-password"), reset, "a fresh reset link comes with it");

    // A password change sends a notice; export holds everything; deletion ends it all.
    let (_, login) = api.login("jake@example.com", "a new password").await;
    let token = login["user"]["token"].as_str().unwrap().to_owned();
    let before = sink.messages().len();
    let change = json!({"user": {"password": "the newest password"}});
    let (status, body) = api.send(reqwest::Method::PUT, "/api/user", Some(&token), Some(change)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["user"]["token"].as_str().unwrap().to_owned();
    let messages = sink.wait_for_count(before + 1, WITHIN).await;
    assert!(messages[before]["subject"].as_str().unwrap().contains("password was changed"));
    let article = json!({"article": {"title": "Mine", "description": "d", "body": "all mine", "tagList": ["t"]}});
    let (status, _) = api.post("/api/articles", Some(&token), article).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = api.post("/api/articles/mine/comments", Some(&token), json!({"comment": {"body": "me"}})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, export) = api.send(reqwest::Method::GET, "/api/user/export", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    let export = &export["export"];
    assert_eq!((&export["user"]["username"], &export["articles"][0]["body"]), (&json!("jake"), &json!("all mine")));
    assert_eq!((&export["comments"][0]["article"], &export["comments"][0]["body"]), (&json!("mine"), &json!("me")));

    let (status, body) = api.send(reqwest::Method::DELETE, "/api/user", Some(&token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "a recent login needs no password: {body}");
    let (status, _) = api.send(reqwest::Method::GET, "/api/user", Some(&token), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(api.login("jake@example.com", "the newest password").await.0, StatusCode::UNAUTHORIZED);
    let (status, _) = api.send(reqwest::Method::GET, "/api/articles/mine", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "their article went with them (the default)");
    sink.wait_for("jake@example.com", "account was deleted", WITHIN).await;
    // The sink has a message a moment before its sender hears the 250 and counts it.
    let deadline = Instant::now() + WITHIN;
    while api.metric("conduit_mail_sent_total").await < 9.0 {
        assert!(Instant::now() < deadline, "the sends were not counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(api.metric("conduit_mail_sent_total").await, 9.0, "nine messages, each sent once");
    assert!(server.terminate().success());
    // Stopped, it can send nothing more: nine messages, each claimed once, none left queued
    // (a claimed but unmarked one would come due again when its lease ran out).
    assert_outbox_done(dir.path(), &settings, &[1; 9]);
    assert_eq!(sink.messages().len(), 9, "each message once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_flow_end_to_end_on_sqlite() {
    every_flow_end_to_end(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_flow_end_to_end_on_postgres() {
    let database = TestDatabase::create().await;
    every_flow_end_to_end(Some(&database.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_asked_while_the_mail_server_is_down_is_delivered_by_a_retry() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = SmtpSink::start();
    sink.stop();
    let server = start(dir.path(), &env(None, &sink.url()));
    let api = Client::new(&server.base);
    api.register("jake").await;
    let (status, _) = api.post("/api/users/password-reset", None, json!({"user": {"email": "jake@example.com"}})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "queued, whatever the mail server does");
    let deadline = Instant::now() + WITHIN;
    while api.metric("conduit_mail_failed_total").await < 2.0 {
        assert!(Instant::now() < deadline, "the sends never failed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sink.resume();
    let mail = sink.wait_for("jake@example.com", "Reset your Conduit password", WITHIN).await;
    assert!(mail["body"].as_str().unwrap().contains("reset-password#token="));
    sink.wait_for("jake@example.com", "Confirm your email", WITHIN).await;
    assert!(server.terminate().success());
    // The outbox shows the tries it took, and no body (it held a token).
    let (ok, listed, stderr) = run(conduit(dir.path()).args(["mail", "list", "--state", "sent"]));
    assert!(ok, "{stderr}");
    let reset_line = listed.lines().find(|l| l.contains(" reset ")).unwrap_or_else(|| panic!("{listed}"));
    assert!(tries(reset_line)[0] >= 2, "delivered by a retry: {reset_line}");
    assert_eq!(listed.lines().count(), 2, "{listed}");
    // Nothing left queued that could come due and be sent again.
    let queued = mail_list(dir.path(), &[], &["--state", "queued"]);
    assert_eq!(queued.trim_end(), "the outbox is empty (state queued)");
    assert_eq!(sink.messages().len(), 2, "each message once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_committed_when_the_instance_is_killed_mid_send_is_sent_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    // A mail server that accepts connections and never answers: the send hangs in flight.
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hole = format!("smtp://{}", black_hole.local_addr().unwrap());
    let (accepted, connections) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in black_hole.incoming() {
            let _ = accepted.send(stream);
        }
    });
    let mut server = start(dir.path(), &env(None, &hole));
    let api = Client::new(&server.base);
    api.register("jake").await;
    // The verification mail is committed and being sent: kill the instance now.
    let held = connections.recv_timeout(WITHIN).expect("the sender connected").unwrap();
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    drop(held);

    let sink = SmtpSink::start();
    let settings = env(None, &sink.url());
    let restarted = start(dir.path(), &settings);
    // Its lease (2 × the 2 s timeout + 5 s) runs out, then the restarted instance sends it.
    let mail = sink.wait_for("jake@example.com", "Confirm your email", Duration::from_secs(30)).await;
    let verify = link_token(&mail, "verify-email");
    let api = Client::new(&restarted.base);
    let (status, _) = api.post("/api/users/verify", None, json!({"token": verify})).await;
    assert_eq!(status, StatusCode::OK, "the mail sent after the restart is the one committed before it");
    assert!(restarted.terminate().success());
    // Claimed twice (the killed instance's lease, then the restarted one's), marked sent, and
    // nothing left queued whose lease could run out into a second send.
    let sent = assert_outbox_done(dir.path(), &settings, &[2]);
    assert!(sent.contains("jake@example.com"), "{sent}");
    assert_eq!(sink.messages().len(), 1, "sent once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_postgres_instances_deliver_each_message_exactly_once() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start();
    let settings = env(Some(&database.url), &sink.url());
    let (a, b) = (start(dir.path(), &settings), start(dir.path(), &settings));
    let clients = [Client::new(&a.base), Client::new(&b.base)];
    // 30 registrations and 30 reset requests, spread over both instances, all at once: 60
    // messages queued by two instances whose senders both claim from one outbox.
    let names: Vec<String> = (0..30).map(|i| format!("user{i}")).collect();
    let registrations = names.iter().enumerate().map(|(i, name)| clients[i % 2].register(name));
    futures::future::join_all(registrations).await;
    let resets = names.iter().enumerate().map(|(i, name)| {
        clients[(i + 1) % 2].post(
            "/api/users/password-reset",
            None,
            json!({"user": {"email": format!("{name}@example.com")}}),
        )
    });
    for (status, body) in futures::future::join_all(resets).await {
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    sink.wait_for_count(60, Duration::from_secs(60)).await;
    // The sink has a message a moment before its sender hears the 250 and counts it.
    let sent_total = || async {
        clients[0].metric("conduit_mail_sent_total").await + clients[1].metric("conduit_mail_sent_total").await
    };
    let deadline = Instant::now() + WITHIN;
    while sent_total().await < 60.0 {
        assert!(Instant::now() < deadline, "the sends were not counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sent_total().await, 60.0, "the two instances' sends add up to the messages");
    assert!(a.terminate().success());
    assert!(b.terminate().success());
    // Both stopped: no claim can still be running. Every message was claimed once (a second
    // claim, by either instance, would show as tries 2) and none is left queued.
    assert_outbox_done(dir.path(), &settings, &[1; 60]);
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for message in sink.messages() {
        *seen
            .entry((message["to"].as_str().unwrap().to_owned(), message["subject"].as_str().unwrap().to_owned()))
            .or_default() += 1;
    }
    assert_eq!(seen.len(), 60, "{seen:#?}");
    assert!(seen.values().all(|n| *n == 1), "a message delivered twice: {seen:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_mail_is_listed_and_requeued_by_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = SmtpSink::start();
    sink.stop();
    let mut settings = env(None, &sink.url());
    settings.push(("CONDUIT_MAIL_MAX_ATTEMPTS", "2".to_owned()));
    let server = start(dir.path(), &settings);
    let api = Client::new(&server.base);
    // Two messages die: the verification link (it carries a token) and a password notice.
    let token = api.register("jake").await;
    let change = json!({"user": {"password": "a new password"}});
    let (status, body) = api.send(reqwest::Method::PUT, "/api/user", Some(&token), Some(change)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let deadline = Instant::now() + WITHIN;
    while api.metric("conduit_mail_dead_total").await < 2.0 {
        assert!(Instant::now() < deadline, "the messages never died");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (ok, listed, stderr) = run(conduit(dir.path()).args(["mail", "list", "--state", "dead", "--show"]));
    assert!(ok, "{stderr}");
    assert!(listed.contains("jake@example.com") && listed.contains("last error"), "{listed}");
    // The dead link's token is forgotten; the notice's text is kept for the retry.
    assert!(!listed.contains("#token="), "{listed}");
    assert!(listed.contains("password"), "{listed}");
    sink.resume();
    let (ok, out, stderr) = run(conduit(dir.path()).args(["mail", "retry"]));
    assert!(ok && out.starts_with("1 message(s) queued again"), "{out} {stderr}");
    sink.wait_for("jake@example.com", "Your Conduit password was changed", WITHIN).await;
    assert!(server.terminate().success());
}

/// With no mail transport configured (the quick start), no token reaches the log: mail waits in
/// the outbox, where `conduit mail list --show` gives a newcomer its links. With the log chosen
/// as the transport, the log has them (which shows this test reads the log it means to).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_is_logged_unless_the_log_is_the_chosen_transport() {
    let dir = tempfile::tempdir().unwrap();
    let settings = [("CONDUIT_JWT_SECRET", SECRET.to_owned())];
    let server = start(dir.path(), &settings);
    let api = Client::new(&server.base);
    api.register("jake").await;
    let (status, _) = api.post("/api/users/password-reset", None, json!({"user": {"email": "jake@example.com"}})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let log = server.log.clone();
    assert!(server.terminate().success());
    let log = log.lock().unwrap().join("\n");
    assert!(log.contains("conduit mail list --show"), "the start-up line says where mail waits: {log}");
    assert!(!log.contains("token="), "{log}");
    let listed = mail_list(dir.path(), &settings, &["--show"]);
    assert_eq!(listed.matches("#token=").count(), 2, "a verification and a reset link: {listed}");
    let verify = listed.split("verify-email#token=").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    let server = start(dir.path(), &settings);
    let api = Client::new(&server.base);
    let (status, body) = api.post("/api/users/verify", None, json!({"token": verify})).await;
    assert_eq!(status, StatusCode::OK, "the link from the outbox works: {body}");
    drop(server);

    let dir = tempfile::tempdir().unwrap();
    let settings = [("CONDUIT_JWT_SECRET", SECRET.to_owned()), ("CONDUIT_SMTP_URL", "log:".to_owned())];
    let server = start(dir.path(), &settings);
    Client::new(&server.base).register("jake").await;
    let log = server.log.clone();
    let deadline = Instant::now() + WITHIN;
    while !log.lock().unwrap().iter().any(|line| line.contains("verify-email#token=")) {
        assert!(Instant::now() < deadline, "the chosen log transport logged no link");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(server.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_file_url_mail_goes_to_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("outgoing mail");
    let url = url::Url::from_directory_path(&folder).unwrap().to_string();
    let server = start(dir.path(), &env(None, &url));
    Client::new(&server.base).register("jake").await;
    let deadline = Instant::now() + WITHIN;
    let eml = loop {
        // Only a finished message has the .eml name (it is written under a hidden one first).
        let found = std::fs::read_dir(&folder)
            .ok()
            .and_then(|mut d| d.find(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "eml")))
            .map(|e| e.unwrap().path());
        if let Some(path) = found {
            break std::fs::read_to_string(path).unwrap();
        }
        assert!(Instant::now() < deadline, "no .eml written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(eml.contains("To: jake@example.com") && eml.contains("verify-email#token"), "{eml}");
    assert!(server.terminate().success());
}

// --- in process: limits, timing and the policy for unverified users (no sending needed) ---

async fn reset_requests_answer_alike_and_are_limited_per_recipient(app: TestApp) {
    app.register("jake").await;
    let ask = |email: &str| json!({"user": {"email": email}});
    // jake's registration mailed its verification link: that is one of jake's five this hour.
    for (email, allowed) in [("jake@example.com", 4), ("nobody@example.com", 5)] {
        let mut bodies = Vec::new();
        for _ in 0..allowed {
            let started = Instant::now();
            let (status, body) = app.post("/api/users/password-reset", None, ask(email)).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{body}");
            assert!(started.elapsed() >= Duration::from_millis(250), "every answer waits for the floor");
            bodies.push(body);
        }
        assert!(bodies.windows(2).all(|w| w[0] == w[1]));
        let (status, body) = app.post("/api/users/password-reset", None, ask(email)).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "the sixth mail to {email} this hour: {body}");
    }
    let (status, body) = app.post("/api/users/password-reset", None, ask("not an address")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // Garbage, forged and missing tokens are a 422 in the error shape, never a 500.
    for token in [json!(""), json!("nonsense"), json!("AAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"), json!(null)]
    {
        let (status, body) = app.post("/api/users/verify", None, json!({"token": token})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{token}: {body}");
        let confirm = json!({"token": token, "password": "a long new password"});
        let (status, _) = app.post("/api/users/password-reset/confirm", None, confirm).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{token}");
    }
}

async fn a_forged_verifier_with_a_real_selector_is_refused(app: TestApp) {
    app.register("jake").await;
    let token = app.mailed_token("verify-email").await;
    let (selector, verifier) = token.split_once('.').unwrap();
    let forged = format!("{selector}.{}", verifier.chars().rev().collect::<String>());
    let (status, _) = app.post("/api/users/verify", None, json!({"token": forged})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = app.post("/api/users/verify", None, json!({"token": token})).await;
    assert_eq!(status, StatusCode::OK, "the real one still works: {body}");
}

async fn email_changes_cannot_flood_an_inbox(app: TestApp) {
    let token = app.register("jake").await;
    let change = |email: &str| json!({"user": {"email": email}});
    // Each change mails the new address; back and forth, the victim's address gets five.
    for round in 0..5 {
        let (status, body) = app.put("/api/user", Some(&token), change("victim@example.com")).await;
        assert_eq!(status, StatusCode::OK, "round {round}: {body}");
        let (status, body) = app.put("/api/user", Some(&token), change(&format!("jake{round}@example.com"))).await;
        assert_eq!(status, StatusCode::OK, "round {round}: {body}");
    }
    let (status, body) = app.put("/api/user", Some(&token), change("victim@example.com")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let (_, me) = app.get("/api/user", Some(&token)).await;
    assert_eq!(me["user"]["email"], "jake4@example.com", "a refused change changes nothing");
}

async fn deleting_an_account_needs_a_recent_login_or_the_password(app: TestApp) {
    app.register("jake").await;
    let old = an_hour_old_login(&app, "jake").await;
    let (status, body) = app.delete("/api/user", Some(&old)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an hour-old login alone: {body}");
    let wrong = json!({"user": {"currentPassword": "not the password"}});
    let (status, _) = app.send(reqwest::Method::DELETE, "/api/user", Some(&old), Some(wrong)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app.send_raw(reqwest::Method::DELETE, "/api/user", Some(&old), b"{not json".to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let right = json!({"user": {"currentPassword": "password123"}});
    let (status, _) = app.send(reqwest::Method::DELETE, "/api/user", Some(&old), Some(right)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/user", Some(&old)).await.0, StatusCode::UNAUTHORIZED);
    // A recent login needs no body; a client that declares JSON but sends nothing is no body.
    let fresh = app.register("anna").await;
    let response = app
        .client
        .delete(format!("{}/api/user", app.base))
        .header("authorization", format!("Token {fresh}"))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/profiles/anna", None).await.0, StatusCode::NOT_FOUND);
}

on_both_backends!(
    deleting_an_account_needs_a_recent_login_or_the_password,
    reset_requests_answer_alike_and_are_limited_per_recipient,
    a_forged_verifier_with_a_real_selector_is_refused,
    email_changes_cannot_flood_an_inbox
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unverified_users_read_and_manage_their_account_but_write_nothing_else_under_the_read_policy() {
    let app = TestApp::sqlite_with(|c| c.accounts.unverified_users = UnverifiedPolicy::Read).await;
    let token = app.register("jake").await;
    let article = json!({"article": {"title": "t", "description": "d", "body": "b"}});
    let (status, body) = app.post("/api/articles", Some(&token), article.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["errors"]["email"][0].as_str().unwrap().contains("not verified"));
    assert_eq!(app.get("/api/articles", Some(&token)).await.0, StatusCode::OK);
    assert_eq!(app.put("/api/user", Some(&token), json!({"user": {"bio": "hi"}})).await.0, StatusCode::OK);
    let verify = app.mailed_token("verify-email").await;
    assert_eq!(app.post("/api/users/verify", None, json!({"token": verify})).await.0, StatusCode::OK);
    assert_eq!(app.post("/api/articles", Some(&token), article).await.0, StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unverified_users_cannot_log_in_under_the_none_policy() {
    let app = TestApp::sqlite_with(|c| c.accounts.unverified_users = UnverifiedPolicy::None).await;
    app.register("jake").await;
    let login = json!({"user": {"email": "jake@example.com", "password": "password123"}});
    let (status, body) = app.post("/api/users/login", None, login.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = app
        .post("/api/users/login", None, json!({"user": {"email": "jake@example.com", "password": "wrong password"}}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a wrong password learns nothing about verification");
    let verify = app.mailed_token("verify-email").await;
    assert_eq!(app.post("/api/users/verify", None, json!({"token": verify})).await.0, StatusCode::OK);
    assert_eq!(app.post("/api/users/login", None, login).await.0, StatusCode::OK);
}
