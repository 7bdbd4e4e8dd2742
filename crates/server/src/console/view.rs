//! What every console page shares: its header, dates as people read them, rendering, and the
//! small rules of forms (blank fields, where to go back to).

use askama::Template;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};

use crate::console::Refusal;
use crate::console::session::Staff;

/// Rows per page of every list.
pub const PAGE: i64 = 50;

/// What every page's header needs: who is logged in, the logout form's token, where we are.
pub struct Nav {
    pub username: String,
    pub role: &'static str,
    pub admin: bool,
    pub csrf: String,
    pub here: &'static str,
}

impl Nav {
    pub fn of(staff: &Staff, here: &'static str) -> Self {
        Nav {
            username: staff.user.username.clone(),
            role: staff.user.role.as_str(),
            admin: staff.is_admin(),
            csrf: staff.csrf.clone(),
            here,
        }
    }
}

pub fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub fn when_unix(at: i64) -> String {
    DateTime::from_timestamp(at, 0).map(when).unwrap_or_default()
}

pub fn when_millis(at: i64) -> String {
    DateTime::from_timestamp_millis(at).map(when).unwrap_or_default()
}

pub fn render(template: &impl Template) -> Result<Response, Refusal> {
    Ok(Html(template.render()?).into_response())
}

/// A form's text field, trimmed; `None` when blank.
pub fn some(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// A path segment, percent-encoded (a username or slug in a link or redirect).
pub fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Where a form sends the browser back to: a console page, never elsewhere.
pub fn back_to(back: Option<&str>) -> String {
    match back {
        Some(path) if path.starts_with("/admin") && !path.contains("//") && !path.contains('\\') => path.to_owned(),
        _ => "/admin".to_owned(),
    }
}

/// The next page's link when this one is full.
pub fn next_page(shown: usize, link: impl FnOnce() -> Option<String>) -> Option<String> {
    if shown as i64 == PAGE { link() } else { None }
}
