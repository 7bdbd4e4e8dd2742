//! The `conduit` binary as a user runs it: help, start-up mistakes, migrate, restart, and
//! graceful shutdown on SIGTERM.

use std::time::{Duration, Instant};

use crate::common::process::{Server, assert_one_clear_line, conduit, run};

#[test]
fn help_explains_commands_and_settings() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stdout, _) = run(conduit(dir.path()).arg("--help"));
    assert!(ok);
    for needle in [
        "serve",
        "migrate",
        "--bind",
        "DATABASE_URL",
        "CONDUIT_JWT_SECRET",
        "conduit.toml",
        "CONDUIT_METRICS_BIND",
        "CONDUIT_SHUTDOWN_GRACE",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ] {
        assert!(stdout.contains(needle), "--help should mention {needle}:\n{stdout}");
    }
    let (ok, stdout, _) = run(conduit(dir.path()).args(["serve", "--help"]));
    assert!(ok && stdout.contains("--bind"), "{stdout}");
}

#[test]
fn config_mistakes_stop_start_up_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);
    let cases: &[Case] = &[
        (&[], &["--bind", "not-an-address"], "invalid --bind 'not-an-address'"),
        (&[("CONDUIT_BIND", "127.0.0.1:99999")], &[], "invalid CONDUIT_BIND"),
        (&[("DATABASE_URL", "mysql://root:hunter2@localhost/x")], &[], "unsupported DATABASE_URL"),
        (&[("DATABASE_URL", "postgres://postgres@127.0.0.1:1/x")], &[], "CONDUIT_JWT_SECRET is not set"),
        (
            &[("DATABASE_URL", "postgres://postgres:pw@127.0.0.1:1/x"), ("CONDUIT_JWT_SECRET", &"s".repeat(40))],
            &[],
            "cannot connect to PostgreSQL at 127.0.0.1:1/x",
        ),
        (&[("DATABASE_URL", "sqlite:///no/such/dir/c.db")], &[], "/no/such/dir/c.db"),
        (&[("CONDUIT_JWT_SECRET", "too short")], &[], "CONDUIT_JWT_SECRET is too short"),
        (&[("RUST_LOG", "=[")], &[], "invalid log filter"),
    ];
    for (env, args, mentions) in cases {
        let started = Instant::now();
        // Any free port unless the case names one: the cases that get as far as listening must
        // fail on their own mistake, not on port 3000 being taken (by a `cargo run` beside).
        let any_port = [("CONDUIT_BIND", "127.0.0.1:0")];
        let (ok, _, stderr) = run(conduit(dir.path()).envs(any_port).envs(env.iter().copied()).args(*args));
        assert!(!ok, "{env:?} {args:?} should fail");
        assert_one_clear_line(&stderr, mentions);
        assert!(!stderr.contains("hunter2") && !stderr.contains(":pw@"), "password leaked: {stderr}");
        assert!(started.elapsed() < Duration::from_secs(20), "{env:?} took {:?}", started.elapsed());
    }
    // A port already taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let (ok, _, stderr) = run(conduit(dir.path()).args(["--bind", &address]));
    assert!(!ok);
    assert_one_clear_line(&stderr, &format!("cannot listen on {address}"));
    // A broken config file.
    std::fs::write(dir.path().join("conduit.toml"), "bind = 3000\n").unwrap();
    let (ok, _, stderr) = run(&mut conduit(dir.path()));
    assert!(!ok);
    assert_one_clear_line(&stderr, "invalid bind in the config file '3000': expected IP:PORT");
    std::fs::write(dir.path().join("conduit.toml"), "bind = [\n").unwrap();
    let (ok, _, stderr) = run(&mut conduit(dir.path()));
    assert!(!ok);
    assert_one_clear_line(&stderr, "invalid config file conduit.toml");
}

#[test]
fn migrate_creates_and_updates_the_default_database() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let (ok, stdout, stderr) = run(conduit(dir.path()).arg("migrate"));
        assert!(ok, "{stderr}");
        assert!(stdout.contains("sqlite database at sqlite://conduit.db is up to date"), "{stdout}");
    }
    assert!(dir.path().join("conduit.db").exists());
}

