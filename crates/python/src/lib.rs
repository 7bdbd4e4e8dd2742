//! `conduit` for Python: the server's own password, token and slug rules, so a Python service
//! and Conduit agree on who a user is. Every function calls `conduit-domain`, the crate the
//! server runs; nothing here re-implements a rule.

use conduit_domain::slug as slugs;
use conduit_domain::token::{ClaimMap, TokenError, TokenKeys};
use conduit_domain::{password, validation};
use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

create_exception!(
    conduit,
    InvalidToken,
    PyValueError,
    "The token is malformed, badly signed, expired, or does not name a user."
);

fn value_error(message: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(message.to_string())
}

fn keys(secret: &str) -> PyResult<TokenKeys> {
    if secret.is_empty() {
        return Err(value_error("secret must not be empty"));
    }
    // The lifetime only matters when minting through `TokenKeys::mint`; `mint_claims` takes its own.
    Ok(TokenKeys::new(secret.as_bytes(), chrono::Duration::hours(1)))
}

/// Hash a password for storage, exactly as the server does on registration.
///
/// Returns an Argon2id PHC string (``$argon2id$v=19$m=19456,t=2,p=1$...``) with a fresh random
/// salt. The password must satisfy the server's rules (8 to 256 characters), else ValueError.
/// The hashing (~20 ms of CPU) runs with the GIL released.
#[pyfunction]
fn hash_password(py: Python<'_>, password: &str) -> PyResult<String> {
    let password = validation::new_password(password).map_err(|m| value_error(format!("password {m}")))?;
    py.detach(move || password::hash(&password)).map_err(value_error)
}

/// Check a password against a stored PHC string.
///
/// Returns True on a match and False otherwise. Accepts any Argon2 PHC string, including those
/// made by other libraries such as argon2-cffi (their parameters are read from the string).
/// Raises ValueError when ``phc`` is not an Argon2 PHC string. Runs with the GIL released.
#[pyfunction]
fn verify_password(py: Python<'_>, password: &str, phc: &str) -> PyResult<bool> {
    let (password, phc) = (password.to_owned(), phc.to_owned());
    py.detach(move || password::check(&password, &phc)).map_err(value_error)
}

/// Check many (password, phc) pairs in parallel with the GIL released, on ``threads`` threads
/// (default: one per core).
///
/// Returns one bool per pair, in order. Raises ValueError naming the first pair whose hash is
/// not an Argon2 PHC string, or for ``threads`` < 1.
#[pyfunction]
#[pyo3(signature = (pairs, threads = None))]
fn verify_passwords(py: Python<'_>, pairs: Vec<(String, String)>, threads: Option<usize>) -> PyResult<Vec<bool>> {
    if threads == Some(0) {
        return Err(value_error("threads must be at least 1"));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let results = py.detach(move || {
        let threads = threads.unwrap_or(cores).min(pairs.len()).max(1);
        let chunk = pairs.len().div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            let workers: Vec<_> = pairs
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || part.iter().map(|(pw, phc)| password::check(pw, phc)).collect::<Vec<_>>())
                })
                .collect();
            workers.into_iter().flat_map(|w| w.join().unwrap_or_default()).collect::<Vec<_>>()
        })
    });
    results.into_iter().enumerate().map(|(i, r)| r.map_err(|e| value_error(format!("pair {i}: {e}")))).collect()
}

/// Verify a token's signature and expiry the way the server does (HS256, unexpired, ``sub`` a
/// user id) and return all of its claims as a dict, e.g. ``{"sub": "1", "iat": ..., "exp": ...}``.
///
/// This checks the token alone, offline. It cannot know what the server's database knows: a
/// token revoked by a password change, a logout of its session, or a deactivation still passes
/// here until it expires. Where that matters, ask the server: ``check_token_with_server``.
///
/// Raises InvalidToken (a ValueError) for a bad signature, an expired token, or garbage.
#[pyfunction]
fn verify_token(py: Python<'_>, token: &str, secret: &str) -> PyResult<Py<PyAny>> {
    let claims = keys(secret)?.check_all(token).map_err(|e| match e {
        TokenError::Expired => InvalidToken::new_err("token has expired"),
        _ => InvalidToken::new_err("token is invalid: malformed, or signed with another secret"),
    })?;
    let json = serde_json::to_string(&claims).map_err(value_error)?;
    Ok(py.import("json")?.call_method1("loads", (json,))?.unbind())
}

