//! `conduit backup` and `conduit restore` as real processes, beside a real `conduit serve`: a
//! backup taken while writes go on, restored into the other backend and served there (logins,
//! tokens, sessions and every count intact), in both directions; archives that cannot be
//! trusted refused before anything is loaded; a database in use or holding data refused; and
//! the faults: `kill -9` of a backup and of a restore, and a disk that fills up.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use conduit_store_postgres::testing::TestDatabase;
use serde_json::{Value, json};

use crate::common::process::{BIN, Server, assert_one_clear_line, conduit, run};

const SECRET: &str = "a-backup-test-secret-of-at-least-32-characters";

struct Site {
    client: reqwest::Client,
    base: String,
}

impl Site {
    fn of(server: &Server) -> Site {
        Site { client: reqwest::Client::new(), base: server.base.clone() }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Token {token}"));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn register(&self, name: &str) -> String {
        let user =
            json!({"user": {"username": name, "email": format!("{name}@example.com"), "password": "password123"}});
        let (status, body) = self.call(reqwest::Method::POST, "/api/users", None, Some(user)).await;
        assert_eq!(status, 201, "{body}");
        body["user"]["token"].as_str().unwrap().to_owned()
    }

    async fn post_article(&self, token: &str, title: &str) -> (u16, Value) {
        let article =
            json!({"article": {"title": title, "description": "d", "body": "b", "tagList": ["backup", "moved"]}});
        self.call(reqwest::Method::POST, "/api/articles", Some(token), Some(article)).await
    }

    async fn articles_count(&self, query: &str) -> i64 {
        let (status, body) =
            self.call(reqwest::Method::GET, &format!("/api/articles?limit=1{query}"), None, None).await;
        assert_eq!(status, 200, "{body}");
        body["articlesCount"].as_i64().unwrap()
    }
}

/// The rows per table a restore reports ("... 12 articles, ...").
fn restored_rows(stdout: &str, table: &str) -> i64 {
    let words: Vec<&str> = stdout.split([' ', ',', ':', ';']).filter(|w| !w.is_empty()).collect();
    let at = words.iter().position(|w| *w == table).unwrap_or_else(|| panic!("no {table} in {stdout}"));
    words[at - 1].parse().unwrap()
}

/// What a site moved by a backup must still be: the old token works (same secret), the
/// password logs in, the browser session is still signed in, follows, favorites, tags and
/// every count are there.
async fn check_moved(site: &Site, alice: &str, bob_cookie: &str, articles: i64) {
    let (status, me) = site.call(reqwest::Method::GET, "/api/user", Some(alice), None).await;
    assert_eq!(status, 200, "alice's token from before the move: {me}");
    assert_eq!(me["user"]["username"], "alice");
    let login = json!({"user": {"email": "bob@example.com", "password": "password123"}});
    let (status, body) = site.call(reqwest::Method::POST, "/api/users/login", None, Some(login)).await;
    assert_eq!(status, 200, "bob logs in with his password: {body}");
    let bob = body["user"]["token"].as_str().unwrap().to_owned();
    let session = site.client.get(format!("{}/api/user", site.base)).header("cookie", bob_cookie).send().await.unwrap();
    assert_eq!(session.status(), 200, "bob's browser session moved with the database");
    assert_eq!(site.articles_count("").await, articles, "every article");
    assert_eq!(site.articles_count("&author=alice").await, 5);
    assert_eq!(site.articles_count("&favorited=bob").await, 2);
    assert_eq!(site.articles_count("&tag=first").await, 5);
    let (_, profile) = site.call(reqwest::Method::GET, "/api/profiles/alice", Some(&bob), None).await;
    assert_eq!(profile["profile"]["following"], true, "{profile}");
    let (_, feed) = site.call(reqwest::Method::GET, "/api/articles/feed?limit=50", Some(&bob), None).await;
    assert_eq!(feed["articlesCount"], 5, "bob's feed: {feed}");
    let (_, listed) = site.call(reqwest::Method::GET, "/api/articles?author=alice&limit=5", Some(&bob), None).await;
    let favorited: Vec<bool> =
        listed["articles"].as_array().unwrap().iter().map(|a| a["favorited"].as_bool().unwrap()).collect();
    assert_eq!(favorited.iter().filter(|f| **f).count(), 2, "{listed}");
    let slug = listed["articles"][0]["slug"].as_str().unwrap();
    let (_, comments) = site.call(reqwest::Method::GET, &format!("/api/articles/{slug}/comments"), None, None).await;
    assert_eq!(comments["comments"].as_array().unwrap().len(), 3, "{comments}");
    // Writing goes on where the ids left off.
    let (status, body) = site.post_article(&bob, "After the move").await;
    assert_eq!(status, 201, "{body}");
}

