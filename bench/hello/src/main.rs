//! The seed article's Axum example ("The Rust Backend Ecosystem in 2026", its first code
//! listing), unchanged but for the address: `bench/run.py` runs it beside Conduit and reports
//! every Conduit scenario as a fraction of this one's requests per second.
//!
//! `hello [IP:PORT]` (default `127.0.0.1:3000`; the seed binds `0.0.0.0:3000`).

use axum::{Json, Router, routing::get};
use serde::Serialize;

#[derive(Serialize)]
struct User {
    id: u64,
    name: String,
}

async fn get_user() -> Json<User> {
    Json(User { id: 1, name: "Alice".into() })
}

#[tokio::main]
async fn main() {
    let app = Router::new().route("/user", get(get_user));

    let bind = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&bind).await.unwrap();
    axum::serve(listener, app).await.unwrap();
}
