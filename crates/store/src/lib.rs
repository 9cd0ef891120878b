//! Storage for cafe24-oauth: one [`Store`] trait with a PostgreSQL implementation (schema
//! `cafe24`, for production and anything with more than one process) and a SQLite one (the
//! embedded default). The same behaviour tests run against both.

mod error;
mod migrations;
mod pg_pool;
mod postgres;
mod records;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use cafe24_core::settings::{DatabaseKind, DatabaseSettings};

pub use error::StoreError;
pub use migrations::{AppliedMigration, Migration};
pub use postgres::PostgresStore;
pub use records::{AuthorizationCodeRecord, CodeInsert, CodeStatus, NewAuthorizationCode};
pub use sqlite::SqliteStore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        })
    }
}

/// Everything the runtime persists. Implementations are cheap to clone behind an `Arc`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Applies every migration not yet applied, in order; running it again changes nothing.
    async fn migrate(&self) -> Result<Vec<AppliedMigration>, StoreError>;

    /// Migrations recorded as applied, oldest first.
    async fn applied_migrations(&self) -> Result<Vec<AppliedMigration>, StoreError>;

    /// A round trip to the database.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Stores a code from the callback. A state that was stored before is refused
    /// ([`CodeInsert::StateAlreadyUsed`]): that is what makes a state single use.
    async fn insert_authorization_code(
        &self,
        new: NewAuthorizationCode<'_>,
    ) -> Result<CodeInsert, StoreError>;

    async fn authorization_code(
        &self,
        id: i64,
    ) -> Result<Option<AuthorizationCodeRecord>, StoreError>;

    /// Closes the pool; later calls fail.
    async fn close(&self);
}

/// Opens the configured store. PostgreSQL pools connect lazily, so a server starts (and reports
/// not-ready) while its database is down; SQLite opens (and creates) its file at once.
pub async fn connect(settings: &DatabaseSettings) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match &settings.kind {
        DatabaseKind::Sqlite(path) => Arc::new(SqliteStore::open(path, settings).await?),
        _ => Arc::new(PostgresStore::connect_lazy(settings)?),
    })
}