/// A backup of a SQLite deployment taken while a client keeps publishing (no write refused),
/// restored into PostgreSQL and served there; then a backup of that PostgreSQL deployment,
/// taken while it serves, restored into SQLite and served. Both times the same token, password,
/// session, follows, favorites, comments and counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_writes_moves_sqlite_to_postgres_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("CONDUIT_JWT_SECRET", SECRET)];
    let server = Server::start_with(dir.path(), &env);
    let site = Site::of(&server);
    let alice = site.register("alice").await;
    let bob = site.register("bob").await;
    let mut slugs = Vec::new();
    for i in 0..5 {
        let article =
            json!({"article": {"title": format!("Alice {i}"), "description": "d", "body": "b", "tagList": ["first"]}});
        let (status, body) = site.call(reqwest::Method::POST, "/api/articles", Some(&alice), Some(article)).await;
        assert_eq!(status, 201);
        slugs.push(body["article"]["slug"].as_str().unwrap().to_owned());
    }
    for slug in &slugs[..2] {
        assert_eq!(
            site.call(reqwest::Method::POST, &format!("/api/articles/{slug}/favorite"), Some(&bob), None).await.0,
            200
        );
    }
    assert_eq!(site.call(reqwest::Method::POST, "/api/profiles/alice/follow", Some(&bob), None).await.0, 200);
    for i in 0..3 {
        let comment = json!({"comment": {"body": format!("comment {i}")}});
        let path = format!("/api/articles/{}/comments", slugs[4]);
        assert_eq!(site.call(reqwest::Method::POST, &path, Some(&bob), Some(comment)).await.0, 201);
    }
    let login = json!({"user": {"email": "bob@example.com", "password": "password123"}});
    let response = site.client.post(format!("{}/api/session", site.base)).json(&login).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let bob_cookie = response.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();

    // A writer publishes all through the backup.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (site, stop, bob) =
            (Site { client: reqwest::Client::new(), base: site.base.clone() }, stop.clone(), bob.clone());
        async move {
            let (mut written, mut refused) = (0, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let (status, body) = site.post_article(&bob, &format!("During the backup {written}")).await;
                if status == 201 {
                    written += 1;
                } else {
                    refused.push((status, body));
                }
            }
            (written, refused)
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first = dir.path().join("first.conduit-backup");
    let (ok, stdout, stderr) = blocking(conduit(dir.path()).envs(env).args(["backup", "--to"]).arg(&first)).await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("backed up the sqlite database"), "{stdout}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let (written, refused) = writer.await.unwrap();
    assert!(refused.is_empty(), "writes refused during the backup: {refused:?}");
    assert!(written > 0, "the writer wrote during the backup");

    let postgres = TestDatabase::create().await;
    let on_postgres = [("CONDUIT_JWT_SECRET", SECRET), ("DATABASE_URL", postgres.url.as_str())];
    let (ok, stdout, stderr) = blocking(conduit(dir.path()).envs(on_postgres).arg("restore").arg(&first)).await;
    assert!(ok, "{stderr}");
    let articles = restored_rows(&stdout, "articles");
    assert!(articles >= 5 && articles <= 5 + written, "{stdout}");
    assert!(restored_rows(&stdout, "sessions") >= 1 && restored_rows(&stdout, "outbox") >= 2, "{stdout}");
    assert!(server.terminate().success());

    let served = Server::start_with(dir.path(), &on_postgres);
    check_moved(&Site::of(&served), &alice, &bob_cookie, articles).await;

    // And back, from PostgreSQL while it serves, into SQLite.
    let second = dir.path().join("second.conduit-backup");
    let (ok, stdout, stderr) =
        blocking(conduit(dir.path()).envs(on_postgres).args(["backup", "--to"]).arg(&second)).await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("backed up the postgres database"), "{stdout}");
    let back = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = blocking(conduit(back.path()).envs(env).arg("restore").arg(&second)).await;
    assert!(ok, "{stderr}");
    assert_eq!(restored_rows(&stdout, "articles"), articles + 1, "{stdout}");
    assert!(served.terminate().success());
    let home = Server::start_with(back.path(), &env);
    check_moved(&Site::of(&home), &alice, &bob_cookie, articles + 1).await;
    assert!(home.terminate().success());
}

