//! The generated OpenAPI document against the official spec, and the docs page in a real
//! headless Chromium (Debian's `chromium` package; scripts/test installs it).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use crate::common::TestApp;
use reqwest::StatusCode;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// (path, method) pairs of the official spec. Its layout is fixed (two-space indents: paths at
/// two, methods at four), so reading those lines is enough and needs no YAML parser.
fn spec_operations() -> BTreeSet<(String, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/realworld/openapi.yml");
    let text = std::fs::read_to_string(&root).unwrap_or_else(|e| panic!("read {}: {e}", root.display()));
    let mut operations = BTreeSet::new();
    let mut in_paths = false;
    let mut path = None;
    for line in text.lines() {
        if line == "paths:" {
            in_paths = true;
            continue;
        }
        if in_paths && !line.starts_with(' ') && !line.is_empty() {
            break;
        }
        if let Some(p) = line.strip_prefix("  /").and_then(|p| p.strip_suffix(':')) {
            path = Some(format!("/{p}"));
        } else if let Some(method) = line.strip_prefix("    ").and_then(|m| m.strip_suffix(':'))
            && METHODS.contains(&method)
        {
            operations.insert((path.clone().expect("method before path"), method.to_owned()));
        }
    }
    operations
}

#[tokio::test]
async fn generated_document_covers_every_operation_of_the_spec() {
    let app = TestApp::sqlite().await;
    let (status, doc) = app.get("/api/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["servers"][0]["url"], "/api");
    let mut ours = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                ours.insert((path.clone(), method.to_owned()));
                let responses = operation["responses"].as_object().unwrap();
                assert!(responses.keys().any(|s| s.starts_with('2')), "{method} {path} documents no success");
                assert!(responses.contains_key("422") && responses.contains_key("503"), "{method} {path}");
            }
        }
    }
    let spec = spec_operations();
    assert_eq!(spec.len(), 19, "the official spec has 19 operations: {spec:?}");
    let missing: Vec<_> = spec.difference(&ours).collect();
    assert!(missing.is_empty(), "operations of the spec missing from /api/openapi.json: {missing:?}");
    // Every error response points at the one error schema.
    let error = &doc["components"]["schemas"]["GenericErrorModel"];
    assert_eq!(error["properties"]["errors"]["type"], "object");
    assert!(doc["components"]["securitySchemes"]["Token"].is_object());
}

#[tokio::test]
async fn docs_page_and_its_assets_are_served_by_the_binary() {
    let app = TestApp::sqlite().await;
    let page = app.client.get(format!("{}/docs/", app.base)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(!html.contains("https://") && !html.contains("http://"), "the page must not load anything from a CDN");
    let assets: Vec<&str> = html.split(['"', '\'']).filter(|s| s.ends_with(".js") || s.ends_with(".css")).collect();
    assert!(assets.len() >= 3, "{assets:?}");
    for asset in assets {
        let url = format!("{}/docs/{}", app.base, asset.trim_start_matches("./"));
        let response = app.client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("cdn.jsdelivr") && !body.contains("unpkg.com"), "{url} refers to a CDN");
    }
}

pub(crate) fn chromium() -> String {
    for candidate in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new("which").arg(candidate).output().is_ok_and(|o| o.status.success()) {
            return candidate.to_owned();
        }
    }
    panic!("no headless Chromium found: apt-get install chromium chromium-driver (scripts/test does)");
}

/// Runs headless Chromium on `url` with `extra` arguments and a throwaway profile.
pub(crate) fn headless(url: &str, extra: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
        ])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--window-size=1280,2400", "--virtual-time-budget=15000"])
        .args(extra)
        .arg(url)
        .output()
        .expect("run chromium")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_render_every_operation_in_headless_chromium() {
    let app = TestApp::sqlite().await;
    let url = format!("{}/docs/", app.base);
    let dom = tokio::task::spawn_blocking({
        let url = url.clone();
        move || headless(&url, &["--dump-dom"])
    })
    .await
    .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    let rendered = dom.matches("opblock-summary-path").count();
    assert!(rendered >= 19, "expected 19 rendered operations, found {rendered}:\n{}", &dom[..dom.len().min(2000)]);
    for path in ["/users/login", "/articles/{slug}/comments/{id}", "/articles/{slug}/favorite", "/tags"] {
        assert!(dom.contains(&format!("data-path=\"{path}\"")), "{path} not rendered");
    }

    // Taken into a fresh folder, so only this run's screenshot can pass; then copied to
    // target/ for a person to look at.
    let folder = tempfile::tempdir().unwrap();
    let shot = folder.path().join("docs-screenshot.png");
    let arg = format!("--screenshot={}", shot.display());
    let out = tokio::task::spawn_blocking(move || headless(&url, &[arg.as_str()])).await.unwrap();
    assert!(shot.exists(), "no screenshot: {}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "screenshot suspiciously small");
    let kept = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/docs-screenshot.png");
    std::fs::copy(&shot, &kept).unwrap_or_else(|e| panic!("copy the screenshot to {}: {e}", kept.display()));
}
