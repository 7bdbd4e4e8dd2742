//! The `conduit` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use conduit_domain::token::TokenKeys;

use crate::config::{Config, OTHER_ENV_VARS};
use crate::{AppState, app, db, serve, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "conduit",
    version,
    about = "Conduit: the RealWorld blogging API (users, profiles, articles, comments, tags)",
    long_about = "Conduit serves the RealWorld \"Conduit\" API over HTTP.\n\n\
        With no configuration it keeps everything in a SQLite file, ./conduit.db, created and \
        migrated on start. Set DATABASE_URL=postgres://... (and CONDUIT_JWT_SECRET) to share \
        state between several instances.\n\n\
        Settings come from built-in defaults, then ./conduit.toml (or --config), then \
        environment variables, then flags; later ones win. Each setting below has all three.",
    after_help = settings_help(),
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// Config file to read [default: ./conduit.toml when it exists]
    #[arg(long, global = true, value_name = "PATH", env = "CONDUIT_CONFIG")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,

    /// With no subcommand, `conduit` serves (these are `serve`'s options).
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the default): migrate the database, listen, and run until SIGINT or
    /// SIGTERM, then finish in-flight requests and exit.
    #[command(after_help = settings_help())]
    Serve(ServeArgs),
    /// Bring the database schema up to date, then exit. `serve` does this too on start.
    Migrate,
    /// Administer user accounts (uses the same configuration as `serve`).
    #[command(subcommand)]
    User(UserCommand),
    /// Fill the database with realistic demo data, in bulk: users, follows, articles with tags,
    /// favorites and comments, in the proportions of a live blog. The same --seed gives the same
    /// data. Every demo user's password is `password123`. Migrates first, like `serve`.
    Seed(SeedArgs),
    /// Show or requeue the outbox: the mail Conduit queued (verification and reset links,
    /// notices), sent, or gave up on (dead).
    #[command(subcommand)]
    Mail(MailCommand),
}