#[tokio::test]
async fn tokens_survive_a_restart_and_sigterm_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let server = Server::start(dir.path());
    let response = client
        .post(format!("{}/api/users", server.base))
        .json(
            &serde_json::json!({"user": {"username": "jake", "email": "jake@example.com", "password": "password123"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: serde_json::Value = response.json().await.unwrap();
    let token = body["user"]["token"].as_str().unwrap().to_owned();
    let status = server.terminate();
    assert!(status.success(), "SIGTERM should exit 0, got {status}");
    assert!(dir.path().join("conduit.db.jwt-secret").exists());

    let server = Server::start(dir.path());
    let response = client
        .get(format!("{}/api/user", server.base))
        .header("Authorization", format!("Token {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "a token from before the restart still works");
    assert!(server.terminate().success());
}

#[tokio::test]
async fn set_password_hash_imports_a_hash_made_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let server = Server::start(dir.path());
    let register =
        serde_json::json!({"user": {"username": "jake", "email": "jake@example.com", "password": "password123"}});
    let response = client.post(format!("{}/api/users", server.base)).json(&register).send().await.unwrap();
    assert_eq!(response.status(), 201);

    let phc = conduit_domain::password::hash("an imported password").unwrap();
    let (ok, stdout, stderr) = run(conduit(dir.path()).args(["user", "set-password-hash", "jake", &phc]));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("password hash of 'jake' replaced"), "{stdout}");

    let login = |password: &str| {
        client
            .post(format!("{}/api/users/login", server.base))
            .json(&serde_json::json!({"user": {"email": "jake@example.com", "password": password}}))
            .send()
    };
    assert_eq!(login("an imported password").await.unwrap().status(), 200);
    assert_eq!(login("password123").await.unwrap().status(), 401);

    let (ok, _, stderr) = run(conduit(dir.path()).args(["user", "set-password-hash", "nobody", &phc]));
    assert!(!ok);
    assert_one_clear_line(&stderr, "no user named 'nobody'");
    let (ok, _, stderr) = run(conduit(dir.path()).args(["user", "set-password-hash", "jake", "not-a-hash"]));
    assert!(!ok);
    assert_one_clear_line(&stderr, "refusing to store this hash: not a PHC string");
    assert_eq!(login("an imported password").await.unwrap().status(), 200, "a refused hash changes nothing");
    assert!(server.terminate().success());
}

async fn register(client: &reqwest::Client, base: &str, name: &str) {
    let body = serde_json::json!({"user": {"username": name, "email": format!("{name}@example.com"), "password": "password123"}});
    let response = client.post(format!("{base}/api/users")).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 201);
}

fn login(
    client: &reqwest::Client,
    base: &str,
    name: &str,
) -> impl std::future::Future<Output = reqwest::Result<reqwest::Response>> + use<> {
    let body = serde_json::json!({"user": {"email": format!("{name}@example.com"), "password": "password123"}});
    client.post(format!("{base}/api/users/login")).json(&body).send()
}

/// The `conduit_http_requests_in_flight` gauge at `metrics_url`.
async fn in_flight(client: &reqwest::Client, metrics_url: &str) -> usize {
    let text = client.get(metrics_url).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find(|l| l.starts_with("conduit_http_requests_in_flight"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or(0.0) as usize
}

/// Polls `/metrics` until at least `want` requests are in flight; returns how many were.
async fn wait_for_in_flight(client: &reqwest::Client, metrics_url: &str, want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let in_flight = in_flight(client, metrics_url).await;
        if in_flight >= want {
            return in_flight;
        }
        assert!(Instant::now() < deadline, "never saw {want} requests in flight (last {in_flight})");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn sigterm_under_load_finishes_every_request_and_refuses_new_ones() {
    const LOGINS: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    // Metrics on their own address, so watching them does not count toward the main server.
    // 40 logins at once for one account hold 40 places in its login counter while in flight.
    let env = [("CONDUIT_METRICS_BIND", "127.0.0.1:0"), ("CONDUIT_LOGIN_ATTEMPTS", "1000")];
    let server = Server::start_with(dir.path(), &env);
    let base = server.base.clone();
    let metrics_url = server.metrics.clone().expect("metrics address logged");
    assert_eq!(client.get(format!("{base}/metrics")).send().await.unwrap().status(), 404);
    register(&client, &base, "jake").await;

    // 40 logins queue behind the two Argon2 permits: a few hundred milliseconds of work. Each
    // reads its whole answer; `finished` counts those that are over, however they ended.
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let logins: Vec<_> = (0..LOGINS)
        .map(|_| {
            let (request, finished) = (login(&client, &base, "jake"), finished.clone());
            tokio::spawn(async move {
                let answer = match request.await {
                    Ok(response) => {
                        let status = response.status();
                        response.text().await.map(|body| (status, body))
                    }
                    Err(e) => Err(e),
                };
                finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                answer
            })
        })
        .collect();
    // SIGTERM once every login has reached the server (in flight there, or already answered)
    // while many are still in flight: then each one was accepted before the signal, and must
    // be answered in full.
    let deadline = Instant::now() + Duration::from_secs(30);
    let in_flight_at_signal = loop {
        let done = finished.load(std::sync::atomic::Ordering::SeqCst);
        let in_flight = in_flight(&client, &metrics_url).await;
        if in_flight + done >= LOGINS {
            break in_flight;
        }
        assert!(Instant::now() < deadline, "never saw all {LOGINS} logins reach the server");
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    server.signal_term();
    assert!(in_flight_at_signal >= 10, "only {in_flight_at_signal} in flight at SIGTERM: too few to test draining");

    // New connections are refused promptly, while the accepted requests still complete.
    let address = base.trim_start_matches("http://").to_owned();
    let deadline = Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(&address).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting connections after SIGTERM");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // A new request is refused at the connection level: no connection, no error answer.
    let fresh = reqwest::Client::new().get(format!("{base}/api/tags")).send().await;
    let refused = fresh.expect_err("a new request after SIGTERM was served");
    assert!(refused.is_connect(), "a new request after SIGTERM failed other than by refusal: {refused:?}");
    // Every login was in flight (or done) when SIGTERM came: each completes with 200 and its
    // whole body; a connection closed mid-request or mid-response fails here.
    for (i, login) in logins.into_iter().enumerate() {
        match login.await.unwrap() {
            Ok((status, body)) => {
                assert_eq!(status, 200, "login {i}: {body}");
                let body: serde_json::Value = serde_json::from_str(&body).unwrap();
                assert!(body["user"]["token"].is_string(), "login {i}: {body}");
            }
            Err(e) => panic!("login {i}, accepted before SIGTERM, was not answered: {e:?}"),
        }
    }
    let mut server = server;
    let status = server.wait();
    assert!(status.success(), "exit 0 after draining, got {status}");
}

#[tokio::test]
async fn shutdown_gives_up_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    // 60 logins at once for one account hold 60 places in its login counter while in flight.
    let env = [
        ("CONDUIT_METRICS_BIND", "127.0.0.1:0"),
        ("CONDUIT_SHUTDOWN_GRACE", "0.05"),
        ("CONDUIT_LOGIN_ATTEMPTS", "1000"),
    ];
    let mut server = Server::start_with(dir.path(), &env);
    let base = server.base.clone();
    register(&client, &base, "jake").await;
    let logins: Vec<_> = (0..60).map(|_| tokio::spawn(login(&client, &base, "jake"))).collect();
    wait_for_in_flight(&client, server.metrics.as_ref().unwrap(), 30).await;
    let started = Instant::now();
    server.signal_term();
    let status = server.wait();
    assert!(!status.success(), "abandoning requests must not look like a clean exit");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    let completed = futures::future::join_all(logins).await.into_iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
    assert!(completed < 60, "some requests should have been cut off");
}

#[tokio::test]
async fn promote_makes_an_admin_or_says_there_is_no_such_user() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let server = Server::start(dir.path());
    register(&client, &server.base, "jake").await;
    let token = login(&client, &server.base, "jake").await.unwrap().json::<serde_json::Value>().await.unwrap()["user"]
        ["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let users = || {
        client.get(format!("{}/api/admin/users", server.base)).header("Authorization", format!("Token {token}")).send()
    };
    assert_eq!(users().await.unwrap().status(), 403);

    let (ok, stdout, stderr) = run(conduit(dir.path()).args(["user", "promote", "jake"]));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("'jake' is now an admin"), "{stdout}");
    assert_eq!(users().await.unwrap().status(), 200, "the same token now has admin rights");

    let (ok, _, stderr) = run(conduit(dir.path()).args(["user", "promote", "nobody"]));
    assert!(!ok);
    assert_one_clear_line(&stderr, "no user named 'nobody'");
    assert!(server.terminate().success());
}

#[tokio::test]
async fn database_sessions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let server = Server::start(dir.path());
    register(&client, &server.base, "jake").await;
    let response = client
        .post(format!("{}/api/session", server.base))
        .json(&serde_json::json!({"user": {"email": "jake@example.com", "password": "password123"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    assert!(server.terminate().success());

    let server = Server::start(dir.path());
    let me = client.get(format!("{}/api/user", server.base)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(me.status(), 200, "the session outlived the process");
    assert!(server.terminate().success());
}

/// `conduit seed` fills a database that the server then serves: the demo users log in with the
/// documented password, the counts add up, and the same seed gives the same data.
#[tokio::test]
async fn seed_fills_a_database_the_same_way_every_time() {
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for dir in [&one, &two] {
        let (ok, stdout, stderr) = run(conduit(dir.path()).args(["seed", "--articles", "1200", "--seed", "7"]));
        assert!(ok, "{stderr}");
        assert!(stdout.contains("1200 articles") && stdout.contains("120 users"), "{stdout}");
        assert!(stderr.contains("articles 100%"), "progress is shown: {stderr}");
    }
    // Seeding again with the same names is refused with a way out.
    let (ok, _, stderr) = run(conduit(one.path()).args(["seed", "--articles", "10"]));
    assert!(!ok);
    assert_one_clear_line(&stderr, "pass another --prefix");

    let client = reqwest::Client::new();
    let mut titles = Vec::new();
    for dir in [&one, &two] {
        let server = Server::start(dir.path());
        let body: serde_json::Value = client
            .post(format!("{}/api/users/login", server.base))
            .json(&serde_json::json!({"user": {"email": "demo1@example.com", "password": "password123"}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["user"]["username"], "demo1", "{body}");
        let list: serde_json::Value =
            client.get(format!("{}/api/articles?limit=5", server.base)).send().await.unwrap().json().await.unwrap();
        assert_eq!(list["articlesCount"], 1200);
        titles.push(list["articles"].as_array().unwrap().iter().map(|a| a["title"].clone()).collect::<Vec<_>>());
        let tags: serde_json::Value =
            client.get(format!("{}/api/tags", server.base)).send().await.unwrap().json().await.unwrap();
        assert!(!tags["tags"].as_array().unwrap().is_empty());
        assert!(server.terminate().success());
    }
    assert_eq!(titles[0], titles[1], "the same seed gives the same articles");
}

/// A bulk load leaves the planner without statistics (on PostgreSQL, listings then ran 30 times
/// slower): `conduit seed` gathers them itself, `serve` warns at start-up when a large table has
/// none, and `conduit analyze` gathers them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_leaves_planner_statistics_and_serve_warns_without_them() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = run(conduit(dir.path()).args(["seed", "--articles", "100"]));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("planner statistics"), "{stdout}");
    let db = dir.path().join("conduit.db");
    let statistics = |db: &std::path::Path| {
        let out = std::process::Command::new("python3")
            .args(["-c", "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT COUNT(*) FROM sqlite_stat1').fetchone()[0])"])
            .arg(db)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse::<i64>().unwrap_or(0)
    };
    assert!(statistics(&db) > 0, "the seed left statistics");

    // Data loaded some other way (12,000 users in one statement), and no statistics at all.
    let load = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('DROP TABLE sqlite_stat1'); \
        c.execute(\"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 12000) \
        INSERT INTO users (username, email, password_hash, created_at, updated_at) \
        SELECT 'bulk' || i, 'bulk' || i || '@example.com', 'x', '2026-12-07T00:00:00Z', '2026-12-07T00:00:00Z' FROM n\"); c.commit()";
    let loaded = std::process::Command::new("python3").args(["-c", load]).arg(&db).status().unwrap();
    assert!(loaded.success());
    let warned = |server: Server| {
        let log = server.log.lock().unwrap().join("\n");
        assert!(server.terminate().success());
        log.lines().any(|line| line.contains("no planner statistics") && line.contains("users"))
    };
    assert!(warned(Server::start(dir.path())), "a large table without statistics is named at start-up");

    let (ok, stdout, stderr) = run(conduit(dir.path()).arg("analyze"));
    assert!(ok && stdout.contains("gathered planner statistics"), "{stdout} {stderr}");
    assert!(!warned(Server::start(dir.path())), "after conduit analyze");
}
