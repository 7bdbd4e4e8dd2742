//! Traces and logs of a real `conduit` process: spans arrive at a real OTLP/HTTP receiver run
//! by this test (it decodes the protobuf the exporter sends), and every log line of a request
//! carries that request's id.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

type Received = Arc<Mutex<Vec<Span>>>;

/// An OTLP/HTTP trace receiver on a free port: `POST /v1/traces` with protobuf bodies.
async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let sink = sink.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("valid OTLP protobuf");
                for resource in request.resource_spans {
                    for scope in resource.scope_spans {
                        sink.lock().unwrap().extend(scope.spans);
                    }
                }
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (address, received)
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| match a.value.as_ref()?.value.as_ref()? {
        AnyValue::StringValue(s) => Some(s.clone()),
        AnyValue::IntValue(i) => Some(i.to_string()),
        other => Some(format!("{other:?}")),
    })
}

/// A `conduit` process with JSON logs, its stdout read line by line, and the lines it logged
/// until it said where it listens.
struct Logged {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    base: String,
    logs: Vec<String>,
}

fn start_logged(dir: &std::path::Path, env: &[(&str, &str)]) -> Logged {
    let mut child = Command::new(env!("CARGO_BIN_EXE_conduit"))
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CONDUIT_LOG_FORMAT", "json")
        .envs(env.iter().copied())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut logs = Vec::new();
    let base = loop {
        let line = lines.recv_timeout(Duration::from_secs(30)).expect("conduit started");
        let log: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        logs.push(line);
        if log["message"] == "conduit is listening" {
            break log["address"].as_str().unwrap().to_owned();
        }
    };
    Logged { child, lines, base, logs }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_receiver_and_logs_carry_request_ids() {
    let (endpoint, received) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    // The default filter, plus each SQL statement logged at debug: lines inside the request.
    let otlp = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("RUST_LOG", "info,sqlx=warn,sqlx::query=debug,tower_http=warn"),
    ];
    let Logged { mut child, lines: lines_rx, base, mut logs } = start_logged(dir.path(), &otlp);

    let client = reqwest::Client::new();
    let registered = client
        .post(format!("{base}/api/users"))
        .header("x-request-id", "req-register-1")
        .json(
            &serde_json::json!({"user": {"username": "jake", "email": "jake@example.com", "password": "password123"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let missing = client.get(format!("{base}/api/articles/no-such-slug")).send().await.unwrap();
    assert_eq!(missing.status(), 404);

    // SIGTERM flushes the exporter before exit.
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "conduit did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    logs.extend(lines_rx.try_iter());

    let spans = received.lock().unwrap().clone();
    let named = |name: &str| spans.iter().find(|s| s.name == name).cloned();
    let register = named("POST /api/users").unwrap_or_else(|| {
        panic!("no POST /api/users span in {:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>())
    });
    assert_eq!(attribute(&register, "http.route").as_deref(), Some("/api/users"));
    assert_eq!(attribute(&register, "http.response.status_code").as_deref(), Some("201"));
    assert_eq!(attribute(&register, "request_id").as_deref(), Some("req-register-1"));
    let show = named("GET /api/articles/{slug}").expect("span named by route template");
    assert_eq!(attribute(&show, "http.response.status_code").as_deref(), Some("404"));
    assert_eq!(attribute(&show, "url.path").as_deref(), Some("/api/articles/no-such-slug"));
    // Store calls are child spans of their request.
    let create = named("store.create_user").expect("store span");
    assert_eq!(create.trace_id, register.trace_id);
    // Its ancestors (possibly through middleware spans) lead to the request span.
    let mut parent = create.parent_span_id.clone();
    while parent != register.span_id {
        parent = spans
            .iter()
            .find(|s| s.span_id == parent)
            .unwrap_or_else(|| panic!("store.create_user is not inside the request span"))
            .parent_span_id
            .clone();
    }
    assert_eq!(attribute(&create, "db.system").as_deref(), Some("sqlite"));
    assert!(spans.iter().any(|s| s.name == "store.article" && s.trace_id == show.trace_id));

    // Every log line emitted inside the registration request (its SQL statements, at least)
    // names its id (in its spans), and so does its access line.
    let request_lines: Vec<_> = logs
        .iter()
        .filter(|l| l.contains("\"http.route\":\"/api/users\"") && l.contains("\"http.request.method\":\"POST\""))
        .collect();
    assert!(!request_lines.is_empty(), "no log line inside the registration request in {logs:?}");
    for line in &request_lines {
        let line: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(line["spans"][0]["request_id"], "req-register-1", "{line}");
    }
    let access: Vec<serde_json::Value> = logs
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["message"] == "response" && l["route"] == "/api/users")
        .collect();
    assert_eq!(access.len(), 1, "one access line for the registration in {logs:?}");
    let line = &access[0];
    assert_eq!(
        (line["request_id"].as_str(), line["method"].as_str(), line["status"].as_u64(), line["path"].as_str()),
        (Some("req-register-1"), Some("POST"), Some(201), Some("/api/users"))
    );
    assert!(line["latency_us"].as_u64().is_some() && line["timestamp"].as_str().is_some(), "{line}");
}

/// Without trace export there is no span per request; a line logged inside a request still
/// names the request, first in `spans` (the JSON formatter adds it from the request's task).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_trace_export_lines_inside_a_request_still_name_it() {
    let dir = tempfile::tempdir().unwrap();
    let Logged { mut child, lines: lines_rx, base, .. } = start_logged(dir.path(), &[]);
    let client = reqwest::Client::new();
    let user =
        serde_json::json!({"user": {"username": "jake", "email": "jake@example.com", "password": "password123"}});
    assert_eq!(client.post(format!("{base}/api/users")).json(&user).send().await.unwrap().status(), 201);
    let login = client.post(format!("{base}/api/session")).json(&user).send().await.unwrap();
    assert_eq!(login.status(), 200);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    // A cookie-authenticated change from another site: refused, and a warning is logged inside
    // the request.
    let refused = client
        .put(format!("{base}/api/user"))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .header("x-request-id", "req-cross-site-1")
        .json(&serde_json::json!({"user": {"bio": "pwned"}}))
        .send()
        .await
        .unwrap();
    assert!(refused.status().is_client_error(), "{}", refused.status());
    let deadline = Instant::now() + Duration::from_secs(10);
    let warning = loop {
        let line = lines_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("the warning line");
        let log: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if log["level"] == "WARN" && log["message"].as_str().is_some_and(|m| m.contains("another origin")) {
            break log;
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let request = &warning["spans"][0];
    assert_eq!(
        (request["request_id"].as_str(), request["http.request.method"].as_str(), request["http.route"].as_str()),
        (Some("req-cross-site-1"), Some("PUT"), Some("/api/user")),
        "{warning}"
    );
    assert_eq!(request["url.path"], "/api/user");
}