#[derive(Debug, Subcommand)]
enum MailCommand {
    /// List the newest messages: id, state, tries, kind, recipient, subject, last error.
    List {
        /// Only messages in this state: queued, sent or dead
        #[arg(long, value_parser = ["queued", "sent", "dead"])]
        state: Option<String>,
        /// How many to list
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Requeue dead messages (all of them, or the ones given by id) with a fresh count of tries;
    /// a running server sends them within a second. Sent messages are never sent again.
    Retry {
        /// Ids from `conduit mail list`; none: every dead message
        ids: Vec<i64>,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Make a user an admin (nobody is one by default). Admins can list users and change their
    /// role or active flag through the API.
    Promote {
        /// The user's username.
        username: String,
    },
    /// Replace a user's password hash with an Argon2 PHC string made elsewhere (for example by
    /// the Python package's `conduit.hash_password`, or argon2-cffi), to migrate users from
    /// another system without knowing their passwords.
    SetPasswordHash {
        /// The user's username.
        username: String,
        /// The PHC string, such as `$argon2id$v=19$m=19456,t=2,p=1$...`; `-` reads it from stdin
        /// (keeps it out of the shell history).
        phc: String,
    },
}

#[derive(Debug, Args)]
struct SeedArgs {
    /// Articles to create
    #[arg(long, default_value_t = 100)]
    articles: usize,
    /// Users to create [default: one per ten articles, at least 10]
    #[arg(long)]
    users: Option<usize>,
    /// Seed number: the same one gives the same data
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Usernames are PREFIX1, PREFIX2, ...; use another to seed a database that has demo users
    #[arg(long, default_value = "demo")]
    prefix: String,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Any setting listed below, as a flag: `--bind 0.0.0.0:8080 --gzip false`
    #[arg(value_name = "SETTINGS", trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    settings: Vec<String>,
}

/// Every setting, from its one declaration (`config::Config`).
fn settings_help() -> String {
    let mut help = String::from("Settings (flag, environment variable, conduit.toml key):\n");
    for setting in Config::settings() {
        let default = setting.default.map(|d| format!(" [default: {d}]")).unwrap_or_default();
        help.push_str(&format!(
            "  {}, {}, {}{default}\n      {}\n",
            setting.flag, setting.env, setting.key, setting.help
        ));
    }
    help.push_str("Also read:\n");
    for (name, meaning) in OTHER_ENV_VARS {
        help.push_str(&format!("  {name:<28} {meaning}\n"));
    }
    help
}

/// Runs the command line and turns any failure into one line on stderr and a non-zero exit.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let flags = match &cli.command {
        Some(Command::Serve(args)) => args.settings.clone(),
        None => cli.serve.settings.clone(),
        Some(_) => Vec::new(),
    };
    let fail = |e: anyhow::Error| {
        // `{:#}` joins the error chain on one line: "cannot connect ...: connection refused".
        eprintln!("conduit: error: {e:#}");
        ExitCode::FAILURE
    };
    // Configuration and telemetry come first, outside the runtime: the OTLP exporter's HTTP
    // client must not be created or dropped on an async thread.
    let config = match Config::from_env(cli.config, flags) {
        Ok(config) => config,
        Err(e) => return fail(e.into()),
    };
    let telemetry = match telemetry::init(&config) {
        Ok(telemetry) => telemetry,
        Err(e) => return fail(e),
    };
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .and_then(|runtime| runtime.block_on(run(cli.command, config)));
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

async fn run(command: Option<Command>, config: Config) -> anyhow::Result<()> {
    match command {
        Some(Command::Migrate) => return migrate(config).await,
        Some(Command::User(command)) => return user(config, command).await,
        Some(Command::Seed(args)) => return seed(config, args).await,
        Some(Command::Mail(command)) => return mail(config, command).await,
        Some(Command::Serve(_)) | None => {}
    }
    // The secret is settled before touching the database, so a missing one fails fast.
    let secret = db::jwt_secret(&config)?;
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    let store = db::open(&config, db::Caching::On).await?;
    let links = config.mail.links_base(listener.local_addr()?);
    let mut state = AppState::new(store.clone(), TokenKeys::new(&secret, config.token_ttl))
        .with_http(config.http.clone())
        .with_mail(config.mail.clone(), links);
    let sender = crate::mailer::start(store.clone(), state.letters.clone(), state.metrics.clone())?;
    match &config.redis_url {
        Some(url) => state = state.with_redis(crate::redis::connect(url).await?),
        // Sessions live in the database: sweep the expired ones.
        None => crate::sessions::sweep_expired(store.clone(), std::time::Duration::from_secs(60)),
    }
    let metrics = match config.metrics_bind {
        Some(address) => {
            state.metrics_on_main = false;
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address} (CONDUIT_METRICS_BIND)"))?;
            tracing::info!(address = %format!("http://{}/metrics", listener.local_addr()?), "metrics are served separately");
            Some((listener, crate::metrics_app(state.clone())))
        }
        None => None,
    };
    tracing::info!(
        address = %format!("http://{}", listener.local_addr()?),
        backend = store.backend(),
        database = %db::redact(&config.database_url),
        "conduit is listening"
    );
    let stopped =
        serve::serve_until_signal(listener, app(state), metrics, config.header_read_timeout, config.shutdown_grace)
            .await
            .context("server failed")?;
    match stopped {
        serve::Stopped::Drained => {
            // Mail queued by the last requests goes out before the store closes.
            if !sender.drain(config.mail.smtp_timeout * 2).await {
                tracing::warn!("mail still sending at shutdown stays queued for the next start");
            }
            store.close().await;
            tracing::info!("stopped cleanly");
        }
        // Abandoned requests may still hold connections: exit without waiting for the pool.
        serve::Stopped::GraceExpired => {
            anyhow::bail!("shutdown grace period ({:?}) ran out with requests still in flight", config.shutdown_grace)
        }
    }
    Ok(())
}