/// Runs a command on a blocking thread (the test's runtime keeps serving its other tasks).
async fn blocking(command: &mut Command) -> (bool, String, String) {
    let mut command = std::mem::replace(command, Command::new("true"));
    tokio::task::spawn_blocking(move || run(&mut command)).await.unwrap()
}

/// A small seeded SQLite database and a backup of it, in `dir`.
fn seeded_backup(dir: &Path, articles: &str) -> PathBuf {
    let (ok, _, stderr) = run(conduit(dir).args(["seed", "--articles", articles]));
    assert!(ok, "{stderr}");
    let archive = dir.join("good.conduit-backup");
    let (ok, _, stderr) = run(conduit(dir).args(["backup", "--to"]).arg(&archive));
    assert!(ok, "{stderr}");
    archive
}

fn flip_byte(from: &Path, to: &Path, at: usize) {
    let mut bytes = std::fs::read(from).unwrap();
    bytes[at] ^= 0x20;
    std::fs::write(to, bytes).unwrap();
}

/// A flipped byte in the database or in the manifest, a cut-short file, an archive from a newer
/// schema, and a wrong path: each refused with one line, and nothing loaded (no target file, no
/// scratch copy left; on PostgreSQL, no row).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_archives_it_cannot_trust_and_loads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let good = seeded_backup(dir.path(), "60");
    let size = std::fs::metadata(&good).unwrap().len() as usize;
    let flipped_data = dir.path().join("flipped-data");
    flip_byte(&good, &flipped_data, size / 3);
    let flipped_manifest = dir.path().join("flipped-manifest");
    flip_byte(&good, &flipped_manifest, size - 120);
    let cut = dir.path().join("cut");
    std::fs::write(&cut, &std::fs::read(&good).unwrap()[..size / 2]).unwrap();

    // An archive of a database one migration ahead of this build.
    let newer_dir = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = run(conduit(newer_dir.path()).args(["seed", "--articles", "10"]));
    assert!(ok, "{stderr}");
    let ahead = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); \
        c.execute(\"INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
        VALUES (29991231000001, 'from the future', 1, x'00', 0)\"); c.commit()";
    assert!(
        Command::new("python3")
            .args(["-c", ahead])
            .arg(newer_dir.path().join("conduit.db"))
            .status()
            .unwrap()
            .success()
    );
    let newer = newer_dir.path().join("newer");
    let (ok, _, stderr) = run(conduit(newer_dir.path()).args(["backup", "--to"]).arg(&newer));
    assert!(ok, "{stderr}");

    let cases: [(&Path, &str); 5] = [
        (&flipped_data, "does not match the manifest's checksum"),
        (&flipped_manifest, "is damaged"),
        (&cut, "is not a whole Conduit backup"),
        (&newer, "comes from a newer Conduit"),
        (Path::new("/no/such/archive"), "cannot open the backup /no/such/archive"),
    ];
    let postgres = TestDatabase::create().await;
    for (archive, says) in cases {
        let target = tempfile::tempdir().unwrap();
        let (ok, _, stderr) = run(conduit(target.path()).arg("restore").arg(archive));
        assert!(!ok);
        assert_one_clear_line(&stderr, says);
        let left: Vec<_> = std::fs::read_dir(target.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name != "conduit.db.conduit-lock")
            .collect();
        assert!(left.is_empty(), "{archive:?} left {left:?}");

        let (ok, _, stderr) =
            run(conduit(target.path()).env("DATABASE_URL", &postgres.url).arg("restore").arg(archive));
        assert!(!ok);
        assert_one_clear_line(&stderr, says);
    }
    let users = users_on_postgres(&postgres.url).await;
    assert_eq!(users, 0, "nothing was loaded into PostgreSQL");
    // The good one restores.
    let (ok, _, stderr) = run(conduit(dir.path()).env("DATABASE_URL", &postgres.url).arg("restore").arg(&good));
    assert!(ok, "{stderr}");
}

async fn users_on_postgres(url: &str) -> i64 {
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&mut connection).await.unwrap();
    connection.close().await.unwrap();
    users
}

