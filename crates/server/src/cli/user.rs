//! `conduit user promote` and `conduit user set-password-hash`.

use anyhow::Context;
use clap::Subcommand;

use crate::config::Config;
use crate::ops::database;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
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

/// A username given on the command line, or the rule it breaks.
fn cli_name(raw: &str) -> anyhow::Result<conduit_domain::Username> {
    conduit_domain::Username::parse(raw).map_err(|e| anyhow::anyhow!("'{raw}' cannot be a username: it {e}"))
}

pub async fn run(config: Config, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Promote { username } => {
            let store = database::open(&config, database::Caching::On).await?;
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
            let store = database::open(&config, database::Caching::On).await?;
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