/// Ask the Conduit server at ``base_url`` (``http://host:port``) whether ``token`` is valid right
/// now, revocation included, and return the user it belongs to as a dict (``username``,
/// ``email``, ...). One ``GET /api/user`` over HTTP, with ``timeout`` seconds to answer.
///
/// Raises InvalidToken when the server refuses the token (401: malformed, expired, revoked by a
/// password change or a logout, or its user deactivated); OSError when it cannot be reached.
#[pyfunction]
#[pyo3(signature = (token, base_url, timeout = 5.0))]
fn check_token_with_server(py: Python<'_>, token: &str, base_url: &str, timeout: f64) -> PyResult<Py<PyAny>> {
    let urllib = py.import("urllib.request")?;
    let url = format!("{}/api/user", base_url.trim_end_matches('/'));
    let headers = pyo3::types::PyDict::new(py);
    headers.set_item("Authorization", format!("Token {token}"))?;
    headers.set_item("Accept", "application/json")?;
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("headers", headers)?;
    let request = urllib.getattr("Request")?.call((url,), Some(&kwargs))?;
    let options = pyo3::types::PyDict::new(py);
    options.set_item("timeout", timeout)?;
    let response = match urllib.call_method("urlopen", (request,), Some(&options)) {
        Ok(response) => response,
        Err(e) => {
            let refused = e.value(py).getattr("code").ok().and_then(|code| code.extract::<u16>().ok()) == Some(401);
            if refused {
                let reason = e.value(py).call_method0("read").ok().and_then(|b| b.extract::<Vec<u8>>().ok());
                let reason = reason.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
                return Err(InvalidToken::new_err(format!("the server refused the token: {reason}")));
            }
            return Err(e);
        }
    };
    let body = response.call_method0("read")?;
    let parsed = py.import("json")?.call_method1("loads", (body,))?;
    Ok(parsed.get_item("user")?.unbind())
}

/// Make a token the server accepts for the user named by ``claims["sub"]`` (their id, an int
/// or a string of digits), valid for ``ttl_seconds``.
///
/// ``claims["ver"]`` must be the user's current token version (0 until their first password
/// change or deactivation; ``verify_token`` of any current token of theirs shows it), else the
/// server answers 401 "has been revoked".
///
/// ``iat`` and ``exp`` are set here; other claims are kept. The server only accepts the token
/// if that user exists. Raises ValueError for claims without a valid ``sub``, claims that are
/// not JSON-serializable, an empty secret, or a non-positive ttl.
#[pyfunction]
#[pyo3(signature = (claims, secret, ttl_seconds = 3600))]
fn mint_token(py: Python<'_>, claims: &Bound<'_, PyAny>, secret: &str, ttl_seconds: i64) -> PyResult<String> {
    if ttl_seconds <= 0 {
        return Err(value_error("ttl_seconds must be positive"));
    }
    let json: String = py
        .import("json")?
        .call_method1("dumps", (claims,))
        .map_err(|e| value_error(format!("claims must be a JSON-serializable dict: {e}")))?
        .extract()?;
    let claims: ClaimMap = serde_json::from_str(&json).map_err(|_| value_error("claims must be a dict"))?;
    let ttl = chrono::Duration::try_seconds(ttl_seconds).ok_or_else(|| value_error("ttl_seconds is too large"))?;
    keys(secret)?.mint_claims(claims, chrono::Utc::now(), ttl).map_err(value_error)
}

/// The slug the server gives an article with this title, e.g. "How to Train" -> "how-to-train".
///
/// When that slug is already taken the server appends "-" and six random characters from
/// ``[a-z0-9]`` (``how-to-train-x7k2qp``); ``slug_fits(slug, title)`` tells whether a slug is
/// one of those for the title.
#[pyfunction]
fn slugify(title: &str) -> String {
    slugs::slugify(title).as_str().to_owned()
}

/// Whether ``slug`` is the server's slug for ``title``, with or without a uniqueness suffix.
#[pyfunction]
fn slug_fits(slug: &str, title: &str) -> bool {
    slugs::fits(slug, title)
}

/// Conduit's password, token and slug rules, from the Rust code the server runs.
#[pymodule]
fn conduit(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("InvalidToken", m.py().get_type::<InvalidToken>())?;
    m.add_function(wrap_pyfunction!(hash_password, m)?)?;
    m.add_function(wrap_pyfunction!(verify_password, m)?)?;
    m.add_function(wrap_pyfunction!(verify_passwords, m)?)?;
    m.add_function(wrap_pyfunction!(verify_token, m)?)?;
    m.add_function(wrap_pyfunction!(mint_token, m)?)?;
    m.add_function(wrap_pyfunction!(check_token_with_server, m)?)?;
    m.add_function(wrap_pyfunction!(slugify, m)?)?;
    m.add_function(wrap_pyfunction!(slug_fits, m)?)?;
    Ok(())
}
