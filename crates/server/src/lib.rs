//! Conduit's HTTP service: the RealWorld API over any [`conduit_store::Store`].
//!
//! [`app`] builds the router from an [`AppState`]; [`serve`] runs it on a listener until a
//! shutdown signal. Tests use both directly, the binary goes through [`cli`].
//!
//! The modules import one way, from the top of this list down, never up (a test holds every
//! file to it): settings and the error type first, then the state every handler reaches, then
//! authentication, the HTTP plumbing around the handlers, the handlers, and what assembles them.
//!
//! | layer | modules |
//! |---|---|
//! | leaves | `config` (settings), `error`, `metrics`, `serve`, `log_writer`, `seed` (demo data) |
//! | connections and primitives | `db`, `telemetry`, `passwords`, `extract`, `mail`, then `redis` and `mailer`, then `ratelimit` |
//! | state | `state` |
//! | auth | `client_ip`, `login`, then `sessions`, then `auth` (the extractors) |
//! | HTTP plumbing | `layers` |
//! | handlers | `routes` (one file per resource) |
//! | assembly | `openapi`, then `app`, then `cli` |

pub mod app;
pub mod auth;
pub mod cli;
pub mod client_ip;
pub mod config;
pub mod db;
pub mod error;
pub mod extract;
pub mod layers;
pub mod log_writer;
pub mod login;
pub mod mail;
pub mod mailer;
pub mod metrics;
pub mod openapi;
pub mod passwords;
pub mod ratelimit;
pub mod redis;
pub mod request_context;
pub mod routes;
pub mod seed;
pub mod serve;
pub mod sessions;
pub mod state;
pub mod telemetry;

pub use app::{app, metrics_app};
pub use error::ApiError;
pub use serve::serve;
pub use state::AppState;

#[cfg(test)]
mod one_way {
    /// The modules, lowest first; a module may import only modules of earlier layers.
    const LAYERS: &[&[&str]] = &[
        &["config", "error", "metrics", "serve", "log_writer", "seed"],
        &["request_context"],
        &["db", "telemetry", "passwords", "extract", "mail"],
        &["redis", "mailer"],
        &["ratelimit"],
        &["state"],
        &["client_ip", "login"],
        &["sessions"],
        &["auth"],
        &["layers"],
        &["routes"],
        &["openapi"],
        &["app"],
        &["cli"],
    ];

    fn layer(module: &str) -> usize {
        // The crate root's re-exports, by the module they come from.
        let module = match module {
            "AppState" => "state",
            "ApiError" => "error",
            "metrics_app" => "app",
            other => other,
        };
        LAYERS.iter().position(|l| l.contains(&module)).unwrap_or_else(|| panic!("module {module} is in no layer"))
    }

    /// The crate modules a line of code names: `crate::x`, and each name of `crate::{x, y}`.
    fn named(line: &str) -> Vec<String> {
        let mut names = Vec::new();
        for (at, _) in line.match_indices("crate::") {
            let rest = &line[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                names.extend(group.split(',').map(|n| n.trim().split("::").next().unwrap_or("").to_owned()));
            } else {
                names.push(rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
            }
        }
        names.retain(|n| !n.is_empty() && n != "self");
        names
    }

    #[test]
    fn every_module_imports_only_modules_below_it() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files: Vec<(String, std::path::PathBuf)> = Vec::new();
        for entry in std::fs::read_dir(&src).unwrap().chain(std::fs::read_dir(src.join("routes")).unwrap()) {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
            let module = relative.split(['/', '.']).next().unwrap().to_owned();
            if path.extension().is_some_and(|e| e == "rs") && module != "lib" && module != "main" {
                files.push((module, path));
            }
        }
        assert!(files.len() > 20, "read the sources: {files:?}");
        let mut wrong = Vec::new();
        for (module, path) in &files {
            let own = layer(module);
            let text = std::fs::read_to_string(path).unwrap();
            for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for name in named(line) {
                    if name != *module && layer(&name) >= own {
                        wrong.push(format!("{} imports {name}", path.display()));
                    }
                }
            }
        }
        assert!(wrong.is_empty(), "imports that run up or sideways: {wrong:#?}");
    }
}
