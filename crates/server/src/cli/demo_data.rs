//! `conduit seed`: realistic demo data, in bulk, through the store. Deterministic from its seed
//! number: the same arguments give the same users, follows, articles, tags, favorites and
//! comments. Every demo user's password is [`PASSWORD`], so a developer can log in as any.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use chrono::{Duration, Utc};
use conduit_domain::model::UserId;
use conduit_domain::{Email, Slug, Username};
use conduit_store::{NewArticle, NewUser, SeedArticle, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What every demo user's password is.
pub const PASSWORD: &str = "password123";

/// How much to make.
#[derive(Debug, Clone)]
pub struct Plan {
    pub articles: usize,
    /// Default: one per ten articles, at least ten.
    pub users: Option<usize>,
    pub seed: u64,
    /// Usernames are `<prefix><n>`, emails `<prefix><n>@example.com`.
    pub prefix: String,
}

/// The proportions: each user follows up to 10 others; an article has 1-3 of 50 tags (the first
/// ones far more often), 0-4 favorites and 0-2 comments.
const FOLLOWS_PER_USER: usize = 10;
const TAGS: usize = 50;
const USERS_PER_BATCH: usize = 1000;
const FOLLOWS_PER_BATCH: usize = 10_000;
/// Small on purpose: every article adds to the same few count rows (all articles, the popular
/// tags, the tags' version), and PostgreSQL keeps each update of a row as a new version that a
/// transaction still open cannot prune, so the next update walks all of them: 500 articles a
/// transaction seeded 221 a second at a few hundred thousand, slower as it went.
const ARTICLES_PER_BATCH: usize = 50;

const WORDS: &[&str] = &[
    "rust",
    "async",
    "axum",
    "tokio",
    "sqlite",
    "postgres",
    "cache",
    "index",
    "query",
    "latency",
    "memory",
    "thread",
    "future",
    "trait",
    "macro",
    "borrow",
    "lifetime",
    "crate",
    "module",
    "error",
    "backend",
    "server",
    "request",
    "response",
    "stream",
    "buffer",
    "socket",
    "signal",
    "deploy",
    "metric",
    "trace",
    "span",
    "token",
    "session",
    "cookie",
    "schema",
    "migration",
    "replica",
    "shard",
    "queue",
    "worker",
    "batch",
    "keyset",
    "cursor",
    "page",
    "bench",
    "profile",
    "release",
    "debug",
    "test",
];

/// What was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seeded {
    pub users: usize,
    pub follows: usize,
    pub articles: usize,
    pub favorites: usize,
    pub comments: usize,
}

pub async fn seed(store: &dyn Store, plan: &Plan) -> anyhow::Result<Seeded> {
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let users = seed_users(store, plan).await?;
    let follows = seed_follows(store, &users, &mut rng).await?;
    let (articles, favorites, comments) = seed_articles(store, plan, &users, &mut rng).await?;
    Ok(Seeded { users: users.len(), follows, articles, favorites, comments })
}