/// A restore never loads a database a server is serving, on either backend, nor one that holds
/// data unless told to replace it; with --replace it does, and the server then serves the
/// archive's accounts, not the ones it replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_a_database_in_use_or_holding_data() {
    let source = tempfile::tempdir().unwrap();
    let archive = seeded_backup(source.path(), "20");

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    Site::of(&server).register("replaced").await;
    let (ok, _, stderr) = run(conduit(dir.path()).arg("restore").arg(&archive));
    assert!(!ok);
    assert_one_clear_line(&stderr, "`conduit serve` is running on the database");
    assert!(server.terminate().success());
    let (ok, _, stderr) = run(conduit(dir.path()).arg("restore").arg(&archive));
    assert!(!ok);
    assert_one_clear_line(&stderr, "holds data (1 users");
    assert!(stderr.contains("--replace"), "{stderr}");
    let (ok, _, stderr) = run(conduit(dir.path()).args(["restore", "--replace"]).arg(&archive));
    assert!(ok, "{stderr}");
    let server = Server::start(dir.path());
    let site = Site::of(&server);
    let login = |name: &str| json!({"user": {"email": format!("{name}@example.com"), "password": "password123"}});
    assert_eq!(site.call(reqwest::Method::POST, "/api/users/login", None, Some(login("demo1"))).await.0, 200);
    assert_eq!(site.call(reqwest::Method::POST, "/api/users/login", None, Some(login("replaced"))).await.0, 401);

    // A server starting while a restore holds the database refuses to start; on PostgreSQL a
    // restore refuses a served database the same way.
    let postgres = TestDatabase::create().await;
    let on_postgres = [("DATABASE_URL", postgres.url.as_str()), ("CONDUIT_JWT_SECRET", SECRET)];
    let served = Server::start_with(dir.path(), &on_postgres);
    let (ok, _, stderr) = run(conduit(dir.path()).envs(on_postgres).arg("restore").arg(&archive));
    assert!(!ok);
    assert_one_clear_line(&stderr, "`conduit serve` is running on the database");
    assert_eq!(users_on_postgres(&postgres.url).await, 0);
    assert!(served.terminate().success());
    assert!(server.terminate().success());
}

/// `kill -9` of a backup in progress leaves nothing at the path it was asked for, and what it
/// left beside it is refused as not whole; the next backup to that path succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_killed_halfway_leaves_no_archive_that_looks_complete() {
    let dir = tempfile::tempdir().unwrap();
    let postgres = TestDatabase::create().await;
    let on_postgres = [("DATABASE_URL", postgres.url.as_str()), ("CONDUIT_JWT_SECRET", SECRET)];
    let (ok, _, stderr) = run(conduit(dir.path()).envs(on_postgres).args(["seed", "--articles", "4000"]));
    assert!(ok, "{stderr}");
    let to = dir.path().join("killed.conduit-backup");
    let partial = dir.path().join("killed.conduit-backup.partial");
    let mut backup = conduit(dir.path())
        .envs(on_postgres)
        .args(["backup", "--to"])
        .arg(&to)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(&partial).map_or(true, |m| m.len() < 64 * 1024) {
        assert!(backup.try_wait().unwrap().is_none(), "the backup finished before it could be killed");
        assert!(Instant::now() < deadline, "no partial backup appeared");
        std::thread::sleep(Duration::from_millis(2));
    }
    backup.kill().unwrap(); // SIGKILL
    backup.wait().unwrap();
    assert!(!to.exists(), "a killed backup left a file at the path asked for");
    let (ok, _, stderr) = run(conduit(dir.path()).arg("restore").arg(&partial));
    assert!(!ok);
    assert_one_clear_line(&stderr, "is not a whole Conduit backup");
    let (ok, _, stderr) = run(conduit(dir.path()).envs(on_postgres).args(["backup", "--to"]).arg(&to));
    assert!(ok, "{stderr}");
    assert!(!partial.exists(), "the next backup cleared the partial one");
}

