//! `conduit user promote`, `demote` and `set-password-hash`.

use anyhow::Context;
use clap::Subcommand;

use crate::config::Config;
use crate::ops::database;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Make a user an admin (nobody is one by default), or with --role moderator a moderator.
    /// Admins can list users and change their role or active flag through the API; moderators
    /// answer reports (hide, delete, suspend, purge) and read the moderation log.
    Promote {
        /// The user's username.
        username: String,
        /// The role to give: admin or moderator.
        #[arg(long, default_value = "admin", value_parser = ["admin", "moderator"])]
        role: String,
    },
    /// Make a moderator or admin an ordinary user again (the last active admin cannot be).
    Demote {
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
        UserCommand::Promote { username, role } => {
            let role = conduit_domain::model::Role::parse(&role).context("the role must be admin or moderator")?;
            set_role(&config, &username, role).await?;
        }
        UserCommand::Demote { username } => set_role(&config, &username, conduit_domain::model::Role::User).await?,
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

async fn set_role(config: &Config, username: &str, role: conduit_domain::model::Role) -> anyhow::Result<()> {
    let store = database::open(config, database::Caching::On).await?;
    let changes = conduit_store::AccountChanges { role: Some(role), active: None, by: None };
    let changed = store.set_account(&cli_name(username)?, &changes).await;
    store.close().await;
    match changed {
        Ok(Some(user)) => {
            let active = if user.active { "active" } else { "deactivated" };
            let role = match role {
                conduit_domain::model::Role::Admin => "an admin",
                conduit_domain::model::Role::Moderator => "a moderator",
                conduit_domain::model::Role::User => "an ordinary user",
            };
            println!("'{}' is now {role} (account {active})", user.username);
            Ok(())
        }
        Ok(None) => anyhow::bail!("no user named '{username}': check the name (it is case-sensitive) and DATABASE_URL"),
        Err(conduit_store::DbError::LastAdmin) => {
            anyhow::bail!("'{username}' is the last active admin: promote another user first")
        }
        Err(other) => Err(other.into()),
    }
}
