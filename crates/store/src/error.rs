use conduit_domain::Field;

/// What can go wrong in a store, in the terms the API needs to answer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A unique constraint refused the write; the field is the column it guards.
    #[error("{0} has already been taken")]
    Conflict(Field),
    /// The change would leave no active admin.
    #[error("the last active admin cannot be demoted or deactivated")]
    LastAdmin,
    /// A listing with several filters each of which matches more than
    /// [`crate::MAX_COMBINED_SCAN`] articles: serving it would walk that many.
    #[error("every filter matches more than {} articles", crate::MAX_COMBINED_SCAN)]
    TooBroad,
    /// The database could not be reached in time (pool timeout, refused connection).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or a broken database. Logged, never shown to clients.
    #[error("database error: {0}")]
    Other(String),
}

/// Columns whose unique constraints the API reports as a 409 on that field (`report`: one open
/// report per reporter and target, `reports_open_once`).
const UNIQUE_FIELDS: [Field; 4] = ["username", "email", "slug", "report"];

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                // PostgreSQL names the constraint (`users_email_key`); SQLite names the
                // column in its message (`UNIQUE constraint failed: users.email`).
                let source = db.constraint().unwrap_or_else(|| db.message());
                match UNIQUE_FIELDS.iter().find(|f| source.contains(*f)) {
                    Some(field) => DbError::Conflict(field),
                    None => DbError::Other(e.to_string()),
                }
            }
            sqlx::Error::Database(db) if db.code().is_some_and(|code| means_unavailable(&code)) => {
                DbError::Unavailable(e.to_string())
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
                DbError::Unavailable(e.to_string())
            }
            // The conversation with the server broke off: a PostgreSQL going down or coming up
            // answered a new connection's SSLRequest with a byte that is not 'S' or 'N'
            // ("unexpected response from SSLRequest: 0x00", seen in the restart test under
            // load), as a connection cut mid-message does. The connection is unusable; the
            // request may be tried again, as for a refused connection.
            sqlx::Error::Protocol(_) => DbError::Unavailable(e.to_string()),
            _ => DbError::Other(e.to_string()),
        }
    }
}

/// PostgreSQL error codes that say the server is going away, starting up or full, rather than
/// that the query was wrong: class 08 (connection exception), 57P01-57P03 (admin or crash
/// shutdown, cannot connect now) and 53300 (too many connections). A restart shows all of them.
fn means_unavailable(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

impl DbError {
    /// A row written a moment ago is gone: only a concurrent delete can do that.
    pub fn vanished() -> Self {
        DbError::Other("row deleted concurrently before it could be read back".into())
    }
}

#[cfg(test)]
mod tests {
    use super::DbError;

    #[test]
    fn a_broken_conversation_is_unavailable_not_a_bug() {
        let cut = sqlx::Error::Protocol("unexpected response from SSLRequest: 0x00".into());
        assert!(matches!(DbError::from(cut), DbError::Unavailable(_)));
        let refused = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(matches!(DbError::from(refused), DbError::Unavailable(_)));
        assert!(matches!(DbError::from(sqlx::Error::RowNotFound), DbError::Other(_)));
    }
}