async fn migrate(config: Config) -> anyhow::Result<()> {
    let store = db::open(&config, db::Caching::Off).await?;
    store.close().await;
    println!("{} database at {} is up to date", store.backend(), db::redact(&config.database_url));
    Ok(())
}

async fn seed(config: Config, args: SeedArgs) -> anyhow::Result<()> {
    let store = db::open(&config, db::Caching::Off).await?;
    let plan = crate::seed::Plan { articles: args.articles, users: args.users, seed: args.seed, prefix: args.prefix };
    let started = std::time::Instant::now();
    let made = crate::seed::seed(store.as_ref(), &plan).await;
    store.close().await;
    let made = made?;
    println!(
        "seeded {} database at {} in {:.1} s: {} users, {} follows, {} articles, {} favorites, {} comments \
         (every demo user's password is {})",
        store.backend(),
        db::redact(&config.database_url),
        started.elapsed().as_secs_f64(),
        made.users,
        made.follows,
        made.articles,
        made.favorites,
        made.comments,
        crate::seed::PASSWORD
    );
    Ok(())
}

async fn mail(config: Config, command: MailCommand) -> anyhow::Result<()> {
    let store = db::open(&config, db::Caching::Off).await?;
    let result = async {
        match command {
            MailCommand::List { state, limit } => {
                let entries = store.list_mail(state.as_deref(), limit.clamp(1, 10_000)).await?;
                if entries.is_empty() {
                    println!("the outbox is empty{}", state.map(|s| format!(" (state {s})")).unwrap_or_default());
                }
                for e in entries {
                    let when = |ms: i64| {
                        chrono::DateTime::from_timestamp_millis(ms)
                            .map_or_else(|| ms.to_string(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                    };
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
                }
            }
            MailCommand::Retry { ids } => {
                let now = chrono::Utc::now().timestamp_millis();
                let requeued = if ids.is_empty() {
                    store.retry_mail(None, now).await?
                } else {
                    let mut n = 0;
                    for id in &ids {
                        n += store.retry_mail(Some(*id), now).await?;
                    }
                    n
                };
                println!("{requeued} message(s) queued again; a running server sends them within a second");
            }
        }
        anyhow::Ok(())
    }
    .await;
    store.close().await;
    result
}

/// A username given on the command line, or the rule it breaks.
fn cli_name(raw: &str) -> anyhow::Result<conduit_domain::Username> {
    conduit_domain::Username::parse(raw).map_err(|e| anyhow::anyhow!("'{raw}' cannot be a username: it {e}"))
}

async fn user(config: Config, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Promote { username } => {
            let store = db::open(&config, db::Caching::On).await?;
            let changes =
                conduit_store::AccountChanges { role: Some(conduit_domain::model::Role::Admin), active: None };
            let changed = store.set_account(&cli_name(&username)?, &changes).await;
            store.close().await;
            match changed? {
                Some(user) => println!(
                    "'{}' is now an admin (account {})",
                    user.username,
                    if user.active { "active" } else { "deactivated" }
                ),
                None => {
                    anyhow::bail!("no user named '{username}': check the name (it is case-sensitive) and DATABASE_URL")
                }
            }
        }
        UserCommand::SetPasswordHash { username, phc } => {
            let phc = if phc == "-" {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line).context("cannot read the PHC string from stdin")?;
                line.trim().to_owned()
            } else {
                phc
            };
            conduit_domain::password::validate(&phc).context("refusing to store this hash")?;
            let store = db::open(&config, db::Caching::On).await?;
            let found = store.set_password_hash(&cli_name(&username)?, &phc).await;
            store.close().await;
            if !found? {
                anyhow::bail!("no user named '{username}': check the name (it is case-sensitive) and DATABASE_URL");
            }
            println!("password hash of '{username}' replaced; they can now log in with the matching password");
        }
    }
    Ok(())
}