/// `kill -9` of a restore while it loads: PostgreSQL rolls the load back and a SQLite target is
/// untouched (the copy was a scratch file); a second restore, without --replace, loads it all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_killed_halfway_is_cleaned_up_by_a_second_one() {
    let source = tempfile::tempdir().unwrap();
    let archive = seeded_backup(source.path(), "4000");
    let postgres = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let on_postgres = [("DATABASE_URL", postgres.url.as_str()), ("TMPDIR", dir.path().to_str().unwrap())];
    let restore = || {
        conduit(dir.path())
            .envs(on_postgres)
            .arg("restore")
            .arg(&archive)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut first = restore();
    let loading = wait_for_copy(&postgres.url, &mut first).await;
    assert!(loading, "the restore reached its COPY");
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(users_on_postgres(&postgres.url).await, 0, "the killed load was rolled back");
    let (ok, stdout, stderr) = run(conduit(dir.path()).envs(on_postgres).arg("restore").arg(&archive));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("4000 articles"), "{stdout}");

    // SQLite: killed while it checks its scratch copy.
    let target = tempfile::tempdir().unwrap();
    let scratch = target.path().join("conduit.db.restoring");
    let mut first = conduit(target.path())
        .arg("restore")
        .arg(&archive)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !scratch.exists() {
        assert!(first.try_wait().unwrap().is_none(), "the restore finished before it could be killed");
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(1));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(!target.path().join("conduit.db").exists(), "the target was not touched");
    let (ok, stdout, stderr) = run(conduit(target.path()).arg("restore").arg(&archive));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("4000 articles"), "{stdout}");
    assert!(!scratch.exists());
}

/// Polls PostgreSQL until a `COPY` of the restore runs (true), or the restore ends (false).
async fn wait_for_copy(url: &str, restore: &mut std::process::Child) -> bool {
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && restore.try_wait().unwrap().is_none() {
        let copying: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'COPY %' AND state = 'active'",
        )
        .fetch_one(&mut connection)
        .await
        .unwrap();
        if copying > 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    false
}

/// A disk that fills up during a backup (a 128 KiB tmpfs in a user and mount namespace of the backup's
/// own) fails that backup with one line, leaves nothing behind, and the server goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_backup_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = run(conduit(dir.path()).args(["seed", "--articles", "300"]));
    assert!(ok, "{stderr}");
    let server = Server::start(dir.path());
    let site = Site::of(&server);
    let token = site.register("writer").await;
    let small = dir.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let script = r#"mount -t tmpfs -o size=128k conduit-full "$1" || exit 99
"$2" backup --to "$1/full.conduit-backup"; status=$?
ls -A "$1" >&2; exit $status"#;
    let output = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", script, "sh"])
        .arg(&small)
        .arg(BIN)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(99), "cannot mount a tmpfs here: {stderr}");
    assert!(!output.status.success(), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("conduit: error: ")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("disk is full") && lines[0].contains("nothing was written"), "{stderr}");
    let listed: Vec<&str> = stderr.lines().filter(|l| !l.starts_with("conduit: ")).collect();
    assert!(listed.is_empty(), "files were left on the full disk: {listed:?}");
    let (status, body) = site.post_article(&token, "Still serving").await;
    assert_eq!(status, 201, "{body}");
    assert!(server.terminate().success());
}

/// Every argument mistake of the two commands is one line that names the fix.
#[test]
fn backup_and_restore_mistakes_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("taken"), "x").unwrap();
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 6] = [
        (&["backup", "--to", "/no/such/folder/b"], &[], "the folder /no/such/folder does not exist"),
        (&["backup", "--to", "taken"], &[], "exists already: name a new file"),
        (&["backup"], &[("DATABASE_URL", "sqlite::memory:")], "an in-memory database cannot be backed up"),
        (&["backup", "--to"], &[], "a value is required for '--to <PATH>'"),
        (&["restore"], &[], "the following required arguments were not provided: <ARCHIVE>"),
        (&["restore", "a", "--bogus"], &[], "unexpected argument '--bogus'"),
    ];
    for (args, env, says) in cases {
        let (ok, _, stderr) = run(conduit(dir.path()).args(args).envs(env.iter().copied()));
        assert!(!ok, "{args:?}");
        assert_one_clear_line(&stderr, says);
    }
}

