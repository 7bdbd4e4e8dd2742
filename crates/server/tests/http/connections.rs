//! Connection-level abuse against the real `conduit` process over raw TCP: slowloris clients
//! are cut off by the header-read timeout, and a thousand idle keep-alive connections do not
//! stop the service answering others.

use std::time::{Duration, Instant};

use crate::common::process::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn address(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

/// Sends one keep-alive `GET` on `stream` and reads the whole response; returns its status.
async fn get(stream: &mut TcpStream, path: &str) -> u16 {
    let request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let n = stream.read(&mut buffer).await.unwrap();
        assert!(n > 0, "connection closed mid-response: {:?}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&received);
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .expect("a content-length");
            if received.len() >= end + 4 + length {
                return text[9..12].parse().unwrap();
            }
        }
    }
}

/// Whether the server closed the connection (read gives EOF or a reset) within `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buffer = [0u8; 1024];
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        match tokio::time::timeout(deadline - Instant::now(), stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => return true,
            // A 408 or similar before closing is fine too; keep reading for the close.
            Ok(Ok(_)) => continue,
            Err(_elapsed) => return false,
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_clients_are_cut_off_by_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &[("CONDUIT_HEADER_TIMEOUT", "1")]);
    let address = address(&server);

    // Ten clients each send a request line, then one header byte every 200 ms: 60 bytes of
    // headers would take 12 s to arrive.
    let mut drips = Vec::new();
    for _ in 0..10 {
        let address = address.clone();
        drips.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(&address).await.unwrap();
            stream.write_all(b"GET /health/live HTTP/1.1\r\n").await.unwrap();
            let started = Instant::now();
            for byte in b"x-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n" {
                if stream.write_all(&[*byte]).await.is_err() {
                    return started.elapsed();
                }
                let mut probe = [0u8; 256];
                match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut probe)).await {
                    Ok(Ok(0) | Err(_)) => return started.elapsed(),
                    Ok(Ok(_)) => panic!("a response before the headers were complete"),
                    Err(_still_open) => {}
                }
            }
            panic!("the server waited {:?} for dripped headers", started.elapsed())
        }));
    }
    // Meanwhile an ordinary client is served.
    let mut ordinary = TcpStream::connect(&address).await.unwrap();
    assert_eq!(get(&mut ordinary, "/api/tags").await, 200);
    for drip in drips {
        let cut_after = drip.await.unwrap();
        assert!(cut_after < Duration::from_secs(5), "cut off only after {cut_after:?}");
    }

    // A client that sends nothing at all after connecting is dropped the same way.
    let mut silent = TcpStream::connect(&address).await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(5)).await, "a silent connection stayed open");

    // Prompt clients are untouched by the timeout, request after request.
    let mut prompt = TcpStream::connect(&address).await.unwrap();
    for _ in 0..3 {
        assert_eq!(get(&mut prompt, "/health/live").await, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_keep_alive_connections_do_not_block_others() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let address = address(&server);

    // Each idle connection has been used once, so it is a real keep-alive connection.
    let mut idle = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        assert_eq!(get(&mut stream, "/health/live").await, 200);
        idle.push(stream);
    }

    // New clients are served at once (the bound is for liveness, not speed).
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    for path in ["/api/tags", "/api/articles", "/health/ready"] {
        let response = client.get(format!("{}{path}", server.base)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let registered = client
        .post(format!("{}/api/users", server.base))
        .json(&serde_json::json!({"user": {"username": "awake", "email": "awake@example.com", "password": "password123"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);

    // And the idle connections themselves still work.
    for stream in idle.iter_mut().step_by(100) {
        assert_eq!(get(stream, "/api/tags").await, 200);
    }
}
