//! SQLite queries for the exchange queue, token rows, the per-mall lease lock and events.
//! Instants are stored as `YYYY-MM-DDTHH:MM:SS.sssZ` text, the format of SQLite's own
//! `strftime('%Y-%m-%dT%H:%M:%fZ')`, so they compare correctly as strings.

use std::time::Duration;

use cafe24_core::MallId;
use chrono::{DateTime, Utc};
use rand::Rng;
use sqlx::SqlitePool;

use crate::records::{parse_mall, ClaimRow, EventRow, TokenRow, TOKEN_COLUMNS};
use crate::{
    ClaimedCode, CodeClaim, CodeStatus, MallEvent, MallLock, MallStatus, NewTokens, StoreError,
    TokenRecord,
};

const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";
/// The end of a row lease, by SQLite's clock (one clock for every process): 10 seconds after
/// it was taken or last renewed, so a holder that dies (or is suspended) frees the mall soon.
const LEASE_END: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+10 seconds')";
/// Its holder renews the lease this often while it holds it.
const RENEW_EVERY: Duration = Duration::from_secs(3);

pub(crate) fn ts(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn ago(d: Duration) -> String {
    ts(Utc::now() - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero()))
}

pub(super) async fn expire_codes(pool: &SqlitePool, window: Duration) -> Result<u64, StoreError> {
    let r = sqlx::query(&format!(
        "UPDATE authorization_codes SET status = 'expired', code = '', processed_at = {NOW},
             last_error = 'not exchanged within the code lifetime'
         WHERE status IN ('pending', 'processing') AND created_at < ?"
    ))
    .bind(ago(window))
    .execute(pool)
    .await?;
    Ok(r.rows_affected())
}

pub(super) async fn claim_codes(
    pool: &SqlitePool,
    window: Duration,
    lease: Duration,
    limit: u32,
) -> Result<Vec<ClaimedCode>, StoreError> {
    // One UPDATE is atomic in SQLite (it holds the write lock), so two workers never claim a row twice.
    let rows: Vec<ClaimRow> = sqlx::query_as(&format!(
        "UPDATE authorization_codes SET status = 'processing', attempts = attempts + 1, claimed_at = {NOW}
         WHERE id IN (SELECT id FROM authorization_codes
                      WHERE mall_id IS NOT NULL AND created_at >= ?
                        AND (status = 'pending' OR (status = 'processing' AND claimed_at < ?))
                      ORDER BY created_at DESC, id DESC LIMIT ?)
         RETURNING id, code, mall_id, (julianday('now') - julianday(created_at)) * 86400.0, attempts"
    ))
    .bind(ago(window))
    .bind(ago(lease))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(ClaimedCode::try_from).collect()
}

pub(super) async fn retry_code(
    pool: &SqlitePool,
    claim: CodeClaim,
    error: &str,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE authorization_codes SET status = 'pending', claimed_at = NULL, last_error = ?
         WHERE id = ? AND attempts = ? AND status = 'processing'",
    )
    .bind(error)
    .bind(claim.id)
    .bind(claim.attempt)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub(super) async fn finish_code(
    pool: &SqlitePool,
    claim: CodeClaim,
    status: CodeStatus,
    error: &str,
) -> Result<bool, StoreError> {
    let r = sqlx::query(&format!(
        "UPDATE authorization_codes SET status = ?, code = '', last_error = ?, processed_at = {NOW}
         WHERE id = ? AND attempts = ? AND status = 'processing'"
    ))
    .bind(status.as_str())
    .bind(error)
    .bind(claim.id)
    .bind(claim.attempt)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub(super) async fn complete_exchange(
    pool: &SqlitePool,
    claim: CodeClaim,
    t: &NewTokens,
) -> Result<i64, StoreError> {
    let mut tx = pool.begin().await?;
    let version: i64 = sqlx::query_scalar(&format!(
        "INSERT INTO tokens (mall_id, shop_no, user_id, client_id, scopes, key_id, access_token,
             access_expires_at, refresh_token, refresh_expires_at, issued_at, status, version, updated_at,
             installed_at, last_error)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', 1, {NOW}, {NOW}, ?)
         ON CONFLICT (mall_id) DO UPDATE SET
             shop_no = excluded.shop_no, user_id = excluded.user_id, client_id = excluded.client_id,
             scopes = excluded.scopes, key_id = excluded.key_id, access_token = excluded.access_token,
             access_expires_at = excluded.access_expires_at, refresh_token = excluded.refresh_token,
             refresh_expires_at = excluded.refresh_expires_at, issued_at = excluded.issued_at,
             status = 'active', version = tokens.version + 1, refresh_started_at = NULL,
             last_error = excluded.last_error, updated_at = {NOW}, installed_at = {NOW}
         RETURNING version"
    ))
    .bind(t.mall_id.as_str())
    .bind(&t.shop_no)
    .bind(&t.user_id)
    .bind(&t.client_id)
    .bind(t.scopes.join(","))
    .bind(&t.key_id)
    .bind(&t.access_ciphertext)
    .bind(ts(t.access_expires_at))
    .bind(&t.refresh_ciphertext)
    .bind(ts(t.refresh_expires_at))
    .bind(t.issued_at.map(ts))
    .bind(&t.note)
    .fetch_one(&mut *tx)
    .await?;
    // Fenced by the claim; the tokens are stored either way (see the PostgreSQL store).
    sqlx::query(&format!(
        "UPDATE authorization_codes SET status = 'exchanged', code = '', last_error = NULL, processed_at = {NOW}
         WHERE id = ? AND attempts = ?"
    ))
    .bind(claim.id)
    .bind(claim.attempt)
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO mall_events (mall_id, kind) VALUES (?, 'installed')")
        .bind(t.mall_id.as_str())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(version)
}