/// Two instances on one PostgreSQL database, each with its own backup folder and a 2-second
/// interval: between them, one backup a slot (never two within a slot), each verified by a
/// restore, the folders kept to two, and `/health/ready` and `/metrics` tell of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_backups_are_taken_once_a_slot_and_verify_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let postgres = TestDatabase::create().await;
    let start = |folder: &str| {
        let folder = dir.path().join(folder);
        let env = [
            ("DATABASE_URL", postgres.url.as_str()),
            ("CONDUIT_JWT_SECRET", SECRET),
            ("CONDUIT_BACKUP_DIR", folder.to_str().unwrap()),
            ("CONDUIT_BACKUP_INTERVAL", "2"),
            ("CONDUIT_BACKUP_KEEP", "2"),
        ];
        Server::start_with(dir.path(), &env)
    };
    let (one, two) = (start("one"), start("two"));
    Site::of(&one).register("someone").await;
    tokio::time::sleep(Duration::from_millis(9000)).await;
    let logged = |message: &str| -> Vec<Value> {
        [&one, &two]
            .iter()
            .flat_map(|server| server.log.lock().unwrap().clone())
            .filter_map(|line| serde_json::from_str::<Value>(&line).ok())
            .filter(|log| log["message"] == message)
            .collect()
    };
    let taken = logged("scheduled backup taken");
    let verified = logged("scheduled backup verified");
    assert!(taken.len() >= 3, "a backup every 2 s for 9 s: {taken:?}");
    assert!(
        verified.len() + 1 >= taken.len(),
        "each verified (but maybe the last, still running): {taken:?} {verified:?}"
    );
    let mut slots: Vec<i64> = taken.iter().map(|log| log["slot"].as_i64().unwrap()).collect();
    slots.sort();
    let before = slots.len();
    slots.dedup();
    assert_eq!(slots.len(), before, "two backups of one slot: {taken:?}");
    for folder in ["one", "two"] {
        let kept = std::fs::read_dir(dir.path().join(folder))
            .map(|entries| {
                entries
                    .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".conduit-backup"))
                    .count()
            })
            .unwrap_or(0);
        // Two verified, and a newer one while it is being verified: the oldest goes only once a
        // newer one verified (a slow verification, under the whole suite's load, showed three).
        assert!(kept <= 3, "{folder} keeps two, and one being verified: {kept}");
    }
    for server in [&one, &two] {
        let site = Site::of(server);
        let (status, health) = site.call(reqwest::Method::GET, "/health/ready", None, None).await;
        assert_eq!(status, 200, "{health}");
        assert_eq!(health["checks"]["backup"]["status"], "ok", "{health}");
        assert!(
            !health.to_string().contains(dir.path().to_str().unwrap()),
            "a path in the public health answer: {health}"
        );
        let metrics = site.client.get(format!("{}/metrics", site.base)).send().await.unwrap().text().await.unwrap();
        assert!(metrics.contains("conduit_backup_last_verified_timestamp_seconds"), "{metrics}");
    }
    let (_, health) = Site::of(&one).call(reqwest::Method::GET, "/health/ready", None, None).await;
    let (_, other) = Site::of(&two).call(reqwest::Method::GET, "/health/ready", None, None).await;
    assert!(
        !health["checks"]["backup"]["lastVerified"].is_null() || !other["checks"]["backup"]["lastVerified"].is_null(),
        "{health} {other}"
    );
    assert!(one.terminate().success());
    assert!(two.terminate().success());
}

/// A scheduled backup that cannot be written (its folder is a file) is counted, shown in
/// `/health/ready` (still ready), and mailed to the admins through the outbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_scheduled_backup_mails_the_admins_and_shows_in_health() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("not-a-folder"), "x").unwrap();
    let env = [("CONDUIT_BACKUP_DIR", "not-a-folder/backups"), ("CONDUIT_BACKUP_INTERVAL", "1")];
    let server = Server::start_with(dir.path(), &env);
    let site = Site::of(&server);
    site.register("boss").await;
    let (ok, _, stderr) = run(conduit(dir.path()).args(["user", "promote", "boss"]));
    assert!(ok, "{stderr}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, health) = site.call(reqwest::Method::GET, "/health/ready", None, None).await;
    assert_eq!(status, 200, "a failed backup does not make the server unready: {health}");
    assert_eq!(health["checks"]["backup"]["status"], "failing", "{health}");
    assert_eq!(health["checks"]["backup"]["failure"]["what"], "backup", "{health}");
    // The answer is public: it says that a backup failed, not where or why.
    assert!(!health.to_string().contains("not-a-folder"), "a path in the public health answer: {health}");
    let metrics = site.client.get(format!("{}/metrics", site.base)).send().await.unwrap().text().await.unwrap();
    let failures = metrics.lines().find(|l| l.starts_with("conduit_backup_failures_total ")).unwrap();
    assert!(!failures.ends_with(" 0"), "{failures}");
    let (ok, stdout, stderr) = run(conduit(dir.path()).args(["mail", "list", "--show"]));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("backup-failed") && stdout.contains("boss@example.com"), "{stdout}");
    assert!(stdout.contains("not-a-folder"), "the admin's mail says why: {stdout}");
    assert!(server.terminate().success());
}

