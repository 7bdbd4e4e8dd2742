//! `conduit mail list` and `conduit mail retry`: the outbox, from the command line.

use clap::Subcommand;
use conduit_store::Store;

use crate::config::Config;
use crate::ops::database;

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// List the newest messages: id, state, tries, kind, recipient, subject, last error.
    /// With no CONDUIT_SMTP_URL, mail stays queued here: `--show` prints its text and links.
    List {
        /// Only messages in this state: queued, sent or dead
        #[arg(long, value_parser = ["queued", "sent", "dead"])]
        state: Option<String>,
        /// How many to list
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Print each message's text below it (sent mail, and dead mail that carried a link,
        /// keep none)
        #[arg(long)]
        show: bool,
    },
    /// Requeue dead messages (all of them, or the ones given by id) with a fresh count of tries;
    /// a running server sends them within a second. Sent messages are never sent again.
    Retry {
        /// Ids from `conduit mail list`; none: every dead message
        ids: Vec<i64>,
    },
}

pub async fn run(config: Config, command: MailCommand) -> anyhow::Result<()> {
    let store = database::open(&config, database::Caching::Off).await?;
    let result = match command {
        MailCommand::List { state, limit, show } => list(store.as_ref(), state.as_deref(), limit, show).await,
        MailCommand::Retry { ids } => retry(store.as_ref(), &ids).await,
    };
    store.close().await;
    result
}

async fn list(store: &dyn Store, state: Option<&str>, limit: i64, show: bool) -> anyhow::Result<()> {
    let entries = store.list_mail(state, limit.clamp(1, 10_000)).await?;
    if entries.is_empty() {
        println!("the outbox is empty{}", state.map(|s| format!(" (state {s})")).unwrap_or_default());
    }
    let when = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map_or_else(|| ms.to_string(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
    };
    for e in entries {
        let status = match e.state.as_str() {
            "sent" => format!("sent {}", e.sent_at.map(when).unwrap_or_default()),
            "queued" => format!("queued, due {}", when(e.next_attempt_at)),
            other => other.to_owned(),
        };
        println!(
            "{:>6}  {:<28} tries {:<3} {:<17} {:<32} {}{}",
            e.id,
            status,
            e.attempts,
            e.kind,
            e.to,
            e.subject,
            e.last_error.map(|err| format!("  [last error: {err}]")).unwrap_or_default()
        );
        if show && !e.body.is_empty() {
            for line in e.body.lines() {
                println!("        | {line}");
            }
            println!();
        }
    }
    Ok(())
}

async fn retry(store: &dyn Store, ids: &[i64]) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp_millis();
    let requeued = if ids.is_empty() {
        store.retry_mail(None, now, None).await?
    } else {
        let mut n = 0;
        for id in ids {
            n += store.retry_mail(Some(*id), now, None).await?;
        }
        n
    };
    println!("{requeued} message(s) queued again; a running server sends them within a second");
    if !ids.is_empty() && requeued < ids.len() as u64 {
        println!(
            "the others were sent already, or died carrying a link whose token was then forgotten: ask for a new link instead"
        );
    }
    Ok(())
}
