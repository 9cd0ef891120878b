//! Storage errors, split so the HTTP edge can answer 503 when the database is unreachable.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (connection refused, pool timeout, shutdown).
    #[error("the database is unreachable")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("migration {version} ({name}) failed")]
    Migration {
        version: i64,
        name: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("migration {version} was applied with different contents; refusing to continue")]
    MigrationChanged { version: i64 },
    #[error("the database holds a newer schema (version {0}) than this build knows")]
    SchemaTooNew(i64),
    #[error("another process holds this mall's lock")]
    LockTimeout,
    /// The mall's lock was lost while held (its lease expired and another process took it).
    #[error("this process no longer holds the mall's lock")]
    LockLost,
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        let unreachable = match &e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => true,
            // Class 08 (connection exception), 57P0x (shutdown), 53300 (too many connections).
            sqlx::Error::Database(db) => db
                .code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57P0") || c == "53300"),
            _ => false,
        };
        if unreachable {
            StoreError::Unavailable(e)
        } else {
            StoreError::Database(e)
        }
    }
}