/// `PREFIX1` to `PREFIXn`, all with the demo password; their ids in order.
async fn seed_users(store: &dyn Store, plan: &Plan) -> anyhow::Result<Vec<UserId>> {
    let user_count = plan.users.unwrap_or((plan.articles / 10).max(10)).max(1);
    let password_hash = conduit_domain::password::hash(PASSWORD)?;
    let mut progress = Progress::new("users", user_count);
    let mut users: Vec<UserId> = Vec::with_capacity(user_count);
    for first in (1..=user_count).step_by(USERS_PER_BATCH) {
        let batch: Vec<NewUser> = (first..(first + USERS_PER_BATCH).min(user_count + 1))
            .map(|n| {
                let name = format!("{}{n}", plan.prefix);
                Ok(NewUser {
                    username: Username::parse(&name).map_err(|e| anyhow::anyhow!("--prefix: '{name}' {e}"))?,
                    email: Email::parse(&format!("{name}@example.com"))
                        .map_err(|e| anyhow::anyhow!("--prefix: {e}"))?,
                    password_hash: password_hash.clone(),
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let ids = store.seed_users(&batch).await.map_err(|e| match e {
            conduit_store::DbError::Conflict(_) => anyhow::anyhow!(
                "the database already has a user named like '{}1': seed an empty database, or pass another --prefix",
                plan.prefix
            ),
            other => other.into(),
        })?;
        users.extend(ids);
        progress.set(users.len());
    }
    progress.done();
    Ok(users)
}

/// Up to [`FOLLOWS_PER_USER`] random followees each; how many follows were made.
async fn seed_follows(store: &dyn Store, users: &[UserId], rng: &mut StdRng) -> anyhow::Result<usize> {
    let follows_each = FOLLOWS_PER_USER.min(users.len() - 1);
    let mut progress = Progress::new("follows", users.len() * follows_each);
    let mut made = 0;
    let mut pending = Vec::with_capacity(FOLLOWS_PER_BATCH);
    for &follower in users {
        let mut followees: Vec<UserId> = (0..follows_each).map(|_| users[rng.random_range(0..users.len())]).collect();
        followees.sort();
        followees.dedup();
        pending.extend(
            followees.into_iter().filter(|&followee| followee != follower).map(|followee| (follower, followee)),
        );
        if pending.len() >= FOLLOWS_PER_BATCH {
            store.seed_follows(&pending).await?;
            made += pending.len();
            progress.set(made);
            pending.clear();
        }
    }
    store.seed_follows(&pending).await?;
    made += pending.len();
    progress.done();
    Ok(made)
}

/// The articles, a minute apart up to now, with their tags, favorites and comments; how many
/// articles, favorites and comments were made.
async fn seed_articles(
    store: &dyn Store,
    plan: &Plan,
    users: &[UserId],
    rng: &mut StdRng,
) -> anyhow::Result<(usize, usize, usize)> {
    let (mut articles, mut favorites, mut comments) = (0, 0, 0);
    let mut progress = Progress::new("articles", plan.articles);
    let oldest = Utc::now() - Duration::minutes(i64::try_from(plan.articles).unwrap_or(i64::MAX / 60));
    let mut batch = Vec::with_capacity(ARTICLES_PER_BATCH);
    for n in 0..plan.articles {
        let article = article(rng, users, n, oldest + Duration::minutes(n as i64))?;
        favorites += article.favorited_by.len();
        comments += article.comments.len();
        batch.push(article);
        if batch.len() == ARTICLES_PER_BATCH || n + 1 == plan.articles {
            store.seed_articles(&batch).await?;
            articles += batch.len();
            progress.set(articles);
            batch.clear();
        }
    }
    progress.done();
    Ok((articles, favorites, comments))
}

fn words(rng: &mut StdRng, count: usize) -> String {
    (0..count).map(|_| WORDS[rng.random_range(0..WORDS.len())]).collect::<Vec<_>>().join(" ")
}

fn article(rng: &mut StdRng, users: &[UserId], n: usize, at: chrono::DateTime<Utc>) -> anyhow::Result<SeedArticle> {
    let pick = |rng: &mut StdRng| users[rng.random_range(0..users.len())];
    let title = {
        let count = rng.random_range(3..8);
        let mut title = words(rng, count);
        title[..1].make_ascii_uppercase();
        title
    };
    // The article's number in base 36 keeps every slug unique without a retry.
    let slug = format!("{}-{}", conduit_domain::slug::slugify(&title), base36(n));
    let slug = Slug::parse(&slug).map_err(|e| anyhow::anyhow!("slug '{slug}' {e}"))?;
    let tags = {
        let mut tags: Vec<String> = Vec::new();
        let count = rng.random_range(1..=3);
        for _ in 0..count {
            // Squaring skews towards the first tags, as real tag use is.
            let x: f64 = rng.random();
            let tag = WORDS[((x * x) * TAGS as f64) as usize % TAGS].to_owned();
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        tags
    };
    let sentences = rng.random_range(3..10);
    let body = (0..sentences).map(|_| words(rng, 12) + ".").collect::<Vec<_>>().join(" ");
    let favorites = rng.random_range(0..=4);
    let mut favorited_by: Vec<UserId> = (0..favorites).map(|_| pick(rng)).collect();
    favorited_by.sort();
    favorited_by.dedup();
    let comment_count = rng.random_range(0..=2);
    let comments = (0..comment_count).map(|_| (pick(rng), words(rng, 10))).collect();
    Ok(SeedArticle {
        author: pick(rng),
        slug,
        article: NewArticle { title, description: words(rng, 8), body, tags },
        created_at: at,
        favorited_by,
        comments,
    })
}

fn base36(mut n: usize) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[n % 36]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// A progress line on stderr: redrawn in place on a terminal, otherwise a line every tenth.
struct Progress {
    label: &'static str,
    total: usize,
    started: Instant,
    terminal: bool,
    shown_tenth: usize,
}

impl Progress {
    fn new(label: &'static str, total: usize) -> Self {
        Self { label, total, started: Instant::now(), terminal: std::io::stderr().is_terminal(), shown_tenth: 0 }
    }

    fn set(&mut self, done: usize) {
        let total = self.total.max(1);
        let tenth = done * 10 / total;
        if !self.terminal && tenth == self.shown_tenth {
            return;
        }
        self.shown_tenth = tenth;
        let seconds = self.started.elapsed().as_secs_f64();
        let rate = done as f64 / seconds.max(1e-3);
        let left = (total.saturating_sub(done)) as f64 / rate.max(1e-3);
        let line = format!(
            "{:>9} {:>3}% {done}/{} ({rate:.0}/s, {left:.0} s left)",
            self.label,
            done * 100 / total,
            self.total
        );
        let mut stderr = std::io::stderr();
        if self.terminal {
            let _ = write!(stderr, "\r{line}\x1b[K");
        } else {
            let _ = writeln!(stderr, "{line}");
        }
        let _ = stderr.flush();
    }

    fn done(&mut self) {
        let seconds = self.started.elapsed().as_secs_f64();
        let mut stderr = std::io::stderr();
        let clear = if self.terminal { "\r\x1b[K" } else { "" };
        let _ = writeln!(stderr, "{clear}{:>9} {} in {seconds:.1} s", self.label, self.total);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base36_numbers_are_short_and_distinct() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
        assert_eq!(base36(10_000_000), "5yc1s");
    }
}