/// Compare-and-swap of a refreshed pair (see the PostgreSQL store's `replace_tokens_on`).
pub(super) async fn replace_tokens(
    pool: &SqlitePool,
    mall: &MallId,
    expected_version: i64,
    t: &NewTokens,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let r = sqlx::query(&format!(
        "UPDATE tokens SET
             shop_no = COALESCE(?, shop_no), user_id = COALESCE(?, user_id), scopes = ?, key_id = ?,
             access_token = ?, access_expires_at = ?, refresh_token = ?, refresh_expires_at = ?,
             issued_at = ?, version = version + 1, refresh_started_at = NULL, last_refreshed_at = ?,
             last_error = ?, status = 'active', updated_at = {NOW}
         WHERE mall_id = ? AND version = ? AND status <> 'revoked'"
    ))
    .bind(&t.shop_no)
    .bind(&t.user_id)
    .bind(t.scopes.join(","))
    .bind(&t.key_id)
    .bind(&t.access_ciphertext)
    .bind(ts(t.access_expires_at))
    .bind(&t.refresh_ciphertext)
    .bind(ts(t.refresh_expires_at))
    .bind(t.issued_at.map(ts))
    .bind(ts(at))
    .bind(&t.note)
    .bind(mall.as_str())
    .bind(expected_version)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub(super) async fn read_tokens(
    pool: &SqlitePool,
    mall: &MallId,
) -> Result<Option<TokenRecord>, StoreError> {
    let row: Option<TokenRow> = sqlx::query_as(&format!(
        "SELECT {TOKEN_COLUMNS} FROM tokens WHERE mall_id = ?"
    ))
    .bind(mall.as_str())
    .fetch_optional(pool)
    .await?;
    row.map(TokenRecord::try_from).transpose()
}

pub(super) async fn all_tokens(pool: &SqlitePool) -> Result<Vec<TokenRecord>, StoreError> {
    let rows: Vec<TokenRow> = sqlx::query_as(&format!(
        "SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY mall_id"
    ))
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(TokenRecord::try_from).collect()
}

pub(super) async fn malls_due(
    pool: &SqlitePool,
    before: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<MallId>, StoreError> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT mall_id FROM tokens WHERE status = 'active' AND refresh_expires_at < ? ORDER BY refresh_expires_at LIMIT ?",
    )
    .bind(ts(before))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.iter().map(|m| parse_mall(m)).collect()
}

pub(super) async fn record_event(
    pool: &SqlitePool,
    mall: &MallId,
    kind: &str,
    detail: &str,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO mall_events (mall_id, kind, detail) VALUES (?, ?, ?)")
        .bind(mall.as_str())
        .bind(kind)
        .bind(detail)
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn events(
    pool: &SqlitePool,
    after: i64,
    limit: u32,
) -> Result<Vec<MallEvent>, StoreError> {
    let rows: Vec<EventRow> =
        sqlx::query_as("SELECT id, mall_id, kind, detail, created_at FROM mall_events WHERE id > ? ORDER BY id LIMIT ?")
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
    rows.into_iter().map(MallEvent::try_from).collect()
}

/// SQLite has no advisory locks: the lock is a lease written on the row (`lock_owner`,
/// `lock_expires_at`), judged by SQLite's clock, renewed every few seconds by its holder while
/// held, so a holder that dies frees the mall within 10 seconds ([`LEASE_END`]). Writes that could undo
/// another holder's work (the journal, the status, errors) are fenced by `lock_owner`; a
/// refreshed pair is fenced by the row version instead, which is what keeps it safe to store
/// even after the lease was lost.
pub(super) struct SqliteMallLock<'a> {
    pool: &'a SqlitePool,
    mall: MallId,
    owner: String,
    renewal: tokio::task::JoinHandle<()>,
}

