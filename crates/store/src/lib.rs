//! Storage for cafe24-oauth: one [`Store`] trait with a PostgreSQL implementation (schema
//! `cafe24`, for production and anything with more than one process) and a SQLite one (the
//! embedded default). The same behaviour tests run against both.

mod budget;
mod error;
mod migrations;
mod notifier;
mod pg_pool;
mod postgres;
mod records;
mod sqlite;
mod wakeups;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cafe24_core::settings::{DatabaseKind, DatabaseSettings};
use cafe24_core::MallId;
use chrono::{DateTime, Utc};

pub use budget::{ApiBudget, BudgetTake};
pub use error::StoreError;
pub use migrations::{AppliedMigration, Migration};
pub use postgres::PostgresStore;
pub use records::{
    AuthorizationCodeRecord, ClaimedCode, CodeClaim, CodeInsert, CodeStatus, MallEvent, MallStatus,
    NewAuthorizationCode, NewTokens, TokenRecord,
};
pub use records::{
    DispatchOutcome, LoggedDelivery, NewWebhookEvent, WebhookEventRecord, WebhookInsert,
};
pub use sqlite::SqliteStore;
pub use wakeups::CodeWakeups;

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
    /// ([`CodeInsert::StateAlreadyUsed`]): that is what makes a state single use. A mall with
    /// `max_pending` codes already waiting gets [`CodeInsert::TooManyPending`]. This is the
    /// request path: it may use the connections reserved for it.
    async fn insert_authorization_code(
        &self,
        new: NewAuthorizationCode<'_>,
    ) -> Result<CodeInsert, StoreError>;

    async fn authorization_code(
        &self,
        id: i64,
    ) -> Result<Option<AuthorizationCodeRecord>, StoreError>;

    // --- the exchange queue ---

    /// Marks codes older than `window` that were never exchanged `expired` and clears them, so
    /// they are never sent to Cafe24. Returns how many.
    async fn expire_codes(&self, window: Duration) -> Result<u64, StoreError>;

    /// Claims up to `limit` codes younger than `window` that are pending (or whose claim is older
    /// than `lease`, left by a crashed worker), newest first, marking them `processing` and
    /// counting the attempt. Concurrent workers never claim the same row. Newest first: under a
    /// flood the codes with the most time left go first, and old junk expires instead of
    /// pushing a fresh install past Cafe24's 60 seconds.
    async fn claim_codes(
        &self,
        window: Duration,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedCode>, StoreError>;

    /// Puts a claimed code back for another attempt, noting why. Fenced by the claim: `false`
    /// (nothing written) when the claim is no longer this one.
    async fn retry_code(&self, claim: CodeClaim, error: &str) -> Result<bool, StoreError>;

    /// Ends a code as `failed` or `expired` and clears it. Fenced by the claim like
    /// [`Store::retry_code`].
    async fn finish_code(
        &self,
        claim: CodeClaim,
        status: CodeStatus,
        error: &str,
    ) -> Result<bool, StoreError>;

    /// Atomically stores a mall's new tokens (a new grant: status active, version + 1,
    /// `installed_at` now) and marks the code exchanged and cleared (if the claim is still
    /// this one). Returns the new version. Safe to retry: the grant is stored again.
    async fn complete_exchange(
        &self,
        claim: CodeClaim,
        tokens: &NewTokens,
    ) -> Result<i64, StoreError>;

    /// A way to wait for new codes: PostgreSQL LISTEN/NOTIFY, or nothing (poll) on SQLite.
    async fn code_wakeups(&self) -> Result<CodeWakeups, StoreError>;

    // --- tokens ---

    async fn tokens(&self, mall: &MallId) -> Result<Option<TokenRecord>, StoreError>;

    async fn all_tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;

    /// Writes a refreshed pair if the row is still at `expected_version` and not revoked
    /// (compare-and-swap, on any connection): how a refresh whose lock connection died still
    /// stores the pair Cafe24 rotated. `false`: a newer pair is stored, nothing was written.
    async fn replace_tokens(
        &self,
        mall: &MallId,
        expected_version: i64,
        new: &NewTokens,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Active malls whose refresh token expires before `before`, soonest first.
    async fn malls_due(&self, before: DateTime<Utc>, limit: u32)
        -> Result<Vec<MallId>, StoreError>;

    /// Takes the mall's exclusive lock, across processes: a PostgreSQL advisory lock held on a
    /// connection of the lock pool, or a renewed lease on the row in SQLite. Waits at most
    /// `wait`.
    async fn lock_mall<'a>(
        &'a self,
        mall: &MallId,
        wait: Duration,
    ) -> Result<Box<dyn MallLock + 'a>, StoreError>;

    async fn record_event(&self, mall: &MallId, kind: &str, detail: &str)
        -> Result<(), StoreError>;

    /// Events with an id above `after`, oldest first.
    async fn events(&self, after: i64, limit: u32) -> Result<Vec<MallEvent>, StoreError>;

    // --- webhook events ---

    /// Stores a delivery once: a second delivery with the same dedupe key is a duplicate.
    async fn insert_webhook_event(
        &self,
        new: NewWebhookEvent<'_>,
    ) -> Result<WebhookInsert, StoreError>;

    /// Claims up to `limit` events due for dispatch (received, or retry whose time has come);
    /// a claim older than `lease` (its worker died) is taken over.
    async fn claim_webhook_events(
        &self,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<WebhookEventRecord>, StoreError>;

    async fn finish_webhook_event(
        &self,
        id: i64,
        outcome: &DispatchOutcome,
    ) -> Result<(), StoreError>;

    /// A delivery Cafe24 logged: confirms the stored event, or stores it if it never arrived.
    async fn record_logged_delivery(
        &self,
        new: NewWebhookEvent<'_>,
    ) -> Result<LoggedDelivery, StoreError>;

    /// Events with an id above `after`, oldest first.
    async fn webhook_events(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<WebhookEventRecord>, StoreError>;

    /// Takes one Admin API call from the mall's fleet-wide budget (contract §6.8): how long to
    /// wait before sending, or [`BudgetTake::TooLong`] (nothing charged) past `max_wait`.
    /// `Ok(None)`: this store keeps no shared budget (SQLite: one host, pace in process).
    async fn take_api_call(
        &self,
        _mall: &MallId,
        _budget: ApiBudget,
        _max_wait: Duration,
    ) -> Result<Option<BudgetTake>, StoreError> {
        Ok(None)
    }

    /// Tells the mall's shared budget what Cafe24 said: at least `used` calls in its bucket,
    /// and no call for `pause`. Never lowers either. A no-op where budgets are not shared.
    async fn observe_api_limit(
        &self,
        _mall: &MallId,
        _budget: ApiBudget,
        _used: Option<f64>,
        _pause: Option<Duration>,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    /// Closes the pool; later calls fail.
    async fn close(&self);
}

/// A mall's row, held exclusively. Everything that writes tokens for an existing grant does it
/// through this lock, so refreshes never race. Always end with [`MallLock::release`]; a lock
/// that is dropped (a crash) is freed by the database (connection closed) or its lease stops
/// being renewed and expires soon after (SQLite).
#[async_trait]
pub trait MallLock: Send {
    /// The row as it is now, read after the lock was taken.
    async fn current(&mut self) -> Result<Option<TokenRecord>, StoreError>;

    /// Durably notes that a refresh is about to be sent (`refresh_started_at`). Until it is
    /// cleared, or older than the token call can take, the refresh counts as in flight and no
    /// one else sends the mall's refresh token.
    async fn journal_refresh(&mut self, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Writes refreshed tokens if the row is still at `expected_version` and not revoked
    /// (compare-and-swap); `false` means a newer pair is stored and nothing was written.
    async fn replace_tokens(
        &mut self,
        expected_version: i64,
        new: &NewTokens,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Sets the status (with a reason) if the row is still at `expected_version`; `revoked`
    /// also wipes the ciphertext. `false`: the row changed (a new grant), nothing was written.
    async fn set_status(
        &mut self,
        status: MallStatus,
        error: Option<&str>,
        expected_version: i64,
    ) -> Result<bool, StoreError>;

    /// Notes a failed attempt without changing the status. `attempt_over`: Cafe24 answered, so
    /// nothing is in flight and the journal is cleared; otherwise (no answer: the refresh token
    /// may have been rotated) the journal stays and fences the next sender.
    async fn note_error(&mut self, error: &str, attempt_over: bool) -> Result<(), StoreError>;

    async fn release(self: Box<Self>) -> Result<(), StoreError>;
}

/// Opens the configured store. PostgreSQL pools connect lazily, so a server starts (and reports
/// not-ready) while its database is down; SQLite opens (and creates) its file at once.
pub async fn connect(settings: &DatabaseSettings) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match &settings.kind {
        DatabaseKind::Sqlite(path) => Arc::new(SqliteStore::open(path, settings).await?),
        _ => Arc::new(PostgresStore::connect_lazy(settings)?),
    })
}