/// An archive from an older schema (a database two migrations behind this build, made by
/// applying the older migrations by hand) restores into either backend: migrated on the scratch
/// copy first, then loaded, and served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_from_an_older_schema_is_migrated_as_it_is_restored() {
    let dir = tempfile::tempdir().unwrap();
    let migrations = concat!(env!("CARGO_MANIFEST_DIR"), "/../store-sqlite/migrations");
    // sqlx records each applied migration with the SHA-384 of its text; its migrator then
    // accepts the database as that far along.
    let older = r#"
import hashlib, os, sqlite3, sys
folder, db = sys.argv[1], sys.argv[2]
names = sorted(n for n in os.listdir(folder) if n.endswith('.sql'))[:-2]
c = sqlite3.connect(db)
c.execute('''CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL, execution_time BIGINT NOT NULL)''')
for name in names:
    text = open(os.path.join(folder, name), 'rb').read()
    c.executescript(text.decode())
    version, description = name[:-4].split('_', 1)
    c.execute('INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (?, ?, 1, ?, 0)',
              (int(version), description.replace('_', ' '), hashlib.sha384(text).digest()))
c.execute("INSERT INTO users (username, email, password_hash, created_at, updated_at) VALUES "
          "('elder', 'elder@example.com', 'an old hash', '2026-12-01T00:00:00+00:00', '2026-12-01T00:00:00+00:00')")
c.commit()
print(names[-1][:14])
"#;
    let made =
        Command::new("python3").args(["-c", older, migrations]).arg(dir.path().join("conduit.db")).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let version = String::from_utf8_lossy(&made.stdout).trim().to_owned();
    let archive = dir.path().join("older.conduit-backup");
    let (ok, stdout, stderr) = run(conduit(dir.path()).args(["backup", "--to"]).arg(&archive));
    assert!(ok, "{stderr}");
    assert!(stdout.contains(&format!("schema {version}")), "the archive keeps its older schema: {stdout}");

    let postgres = TestDatabase::create().await;
    let on_postgres = [("DATABASE_URL", postgres.url.as_str()), ("CONDUIT_JWT_SECRET", SECRET)];
    let target = tempfile::tempdir().unwrap();
    for env in [&on_postgres[..], &[("CONDUIT_JWT_SECRET", SECRET)][..]] {
        let (ok, stdout, stderr) = run(conduit(target.path()).envs(env.iter().copied()).arg("restore").arg(&archive));
        assert!(ok, "{stderr}");
        assert!(stdout.contains(&format!("migrated from schema {version}")), "{stdout}");
        let server = Server::start_with(target.path(), env);
        let (status, body) = Site::of(&server).call(reqwest::Method::GET, "/api/profiles/elder", None, None).await;
        assert_eq!(status, 200, "{body}");
        assert!(server.terminate().success());
    }
}

/// A PostgreSQL restart ends every session and the server's in-use lock with it: the server
/// takes it again, so a restore (even one told to --replace) is still refused afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_postgresql_still_knows_the_database_is_served() {
    let source = tempfile::tempdir().unwrap();
    let archive = seeded_backup(source.path(), "10");
    let postgres = crate::common::process::PostgresServer::start();
    let url = postgres.url();
    let dir = tempfile::tempdir().unwrap();
    let env = [("DATABASE_URL", url.as_str()), ("CONDUIT_JWT_SECRET", SECRET)];
    let server = Server::start_with(dir.path(), &env);
    let restore = || run(conduit(dir.path()).envs(env).args(["restore", "--replace"]).arg(&archive));
    let (ok, _, stderr) = restore();
    assert!(!ok);
    assert_one_clear_line(&stderr, "`conduit serve` is running on the database");
    postgres.stop();
    postgres.resume();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (ok, _, stderr) = restore();
    assert!(!ok, "a restore replaced a served database after PostgreSQL restarted");
    assert_one_clear_line(&stderr, "`conduit serve` is running on the database");
    let (status, _) = Site::of(&server).call(reqwest::Method::GET, "/api/articles", None, None).await;
    assert_eq!(status, 200);
    assert!(server.terminate().success());
}
