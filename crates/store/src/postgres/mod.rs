//! The PostgreSQL store (schema `cafe24`).

use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use cafe24_core::settings::{DatabaseKind, DatabaseSettings};
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{Connection, Executor};

mod codes;
mod lifecycle;
mod webhooks;

use crate::migrations::{self, AppliedMigration};
use crate::notifier::{self, CodeNotifier};
use crate::pg_pool::{PgConnections, Priority};
use crate::records::{CodeRow, CODE_COLUMNS};
use crate::{ApiBudget, BudgetTake};
use crate::{
    AuthorizationCodeRecord, Backend, ClaimedCode, CodeClaim, CodeInsert, CodeStatus, CodeWakeups,
    MallEvent, MallLock, NewAuthorizationCode, NewTokens, Store, StoreError, TokenRecord,
};
use crate::{DispatchOutcome, LoggedDelivery, NewWebhookEvent, WebhookEventRecord, WebhookInsert};
use cafe24_core::MallId;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// Key of the advisory lock that serialises concurrent `migrate` runs.
const MIGRATION_LOCK: i64 = 0x0000_cafe_2400;

pub struct PostgresStore {
    conns: Arc<PgConnections>,
    /// Connections that hold per-mall advisory locks, apart from `conns`.
    locks: PgConnections,
    options: PgConnectOptions,
    /// The callback's inserts, grouped under load (and, when this store's sessions defer the
    /// insert trigger's notification, followed by a coalesced one).
    codes: codes::CodeInserts,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostgresStore")
    }
}

impl PostgresStore {
    pub fn connect_lazy(settings: &DatabaseSettings) -> Result<Self, StoreError> {
        let mut options = connect_options(&settings.kind)?;
        let notifier = if settings.coalesce_code_notifications {
            // The notifier's own session notifies; it needs no setting.
            let notifier = CodeNotifier::new(options.clone());
            options = options.options([notifier::DEFERRED]);
            Some(notifier)
        } else {
            None
        };
        let conns = Arc::new(PgConnections::new(
            options.clone(),
            settings.max_connections,
            settings.reserved_connections,
            settings.acquire_timeout,
        ));
        let locks = PgConnections::new(
            options.clone(),
            settings.lock_connections,
            0,
            settings.acquire_timeout,
        );
        Ok(Self {
            codes: codes::CodeInserts::new(conns.clone(), notifier),
            conns,
            locks,
            options,
        })
    }
}

fn connect_options(kind: &DatabaseKind) -> Result<PgConnectOptions, StoreError> {
    let options = match kind {
        DatabaseKind::PostgresUrl(url) => PgConnectOptions::from_str(url.expose_secret())
            .map_err(|_| StoreError::Corrupt("DATABASE_URL cannot be used".into()))?,
        DatabaseKind::PostgresParams {
            host,
            port,
            user,
            password,
            dbname,
            sslmode,
        } => {
            let mut o = PgConnectOptions::new_without_pgpass()
                .host(host)
                .port(*port)
                .username(user)
                .database(dbname);
            if let Some(pw) = password {
                o = o.password(pw.expose_secret());
            }
            if let Some(mode) = sslmode {
                let mode = PgSslMode::from_str(mode)
                    .map_err(|_| StoreError::Corrupt(format!("PGSSLMODE {mode:?} is unknown")))?;
                o = o.ssl_mode(mode);
            }
            o
        }
        DatabaseKind::Sqlite(_) => {
            return Err(StoreError::Corrupt(
                "a SQLite setting reached the PostgreSQL store".into(),
            ))
        }
    };
    Ok(options.application_name("cafe24-oauth"))
}

