//! The SQLite store: the embedded default, one file, WAL mode.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use cafe24_core::settings::DatabaseSettings;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Executor;

mod lifecycle;
mod webhooks;

use crate::migrations::{self, AppliedMigration};
use crate::records::{CodeRow, CODE_COLUMNS};
use crate::{
    AuthorizationCodeRecord, Backend, ClaimedCode, CodeClaim, CodeInsert, CodeStatus, CodeWakeups,
    MallEvent, MallLock, NewAuthorizationCode, NewTokens, Store, StoreError, TokenRecord,
};
use crate::{DispatchOutcome, LoggedDelivery, NewWebhookEvent, WebhookEventRecord, WebhookInsert};
use cafe24_core::MallId;
use chrono::{DateTime, Utc};

#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn open(path: &Path, settings: &DatabaseSettings) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            // SQLite serialises writers; a few connections are plenty.
            .max_connections(settings.max_connections.min(8))
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

async fn apply_pending(conn: &mut sqlx::SqliteConnection) -> Result<(), StoreError> {
    let applied: Vec<(i64, String)> =
        sqlx::query_as("SELECT version, checksum FROM schema_migrations")
            .fetch_all(&mut *conn)
            .await?;
    for m in migrations::pending(migrations::SQLITE, &applied)? {
        let failed = |source| StoreError::Migration {
            version: m.version,
            name: m.name,
            source,
        };
        (&mut *conn)
            .execute(sqlx::raw_sql(m.sql))
            .await
            .map_err(failed)?;
        sqlx::query("INSERT INTO schema_migrations (version, name, checksum) VALUES (?, ?, ?)")
            .bind(m.version)
            .bind(m.name)
            .bind(m.checksum())
            .execute(&mut *conn)
            .await?;
        tracing::info!(version = m.version, name = m.name, "applied migration");
    }
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn migrate(&self) -> Result<Vec<AppliedMigration>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        (&mut *conn)
            .execute(sqlx::raw_sql(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL,
                 applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))",
            ))
            .await?;
        // BEGIN IMMEDIATE takes the write lock first, so two processes migrating at once queue.
        (&mut *conn)
            .execute(sqlx::raw_sql("BEGIN IMMEDIATE"))
            .await?;
        let result = apply_pending(&mut conn).await;
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        (&mut *conn).execute(sqlx::raw_sql(end)).await?;
        result?;
        drop(conn);
        self.applied_migrations().await
    }

    async fn applied_migrations(&self) -> Result<Vec<AppliedMigration>, StoreError> {
        let rows: Vec<(i64, String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
            "SELECT version, name, applied_at FROM schema_migrations ORDER BY version",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(version, name, applied_at)| AppliedMigration {
                version,
                name,
                applied_at,
            })
            .collect())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn insert_authorization_code(
        &self,
        new: NewAuthorizationCode<'_>,
    ) -> Result<CodeInsert, StoreError> {
        // See the PostgreSQL store: the cap counts young codes still waiting.
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO authorization_codes (code, state, mall_id)
             SELECT ?1, ?2, ?3 WHERE (SELECT count(*) FROM authorization_codes
                 WHERE mall_id = ?3 AND status IN ('pending', 'processing') AND created_at > ?5) < ?4
             ON CONFLICT (state) DO NOTHING RETURNING id",
        )
        .bind(new.code.expose_secret())
        .bind(new.state)
        .bind(new.mall_id.as_str())
        .bind(i64::from(new.max_pending))
        .bind(lifecycle::ts(
            chrono::Utc::now() - chrono::Duration::seconds(120),
        ))
        .fetch_optional(&self.pool)
        .await?;
        if let Some(id) = id {
            return Ok(CodeInsert::Stored { id });
        }
        let used: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM authorization_codes WHERE state = ?)")
                .bind(new.state)
                .fetch_one(&self.pool)
                .await?;
        Ok(if used {
            CodeInsert::StateAlreadyUsed
        } else {
            CodeInsert::TooManyPending
        })
    }

    async fn authorization_code(
        &self,
        id: i64,
    ) -> Result<Option<AuthorizationCodeRecord>, StoreError> {
        let row: Option<CodeRow> = sqlx::query_as(&format!(
            "SELECT {CODE_COLUMNS} FROM authorization_codes WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(AuthorizationCodeRecord::try_from).transpose()
    }

    async fn expire_codes(&self, window: Duration) -> Result<u64, StoreError> {
        lifecycle::expire_codes(&self.pool, window).await
    }

    async fn claim_codes(
        &self,
        window: Duration,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedCode>, StoreError> {
        lifecycle::claim_codes(&self.pool, window, lease, limit).await
    }

    async fn retry_code(&self, claim: CodeClaim, error: &str) -> Result<bool, StoreError> {
        lifecycle::retry_code(&self.pool, claim, error).await
    }

    async fn finish_code(
        &self,
        claim: CodeClaim,
        status: CodeStatus,
        error: &str,
    ) -> Result<bool, StoreError> {
        lifecycle::finish_code(&self.pool, claim, status, error).await
    }

    async fn complete_exchange(
        &self,
        claim: CodeClaim,
        tokens: &NewTokens,
    ) -> Result<i64, StoreError> {
        lifecycle::complete_exchange(&self.pool, claim, tokens).await
    }

    async fn replace_tokens(
        &self,
        mall: &MallId,
        expected_version: i64,
        new: &NewTokens,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        lifecycle::replace_tokens(&self.pool, mall, expected_version, new, at).await
    }

    async fn code_wakeups(&self) -> Result<CodeWakeups, StoreError> {
        Ok(CodeWakeups::polling())
    }

    async fn tokens(&self, mall: &MallId) -> Result<Option<TokenRecord>, StoreError> {
        lifecycle::read_tokens(&self.pool, mall).await
    }

    async fn all_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        lifecycle::all_tokens(&self.pool).await
    }

    async fn malls_due(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<MallId>, StoreError> {
        lifecycle::malls_due(&self.pool, before, limit).await
    }

    async fn lock_mall<'a>(
        &'a self,
        mall: &MallId,
        wait: Duration,
    ) -> Result<Box<dyn MallLock + 'a>, StoreError> {
        Ok(Box::new(
            lifecycle::SqliteMallLock::acquire(&self.pool, mall, wait).await?,
        ))
    }

    async fn record_event(
        &self,
        mall: &MallId,
        kind: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        lifecycle::record_event(&self.pool, mall, kind, detail).await
    }

    async fn events(&self, after: i64, limit: u32) -> Result<Vec<MallEvent>, StoreError> {
        lifecycle::events(&self.pool, after, limit).await
    }

    async fn insert_webhook_event(
        &self,
        new: NewWebhookEvent<'_>,
    ) -> Result<WebhookInsert, StoreError> {
        webhooks::insert(&self.pool, new).await
    }

    async fn claim_webhook_events(
        &self,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<WebhookEventRecord>, StoreError> {
        webhooks::claim(&self.pool, limit, lease).await
    }

    async fn finish_webhook_event(
        &self,
        id: i64,
        outcome: &DispatchOutcome,
    ) -> Result<(), StoreError> {
        webhooks::finish(&self.pool, id, outcome).await
    }

    async fn record_logged_delivery(
        &self,
        new: NewWebhookEvent<'_>,
    ) -> Result<LoggedDelivery, StoreError> {
        webhooks::record_logged(&self.pool, new).await
    }

    async fn webhook_events(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<WebhookEventRecord>, StoreError> {
        webhooks::list(&self.pool, after, limit).await
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
