//! Search (`GET /api/articles?q=`), bodies as safe HTML (`bodyHtml`), and the RSS and Atom
//! feeds, over HTTP on both backends. The feeds are read by Python's `feedparser` (no `bozo`
//! flag: it found nothing malformed) and by a strict XML parser.

use std::process::Command;
use std::time::Duration;

use conduit_server::ops::search_index::{MAX_SEGMENTS, merge_if_due};

use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use serde_json::{Value, json};

use crate::common::{TestApp, error_messages};

on_both_backends!(
    search_ranks_pages_by_rank_and_highlights,
    hostile_queries_are_words_or_a_422_never_a_500,
    bodies_and_comments_come_back_as_safe_html,
    feeds_are_valid_rss_and_atom_and_answer_304_until_a_change,
);

async fn publish(app: &TestApp, token: &str, title: &str, description: &str, body: &str, tags: &[&str]) -> Value {
    let (status, created) = app
        .post(
            "/api/articles",
            Some(token),
            json!({"article": {"title": title, "description": description, "body": body, "tagList": tags}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["article"].clone()
}

fn slugs(body: &Value) -> Vec<&str> {
    body["articles"].as_array().unwrap().iter().map(|a| a["slug"].as_str().unwrap()).collect()
}

async fn search_ranks_pages_by_rank_and_highlights(app: TestApp) {
    let jake = app.register("jake").await;
    let titled = publish(&app, &jake, "Tokio runtime internals", "a tour", "plain text", &["rust"]).await;
    let described = publish(&app, &jake, "Notes", "how the tokio runtime schedules", "plain text", &[]).await;
    let bodied = publish(&app, &jake, "More notes", "x", "We start the **tokio runtime** here.", &["rust"]).await;
    publish(&app, &jake, "Unrelated", "x", "nothing", &[]).await;

    let (status, found) = app.get("/api/articles?q=tokio%20runtime", None).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let expected = [&titled, &described, &bodied].map(|a| a["slug"].as_str().unwrap());
    assert_eq!(slugs(&found), expected);
    assert_eq!(found["articlesCount"], 3);
    let snippet = found["articles"][2]["snippet"].as_str().expect("a snippet");
    assert!(snippet.contains("<mark>tokio</mark>") && snippet.contains("<mark>runtime</mark>"), "{snippet}");
    assert!(found["articles"][0].get("body").is_none(), "listings carry no body");

    // Paged by rank: two, then the cursor to the third; a filter narrows it.
    let (_, first) = app.get("/api/articles?q=tokio%20runtime&limit=2", None).await;
    assert_eq!(slugs(&first), expected[..2]);
    let cursor = first["nextCursor"].as_str().expect("a full page has a next cursor");
    let (_, second) = app.get(&format!("/api/articles?q=tokio%20runtime&limit=2&cursor={cursor}"), None).await;
    assert_eq!((slugs(&second), second.get("nextCursor")), (expected[2..].to_vec(), None));
    let (_, tagged) = app.get("/api/articles?q=tokio&tag=rust", None).await;
    assert_eq!(slugs(&tagged), [expected[0], expected[2]]);
    let (_, by_author) = app.get("/api/articles?q=tokio&author=jake&limit=1", None).await;
    assert_eq!(slugs(&by_author), [expected[0]]);

    // A new article is found at once; a deleted one never again.
    let fresh = publish(&app, &jake, "Tokio runtime again", "x", "y", &[]).await;
    let (_, found) = app.get("/api/articles?q=tokio%20runtime", None).await;
    assert_eq!(slugs(&found)[0], fresh["slug"].as_str().unwrap());
    let (status, _) = app.delete(&format!("/api/articles/{}", fresh["slug"].as_str().unwrap()), Some(&jake)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, found) = app.get("/api/articles?q=tokio%20runtime", None).await;
    assert_eq!(slugs(&found), expected);
}

async fn hostile_queries_are_words_or_a_422_never_a_500(app: TestApp) {
    let jake = app.register("jake").await;
    publish(&app, &jake, "Near the star", "col: x", "NEAR stars ^ and \"quotes\" AND or NOT", &[]).await;
    let long = "a".repeat(201);
    let many = "w ".repeat(13);
    let hostile = [
        "\"",
        "\"\"",
        "NEAR(",
        "NEAR(star quotes, 2)",
        "*",
        "star*",
        "^star",
        "title:star",
        "{title}:star",
        "a AND",
        "OR",
        "NOT star",
        "(",
        ")",
        "-",
        "--",
        "- -",
        "star -",
        "'",
        "%",
        "%25",
        "\\",
        "\u{0}",
        "star\u{0}x",
        "\u{E000}star\u{E001}",
        "Ω≈ç√",
        "🦀",
        "a\"b\"c",
        "\"near the\" -",
        "col: x",
        ":",
        "star OR -star",
        long.as_str(),
        many.as_str(),
        "-star",
        "-\"near the\"",
    ];
    for q in hostile {
        let url = reqwest::Url::parse_with_params(&format!("{}/api/articles", app.base), &[("q", q)]).unwrap();
        let response = app.client.get(url).send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_else(|e| panic!("{q:?}: not JSON: {e}"));
        match status {
            StatusCode::OK => assert!(body["articles"].is_array(), "{q:?}: {body}"),
            // `q`, or the whole query string for what no query string may hold (NUL).
            StatusCode::UNPROCESSABLE_ENTITY => {
                assert!(body["errors"]["q"].is_array() || body["errors"]["query"].is_array(), "{q:?}: {body}")
            }
            other => panic!("{q:?} answered {other}: {body}"),
        }
    }
    // Operators are words: the star is found through `NEAR(`, `^`, `*`, and a column filter
    // (`quotes:star` is the two words, both in the article).
    for q in ["NEAR(star", "^star", "quotes:star", "star*"] {
        let url = reqwest::Url::parse_with_params(&format!("{}/api/articles", app.base), &[("q", q)]).unwrap();
        let body: Value = app.client.get(url).send().await.unwrap().json().await.unwrap();
        assert_eq!(body["articlesCount"], 1, "{q}: {body}");
    }
    // The bounds and the refusals say what is wrong with `q`.
    let (status, body) = app.get(&format!("/api/articles?q={long}"), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_messages(&body, "q"), ["must be at most 200 characters"]);
    let (status, body) = app.get("/api/articles?q=-star", None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_messages(&body, "q")[0].contains("excluded"), "{body}");
}

async fn bodies_and_comments_come_back_as_safe_html(app: TestApp) {
    let jake = app.register("jake").await;
    let body =
        "# Title\n\n| a | b |\n|---|---|\n| 1 | ~~2~~ |\n\n[x](javascript:alert(1)) <img src=x onerror=alert(1)>";
    let created = publish(&app, &jake, "Html", "d", body, &[]).await;
    let html = created["bodyHtml"].as_str().expect("bodyHtml beside body");
    assert_eq!(created["body"], body);
    assert!(html.contains("<h1>Title</h1>") && html.contains("<td><del>2</del></td>"), "{html}");
    assert!(!html.contains("javascript") && !html.contains("onerror"), "{html}");
    let slug = created["slug"].as_str().unwrap();
    let (_, read) = app.get(&format!("/api/articles/{slug}"), None).await;
    assert_eq!(read["article"]["bodyHtml"], created["bodyHtml"]);
    let (_, updated) =
        app.put(&format!("/api/articles/{slug}"), Some(&jake), json!({"article": {"body": "*new*"}})).await;
    assert_eq!(updated["article"]["bodyHtml"], "<p><em>new</em></p>\n");
    let (status, comment) = app
        .post(
            &format!("/api/articles/{slug}/comments"),
            Some(&jake),
            json!({"comment": {"body": "**hi** <script>x</script>"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{comment}");
    assert_eq!(comment["comment"]["bodyHtml"], "<p><strong>hi</strong> </p>\n");
    let (_, comments) = app.get(&format!("/api/articles/{slug}/comments"), None).await;
    assert_eq!(comments["comments"][0]["bodyHtml"], "<p><strong>hi</strong> </p>\n");
}

/// Runs `feedparser` and a strict XML parser on `document`; yields what feedparser read:
/// `{"bozo": .., "version": .., "titles": [..], "links": [..], "content": [..]}`.
fn parse_feed(document: &str) -> Value {
    let script = r#"
import json, sys, xml.etree.ElementTree as ET
import feedparser
data = sys.stdin.buffer.read()
ET.fromstring(data)  # raises on anything not well-formed
feed = feedparser.parse(data)
entries = feed.entries
print(json.dumps({
    "bozo": bool(feed.bozo), "error": str(feed.get("bozo_exception", "")), "version": feed.version,
    "titles": [e.title for e in entries], "links": [e.link for e in entries],
    "content": [(e.get("content") or [{"value": e.get("summary", "")}])[0]["value"] for e in entries],
}))
"#;
    let mut child = Command::new(crate::common::smtp::python())
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(document.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the feed does not parse: {}\n{document}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn fetch(app: &TestApp, path: &str, headers: &[(reqwest::header::HeaderName, String)]) -> reqwest::Response {
    let mut request = app.client.get(format!("{}{path}", app.base));
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send().await.unwrap()
}

async fn feeds_are_valid_rss_and_atom_and_answer_304_until_a_change(app: TestApp) {
    let jake = app.register("jake").await;
    let anna = app.register("anna").await;
    // Markup and entities in every field a feed shows (characters XML forbids never get this
    // far: the API refuses control characters; `feeds::xml::text` drops them all the same).
    publish(&app, &jake, "Ampersands & <angles> \"quoted\"", "d & <d>", "**bold** <script>x</script> & ]]>", &["x&y"])
        .await;
    publish(&app, &anna, "Anna's post", "d", "[link](https://example.com)", &["rust"]).await;

    for format in ["rss", "atom"] {
        let response = fetch(&app, &format!("/api/feeds/{format}"), &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with(&format!("application/{format}+xml")), "{content_type}");
        let document = response.text().await.unwrap();
        let feed = parse_feed(&document);
        assert_eq!(feed["bozo"], false, "{format}: {feed}\n{document}");
        assert!(feed["version"].as_str().unwrap().starts_with(format), "{feed}");
        assert_eq!(feed["titles"], json!(["Anna's post", "Ampersands & <angles> \"quoted\""]), "{format}");
        let content = feed["content"][0].as_str().unwrap();
        assert!(content.contains(r#"rel="nofollow ugc noopener""#), "{format}: the stored HTML: {content}");
        let content = feed["content"][1].as_str().unwrap();
        assert!(content.contains("<strong>bold</strong>") && !content.contains("<script"), "{format}: {content}");
        assert!(feed["links"][0].as_str().unwrap().contains("/article/anna-s-post"), "{feed}");

        let tagged =
            parse_feed(&fetch(&app, &format!("/api/feeds/tag/rust/{format}"), &[]).await.text().await.unwrap());
        assert_eq!(tagged["titles"], json!(["Anna's post"]));
        let tagged = parse_feed(&fetch(&app, &format!("/api/feeds/tag/x&y/{format}"), &[]).await.text().await.unwrap());
        assert_eq!(tagged["titles"].as_array().unwrap().len(), 1, "{tagged}");
        let by_jake =
            parse_feed(&fetch(&app, &format!("/api/feeds/author/jake/{format}"), &[]).await.text().await.unwrap());
        assert_eq!(by_jake["titles"].as_array().unwrap().len(), 1);
        assert_eq!(by_jake["bozo"], false);
    }
    assert_eq!(fetch(&app, "/api/feeds/json", &[]).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(fetch(&app, "/api/feeds/author/nobody/rss", &[]).await.status(), StatusCode::NOT_FOUND);

    // Conditional: the ETag or the date answers 304, until an article of the feed changes.
    let first = fetch(&app, "/api/feeds/atom", &[]).await;
    let etag = first.headers()[ETAG].to_str().unwrap().to_owned();
    let modified = first.headers()[LAST_MODIFIED].to_str().unwrap().to_owned();
    let again = fetch(&app, "/api/feeds/atom", &[(IF_NONE_MATCH, etag.clone())]).await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.text().await.unwrap().is_empty());
    assert_eq!(
        fetch(&app, "/api/feeds/atom", &[(IF_MODIFIED_SINCE, modified.clone())]).await.status(),
        StatusCode::NOT_MODIFIED
    );
    assert_eq!(
        fetch(&app, "/api/feeds/rss", &[(IF_NONE_MATCH, etag.clone())]).await.status(),
        StatusCode::OK,
        "per format"
    );
    // Another author's feed did not change with anna's edit below; the whole site's did.
    let jakes = fetch(&app, "/api/feeds/author/jake/atom", &[]).await.headers()[ETAG].to_str().unwrap().to_owned();
    let (status, _) = app.put("/api/articles/anna-s-post", Some(&anna), json!({"article": {"body": "edited"}})).await;
    assert_eq!(status, StatusCode::OK);
    let changed = fetch(&app, "/api/feeds/atom", &[(IF_NONE_MATCH, etag.clone())]).await;
    assert_eq!(changed.status(), StatusCode::OK);
    assert_ne!(changed.headers()[ETAG].to_str().unwrap(), etag);
    assert!(changed.text().await.unwrap().contains("<p>edited</p>".replace('<', "&lt;").replace('>', "&gt;").as_str()));
    assert_eq!(
        fetch(&app, "/api/feeds/author/jake/atom", &[(IF_NONE_MATCH, jakes)]).await.status(),
        StatusCode::NOT_MODIFIED
    );
}

/// Payloads that, if any survived into a feed, would run in a reader's page and set its title.
const READER_ATTACKS: &[&str] = &[
    "<img src=x onerror=\"document.title='PWNED'\">",
    "<svg onload=\"document.title='PWNED'\"></svg>",
    "<details open ontoggle=\"document.title='PWNED'\">x</details>",
    "<iframe srcdoc=\"<script>parent.document.title='PWNED'</script>\"></iframe>",
    "<script>document.title='PWNED'</script>",
    "<style>@import 'javascript:document.title=\"PWNED\"'</style>",
    "<math><mtext><table><mglyph><style><img src=x onerror=\"document.title='PWNED'\"></style></mglyph></table></mtext></math>",
    "![x](x\" onerror=\"document.title='PWNED')",
];

/// A feed reader's view: a page that parses the Atom document and puts each entry's HTML into
/// the page as readers do (`innerHTML`), then says how many it showed in its title. An entry that
/// ran script would have set the title to `PWNED` instead.
fn reader_page(atom: &str) -> String {
    let xml = serde_json::to_string(atom).unwrap().replace("</", "<\\/");
    format!(
        "<!doctype html><html><head><title>reading</title></head><body><script>\n\
         const doc = new DOMParser().parseFromString({xml}, 'application/xml');\n\
         const entries = [...doc.getElementsByTagName('content')];\n\
         for (const content of entries) {{ const div = document.createElement('div'); div.className = 'entry';\n\
           div.innerHTML = content.textContent; document.body.append(div); }}\n\
         setTimeout(() => {{ if (document.title !== 'PWNED') document.title = 'read ' + entries.length; }}, 500);\n\
         </script></body></html>"
    )
}

/// Loads `page` in headless Chromium (`openapi::headless`) and returns the DOM it ended with.
async fn rendered(page: String) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reader.html");
    std::fs::write(&path, page).unwrap();
    let url = format!("file://{}", path.display());
    let out = tokio::task::spawn_blocking(move || crate::openapi::headless(&url, &["--dump-dom"])).await.unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The attack through the feed: a logged-in author publishes bodies made to run script in a
/// feed reader; a reader's page (real Chromium) shows every entry and runs none of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_readers_page_runs_no_script_from_articles() {
    let app = TestApp::sqlite().await;
    let mallory = app.register("mallory").await;
    for (i, attack) in READER_ATTACKS.iter().enumerate() {
        publish(&app, &mallory, &format!("Attack {i}"), "d", attack, &[]).await;
    }
    let atom = fetch(&app, "/api/feeds/atom", &[]).await.text().await.unwrap();
    let dom = rendered(reader_page(&atom)).await;
    assert!(dom.contains(&format!("<title>read {}</title>", READER_ATTACKS.len())), "{dom}");
    assert_eq!(dom.matches("class=\"entry\"").count(), READER_ATTACKS.len(), "{dom}");

    // The page would have seen an attack that got through: the same page on a document whose
    // content is one payload unsanitized ends PWNED.
    let raw =
        atom.replacen("<content type=\"html\">", &format!("<content type=\"html\">{}", xml_text(READER_ATTACKS[0])), 1);
    assert!(
        rendered(reader_page(&raw)).await.contains("<title>PWNED</title>"),
        "the reader page must catch a live payload"
    );
}

fn xml_text(raw: &str) -> String {
    raw.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The slugs `q` finds, in order.
async fn found(app: &TestApp, q: &str) -> Vec<Value> {
    let (status, body) = app.get(&format!("/api/articles?q={q}&limit=50"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["articles"].as_array().unwrap().iter().map(|a| a["slug"].clone()).collect()
}

/// SQLite's search index in many segments (a live site's: one per commit) is merged into one or
/// two by the server's hourly upkeep, and searches find the same before and after; an index in
/// few segments is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_index_in_many_segments_is_merged_and_finds_the_same() {
    let app = TestApp::sqlite().await;
    conduit_store_sqlite::testing::stop_search_automerge(app.dir()).await;
    let token = app.register("anna").await;
    for i in 0..12 {
        publish(&app, &token, &format!("Rust note {i}"), "d", &format!("async body {i}"), &[]).await;
    }
    let before = found(&app, "rust%20async").await;
    assert_eq!(before.len(), 12);
    let merged = merge_if_due(app.store.as_ref(), Duration::ZERO).await.unwrap().expect("SQLite's index has upkeep");
    assert!(merged.before >= MAX_SEGMENTS && merged.after <= 2 && merged.steps >= 1, "{merged:?}");
    assert_eq!(found(&app, "rust%20async").await, before);
    assert_eq!(found(&app, "%22note%203%22").await.len(), 1, "a phrase still reads positions right");
    let again = merge_if_due(app.store.as_ref(), Duration::ZERO).await.unwrap().unwrap();
    assert_eq!(again.steps, 0, "a merged index is left alone: {again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_search_index_needs_no_merging() {
    let app = TestApp::postgres().await;
    assert_eq!(merge_if_due(app.store.as_ref(), Duration::ZERO).await.unwrap(), None);
}