async fn apply_pending(conn: &mut sqlx::PgConnection) -> Result<(), StoreError> {
    (&mut *conn)
        .execute(sqlx::raw_sql(
            "CREATE SCHEMA IF NOT EXISTS cafe24;
             CREATE TABLE IF NOT EXISTS cafe24.schema_migrations (
                 version bigint PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now())",
        ))
        .await?;
    let applied: Vec<(i64, String)> =
        sqlx::query_as("SELECT version, checksum FROM cafe24.schema_migrations")
            .fetch_all(&mut *conn)
            .await?;
    for m in migrations::pending(migrations::POSTGRES, &applied)? {
        let mut tx = conn.begin().await?;
        let failed = |source| StoreError::Migration {
            version: m.version,
            name: m.name,
            source,
        };
        (&mut *tx)
            .execute(sqlx::raw_sql(m.sql))
            .await
            .map_err(failed)?;
        sqlx::query(
            "INSERT INTO cafe24.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(m.checksum())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(version = m.version, name = m.name, "applied migration");
    }
    Ok(())
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn migrate(&self) -> Result<Vec<AppliedMigration>, StoreError> {
        let mut lease = self.conns.acquire().await?;
        let conn = lease.conn();
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await?;
        let result = apply_pending(conn).await;
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await;
        result?;
        lease.finish(unlocked)?;
        self.applied_migrations().await
    }

    async fn applied_migrations(&self) -> Result<Vec<AppliedMigration>, StoreError> {
        let mut lease = self.conns.acquire().await?;
        let rows: Result<Vec<(i64, String, chrono::DateTime<chrono::Utc>)>, _> = sqlx::query_as(
            "SELECT version, name, applied_at FROM cafe24.schema_migrations ORDER BY version",
        )
        .fetch_all(lease.conn())
        .await;
        Ok(lease
            .finish(rows)?
            .into_iter()
            .map(|(version, name, applied_at)| AppliedMigration {
                version,
                name,
                applied_at,
            })
            .collect())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut lease = self.conns.acquire_as(Priority::Foreground).await?;
        let result = sqlx::query("SELECT 1").execute(lease.conn()).await;
        lease.finish(result).map(drop)
    }

    async fn insert_authorization_code(
        &self,
        new: NewAuthorizationCode<'_>,
    ) -> Result<CodeInsert, StoreError> {
        // The cap counts codes still waiting that are young enough to be exchanged (older ones
        // are expired by the queue, or belong to no worker at all); two racing inserts may both
        // pass it: it bounds floods, it is not an exact count.
        if let Some(id) = self.codes.insert(new).await? {
            return Ok(CodeInsert::Stored { id });
        }
        let mut lease = self.conns.acquire_as(Priority::Foreground).await?;
        let used: Result<bool, _> = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM cafe24.authorization_codes WHERE state = $1)",
        )
        .bind(new.state)
        .fetch_one(lease.conn())
        .await;
        Ok(if lease.finish(used)? {
            CodeInsert::StateAlreadyUsed
        } else {
            CodeInsert::TooManyPending
        })
    }

    async fn authorization_code(
        &self,
        id: i64,
    ) -> Result<Option<AuthorizationCodeRecord>, StoreError> {
        let mut lease = self.conns.acquire().await?;
        let row: Result<Option<CodeRow>, _> = sqlx::query_as(&format!(
            "SELECT {CODE_COLUMNS} FROM cafe24.authorization_codes WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(lease.conn())
        .await;
        lease
            .finish(row)?
            .map(AuthorizationCodeRecord::try_from)
            .transpose()
    }

    async fn expire_codes(&self, window: Duration) -> Result<u64, StoreError> {
        lifecycle::expire_codes(&self.conns, window).await
    }

    async fn claim_codes(
        &self,
        window: Duration,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedCode>, StoreError> {
        lifecycle::claim_codes(&self.conns, window, lease, limit).await
    }

    async fn retry_code(&self, claim: CodeClaim, error: &str) -> Result<bool, StoreError> {
        lifecycle::retry_code(&self.conns, claim, error).await
    }

    async fn finish_code(
        &self,
        claim: CodeClaim,
        status: CodeStatus,
        error: &str,
    ) -> Result<bool, StoreError> {
        lifecycle::finish_code(&self.conns, claim, status, error).await
    }

    async fn complete_exchange(
        &self,
        claim: CodeClaim,
        tokens: &NewTokens,
    ) -> Result<i64, StoreError> {
        lifecycle::complete_exchange(&self.conns, claim, tokens).await
    }

    async fn replace_tokens(
        &self,
        mall: &MallId,
        expected_version: i64,
        new: &NewTokens,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        lifecycle::replace_tokens(&self.conns, mall, expected_version, new, at).await
    }

    async fn code_wakeups(&self) -> Result<CodeWakeups, StoreError> {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with(self.options.clone());
        let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
        listener.listen(crate::wakeups::CHANNEL).await?;
        Ok(CodeWakeups::listening(listener))
    }

    async fn take_api_call(
        &self,
        mall: &MallId,
        budget: ApiBudget,
        max_wait: Duration,
    ) -> Result<Option<BudgetTake>, StoreError> {
        let mut lease = self.conns.acquire_as(Priority::Foreground).await?;
        let row: Result<(f64, f64), _> =
            sqlx::query_as("SELECT wait_secs, level FROM cafe24.take_api_call($1, $2, $3, $4)")
                .bind(mall.as_str())
                .bind(budget.size)
                .bind(budget.drain_per_sec)
                .bind(max_wait.as_secs_f64())
                .fetch_one(lease.conn())
                .await;
        let (wait, level) = lease.finish(row)?;
        Ok(Some(BudgetTake::from_row(wait, level)))
    }

    async fn observe_api_limit(
        &self,
        mall: &MallId,
        budget: ApiBudget,
        used: Option<f64>,
        pause: Option<Duration>,
    ) -> Result<(), StoreError> {
        let mut lease = self.conns.acquire_as(Priority::Foreground).await?;
        let done = sqlx::query("SELECT cafe24.observe_api_limit($1, $2, $3, $4)")
            .bind(mall.as_str())
            .bind(used)
            .bind(budget.drain_per_sec)
            .bind(pause.map(|p| p.as_secs_f64()))
            .execute(lease.conn())
            .await;
        lease.finish(done)?;
        Ok(())
    }

    async fn tokens(&self, mall: &MallId) -> Result<Option<TokenRecord>, StoreError> {
        let mut lease = self.conns.acquire().await?;
        let row = lifecycle::read_tokens(lease.conn(), mall).await;
        lease.finish(row)?.map(TokenRecord::try_from).transpose()
    }

    async fn all_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        lifecycle::all_tokens(&self.conns).await
    }

    async fn malls_due(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<MallId>, StoreError> {
        lifecycle::malls_due(&self.conns, before, limit).await
    }

    async fn lock_mall<'a>(
        &'a self,
        mall: &MallId,
        wait: Duration,
    ) -> Result<Box<dyn MallLock + 'a>, StoreError> {
        Ok(Box::new(
            lifecycle::PgMallLock::acquire(&self.locks, mall, wait).await?,
        ))
    }

    async fn record_event(
        &self,
        mall: &MallId,
        kind: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        lifecycle::record_event(&self.conns, mall, kind, detail).await
    }

    async fn events(&self, after: i64, limit: u32) -> Result<Vec<MallEvent>, StoreError> {
        lifecycle::events(&self.conns, after, limit).await
    }

    async fn insert_webhook_event(
        &self,
        new: NewWebhookEvent<'_>,
    ) -> Result<WebhookInsert, StoreError> {
        webhooks::insert(&self.conns, new).await
    }

    async fn claim_webhook_events(
        &self,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<WebhookEventRecord>, StoreError> {
        webhooks::claim(&self.conns, limit, lease).await
    }

    async fn finish_webhook_event(
        &self,
        id: i64,
        outcome: &DispatchOutcome,
    ) -> Result<(), StoreError> {
        webhooks::finish(&self.conns, id, outcome).await
    }

    async fn record_logged_delivery(
        &self,
        new: NewWebhookEvent<'_>,
    ) -> Result<LoggedDelivery, StoreError> {
        webhooks::record_logged(&self.conns, new).await
    }

    async fn webhook_events(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<WebhookEventRecord>, StoreError> {
        webhooks::list(&self.conns, after, limit).await
    }

    async fn close(&self) {
        self.conns.close();
        self.locks.close();
    }
}