impl<'a> SqliteMallLock<'a> {
    pub(super) async fn acquire(
        pool: &'a SqlitePool,
        mall: &MallId,
        wait: Duration,
    ) -> Result<Self, StoreError> {
        let owner = format!("{:016x}", rand::thread_rng().gen::<u64>());
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let took = sqlx::query(&format!(
                "UPDATE tokens SET lock_owner = ?, lock_expires_at = {LEASE_END}
                 WHERE mall_id = ? AND (lock_owner IS NULL OR lock_expires_at < {NOW})"
            ))
            .bind(&owner)
            .bind(mall.as_str())
            .execute(pool)
            .await?
            .rows_affected();
            let exists = || async {
                sqlx::query_scalar::<_, i64>("SELECT count(*) FROM tokens WHERE mall_id = ?")
                    .bind(mall.as_str())
                    .fetch_one(pool)
                    .await
            };
            // No row: nothing to guard; `current()` will say so.
            if took == 1 || exists().await? == 0 {
                let renewal = tokio::spawn(renew(pool.clone(), mall.clone(), owner.clone()));
                return Ok(Self {
                    pool,
                    mall: mall.clone(),
                    owner,
                    renewal,
                });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StoreError::LockTimeout);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs an owner-fenced update; `StoreError::LockLost` if the lease is no longer ours.
    async fn fenced(&self, sql: &str, binds: &[Option<&str>]) -> Result<(), StoreError> {
        let mut q = sqlx::query(sql);
        for b in binds {
            q = q.bind(*b);
        }
        let r = q
            .bind(self.mall.as_str())
            .bind(&self.owner)
            .execute(self.pool)
            .await?;
        if r.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::LockLost)
        }
    }
}

/// Extends the lease while the lock is held; ends when the lock is released or dropped (or the
/// lease was lost, which the fenced writes then report).
async fn renew(pool: SqlitePool, mall: MallId, owner: String) {
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        let renewed = sqlx::query(&format!(
            "UPDATE tokens SET lock_expires_at = {LEASE_END} WHERE mall_id = ? AND lock_owner = ?"
        ))
        .bind(mall.as_str())
        .bind(&owner)
        .execute(&pool)
        .await;
        match renewed {
            Ok(r) if r.rows_affected() == 1 => {}
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(mall_id = %mall, error = %e, "renewing the mall's lease failed")
            }
        }
    }
}

impl Drop for SqliteMallLock<'_> {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

#[async_trait::async_trait]
impl MallLock for SqliteMallLock<'_> {
    async fn current(&mut self) -> Result<Option<TokenRecord>, StoreError> {
        read_tokens(self.pool, &self.mall).await
    }

    async fn journal_refresh(&mut self, at: DateTime<Utc>) -> Result<(), StoreError> {
        let at = ts(at);
        self.fenced(
            "UPDATE tokens SET refresh_started_at = ? WHERE mall_id = ? AND lock_owner = ?",
            &[Some(&at)],
        )
        .await
    }

    async fn replace_tokens(
        &mut self,
        expected_version: i64,
        t: &NewTokens,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        replace_tokens(self.pool, &self.mall, expected_version, t, at).await
    }

    async fn set_status(
        &mut self,
        status: MallStatus,
        error: Option<&str>,
        expected_version: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(&format!(
            "UPDATE tokens SET status = ?1, last_error = ?2, refresh_started_at = NULL, updated_at = {NOW},
                 access_token = CASE WHEN ?1 = 'revoked' THEN x'' ELSE access_token END,
                 refresh_token = CASE WHEN ?1 = 'revoked' THEN x'' ELSE refresh_token END
             WHERE mall_id = ?3 AND version = ?4 AND lock_owner = ?5"
        ))
        .bind(status.as_str())
        .bind(error)
        .bind(self.mall.as_str())
        .bind(expected_version)
        .bind(&self.owner)
        .execute(self.pool)
        .await?;
        if r.rows_affected() == 1 {
            return Ok(true);
        }
        // Not written: a newer version (false), or the lease was lost (an error: nothing
        // may be decided on a lock we no longer hold).
        let owner: Option<Option<String>> =
            sqlx::query_scalar("SELECT lock_owner FROM tokens WHERE mall_id = ?")
                .bind(self.mall.as_str())
                .fetch_optional(self.pool)
                .await?;
        match owner {
            Some(Some(o)) if o == self.owner => Ok(false),
            None => Ok(false),
            _ => Err(StoreError::LockLost),
        }
    }

    async fn note_error(&mut self, error: &str, attempt_over: bool) -> Result<(), StoreError> {
        let sql = if attempt_over {
            "UPDATE tokens SET last_error = ?, refresh_started_at = NULL WHERE mall_id = ? AND lock_owner = ?"
        } else {
            "UPDATE tokens SET last_error = ? WHERE mall_id = ? AND lock_owner = ?"
        };
        self.fenced(sql, &[Some(error)]).await
    }

    async fn release(self: Box<Self>) -> Result<(), StoreError> {
        self.renewal.abort();
        sqlx::query("UPDATE tokens SET lock_owner = NULL, lock_expires_at = NULL WHERE mall_id = ? AND lock_owner = ?")
            .bind(self.mall.as_str())
            .bind(&self.owner)
            .execute(self.pool)
            .await?;
        Ok(())
    }
}
