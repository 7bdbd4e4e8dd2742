//! The `conduit` command line: `serve` (through `startup`), and the commands an operator runs
//! beside it: `migrate`, `seed` (with [`demo_data`]), `user` and `mail`.
//!
//! Imports: anything; nothing imports it but `main.rs`.

mod backup;
pub mod demo_data;
mod mail;
mod user;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::config::{Config, OTHER_ENV_VARS};
use crate::ops::{database, telemetry};
use crate::startup::Application;

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
    /// Gather the query planner's statistics on every table (ANALYZE), then exit; on SQLite also
    /// merge the search index into one segment, which makes searches faster (it holds writes
    /// for its few seconds at a million articles). Run it after loading data in bulk by other
    /// means than `conduit seed` (which does it itself); `serve` warns at start-up when a large
    /// table has none.
    Analyze,
    /// Administer user accounts (uses the same configuration as `serve`).
    #[command(subcommand)]
    User(user::UserCommand),
    /// Fill the database with realistic demo data, in bulk: users, follows, articles with tags,
    /// favorites and comments, in the proportions of a live blog. The same --seed gives the same
    /// data. Every demo user's password is `password123`. Migrates first, like `serve`.
    Seed(SeedArgs),
    /// Back up the database, online: a consistent snapshot into one archive file (a SQLite
    /// database and a manifest with checksums), whichever the backend. The server may go on
    /// serving and writing meanwhile (`nice -n 19 conduit backup` keeps its CPU off a busy
    /// server). Restore it with `conduit restore`.
    Backup(backup::BackupArgs),
    /// Restore an archive from `conduit backup` into the configured database (DATABASE_URL),
    /// either backend, whichever it was taken from: checks it first (checksums, integrity,
    /// counts, counters), migrates it when older, loads it, checks the result. The database
    /// must be empty (or --replace) and no `conduit serve` may be using it.
    Restore(backup::RestoreArgs),
    /// Show or requeue the outbox: the mail Conduit queued (verification and reset links,
    /// notices), sent, or gave up on (dead).
    #[command(subcommand)]
    Mail(mail::MailCommand),
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

/// A command-line mistake as one line: clap's message with its lines joined, its usage block
/// left out, and where to read more.
fn one_line(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let message = rendered.split("\n\nUsage:").next().unwrap_or_default();
    let message = message.strip_prefix("error: ").unwrap_or(message);
    let words: Vec<&str> = message.split_whitespace().collect();
    format!("{} (see `conduit --help`, or `conduit COMMAND --help`)", words.join(" "))
}

/// Runs the command line and turns any failure into one line on stderr and a non-zero exit.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            eprintln!("conduit: error: {}", one_line(&e));
            return ExitCode::from(2);
        }
    };
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
    let mut config = match Config::from_env(cli.config, flags) {
        Ok(config) => config,
        Err(e) => return fail(e.into()),
    };
    if matches!(cli.command, Some(Command::Backup(_) | Command::Restore(_) | Command::Seed(_) | Command::Analyze)) {
        // Their statements read whole tables on purpose: sqlx's "slow statement" warnings
        // would only bury the command's own lines.
        config.log_filter.push_str(",sqlx::query=error");
    }
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
        Some(Command::Analyze) => return analyze(config).await,
        Some(Command::User(command)) => return user::run(config, command).await,
        Some(Command::Seed(args)) => return seed(config, args).await,
        Some(Command::Mail(command)) => return mail::run(config, command).await,
        Some(Command::Backup(args)) => return backup::backup(config, args).await,
        Some(Command::Restore(args)) => return backup::restore(config, args).await,
        Some(Command::Serve(_)) | None => {}
    }
    Application::build(config).await?.run_until_signal().await
}

async fn migrate(config: Config) -> anyhow::Result<()> {
    let store = database::open(&config, database::Caching::Off).await?;
    store.close().await;
    println!("{} database at {} is up to date", store.backend(), database::redact(&config.database_url));
    Ok(())
}

async fn analyze(config: Config) -> anyhow::Result<()> {
    let store = database::open(&config, database::Caching::Off).await?;
    let started = std::time::Instant::now();
    let analyzed = store.analyze().await;
    store.close().await;
    analyzed.context("ANALYZE failed")?;
    println!(
        "gathered planner statistics of the {} database at {} in {:.1} s",
        store.backend(),
        database::redact(&config.database_url),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn seed(config: Config, args: SeedArgs) -> anyhow::Result<()> {
    let store = database::open(&config, database::Caching::Off).await?;
    let plan = demo_data::Plan { articles: args.articles, users: args.users, seed: args.seed, prefix: args.prefix };
    let started = std::time::Instant::now();
    let made = demo_data::seed(store.as_ref(), &plan).await;
    // A bulk load leaves the planner without statistics: on PostgreSQL, listings then ran 30
    // times slower until an ANALYZE (113 against 3,532 req/s after 200,000 articles).
    let analyzed = match &made {
        Ok(_) => store.analyze().await.context("ANALYZE after seeding failed"),
        Err(_) => Ok(()),
    };
    store.close().await;
    let made = made?;
    analyzed?;
    println!(
        "seeded {} database at {} in {:.1} s: {} users, {} follows, {} articles, {} favorites, {} comments, \
         and its planner statistics (every demo user's password is {})",
        store.backend(),
        database::redact(&config.database_url),
        started.elapsed().as_secs_f64(),
        made.users,
        made.follows,
        made.articles,
        made.favorites,
        made.comments,
        demo_data::PASSWORD
    );
    Ok(())
}
