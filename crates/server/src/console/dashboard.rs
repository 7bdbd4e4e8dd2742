//! `/admin`: how the site and this instance are doing, at a glance.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use conduit_store::{ArticleQuery, Paging};

use crate::console::Refusal;
use crate::console::session::Staff;
use crate::console::view::{Nav, PAGE, render, when};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "console/dashboard.html")]
struct Dashboard {
    nav: Nav,
    articles: i64,
    users: i64,
    requests: u64,
    server_errors: u64,
    mail: Vec<(&'static str, u64)>,
    backups_scheduled: bool,
    last_backup: Option<String>,
    last_verified: Option<String>,
    backup_failure: Option<String>,
    open_targets: usize,
    charts: [Chart; 2],
    /// The outbox now: messages queued and dead (each counted up to [`PAGE`] × 20).
    mail_queued: i64,
    mail_dead: i64,
    mail_most: i64,
}

/// Days shown by the dashboard's charts.
const DAYS: i64 = 30;
/// The charts' drawing, in SVG units: a bar per day, and room under the bars for the dates.
const WIDTH: i64 = 600;
const BARS_HEIGHT: i64 = 120;

/// One day's bar.
pub struct Bar {
    pub day: String,
    pub n: i64,
    pub x: i64,
    pub y: i64,
    pub height: i64,
}

/// A bar chart of a per-day counter over the last [`DAYS`] days, drawn on the server (an SVG in
/// the page: no script).
pub struct Chart {
    pub id: &'static str,
    pub title: &'static str,
    pub bars: Vec<Bar>,
    pub total: i64,
    pub max: i64,
    pub first: String,
    pub last: String,
}

impl Chart {
    fn of(id: &'static str, title: &'static str, days: &[String], counted: &[(String, i64)]) -> Self {
        let per_day: Vec<i64> =
            days.iter().map(|day| counted.iter().find(|(d, _)| d == day).map_or(0, |(_, n)| *n)).collect();
        let max = per_day.iter().copied().max().unwrap_or(0);
        let slot = WIDTH / DAYS;
        let bars = days
            .iter()
            .zip(&per_day)
            .enumerate()
            .map(|(i, (day, &n))| {
                let height = if max == 0 { 0 } else { (n * BARS_HEIGHT + max - 1) / max };
                Bar { day: day.clone(), n, x: i as i64 * slot + 2, y: BARS_HEIGHT - height, height }
            })
            .collect();
        Chart {
            id,
            title,
            bars,
            total: per_day.iter().sum(),
            max,
            first: days.first().cloned().unwrap_or_default(),
            last: days.last().cloned().unwrap_or_default(),
        }
    }
}

/// The totals are the maintained counts the listings use (no rows are counted here).
pub(super) async fn dashboard(State(state): State<AppState>, staff: Staff) -> Result<Response, Refusal> {
    let listing = ArticleQuery { page: Paging { limit: 1, ..Paging::default() }, ..ArticleQuery::default() };
    let articles = state.store.list_articles(&listing, None).await?.total;
    let users = state.store.list_users(None, Paging { limit: 1, ..Paging::default() }).await?.total;
    let (requests, server_errors) = state.metrics.request_totals();
    let backups = state.backups.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let describe =
        |f: &crate::backup::schedule::Finished| format!("{} ({} bytes, {:.1} s)", when(f.at), f.bytes, f.seconds);
    let open_targets = state.store.report_queue(None, PAGE).await?.len();
    let today = state.clock.now().date_naive();
    let days: Vec<String> =
        (0..DAYS).rev().map(|back| (today - chrono::Days::new(back as u64)).format("%Y-%m-%d").to_string()).collect();
    let signups = state.store.per_day("signups_day", &days[0]).await?;
    let posts = state.store.per_day("posts_day", &days[0]).await?;
    let mail_most = PAGE * 20;
    let (mail_queued, mail_dead) = state.store.mail_waiting(mail_most).await?;
    let charts = [
        Chart::of("signups", "Sign-ups per day", &days, &signups),
        Chart::of("posts", "Articles published per day", &days, &posts),
    ];
    render(&Dashboard {
        nav: Nav::of(&staff, "dashboard"),
        articles,
        users,
        requests,
        server_errors,
        mail: state.metrics.mail_totals(),
        backups_scheduled: state.backups_scheduled,
        last_backup: backups.last_backup.as_ref().map(describe),
        last_verified: backups.last_verified.as_ref().map(describe),
        backup_failure: backups.failure.map(|f| format!("{} failed at {}", f.what, when(f.at))),
        open_targets,
        charts,
        mail_queued,
        mail_dead,
        mail_most,
    })
}
