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
    ClaimedCode, CodeStatus, MallEvent, MallLock, MallStatus, NewTokens, StoreError, TokenRecord,
};

const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";
/// How long a SQLite row lease lasts if its holder dies without releasing it.
const LEASE: Duration = Duration::from_secs(120);

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
                      ORDER BY id LIMIT ?)
         RETURNING id, code, mall_id, (julianday('now') - julianday(created_at)) * 86400.0, attempts"
    ))
    .bind(ago(window))
    .bind(ago(lease))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(ClaimedCode::try_from).collect()
}

pub(super) async fn retry_code(pool: &SqlitePool, id: i64, error: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE authorization_codes SET status = 'pending', claimed_at = NULL, last_error = ? WHERE id = ?")
        .bind(error)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn finish_code(
    pool: &SqlitePool,
    id: i64,
    status: CodeStatus,
    error: &str,
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "UPDATE authorization_codes SET status = ?, code = '', last_error = ?, processed_at = {NOW} WHERE id = ?"
    ))
    .bind(status.as_str())
    .bind(error)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn complete_exchange(
    pool: &SqlitePool,
    code_id: i64,
    t: &NewTokens,
) -> Result<i64, StoreError> {
    let mut tx = pool.begin().await?;
    let version: i64 = sqlx::query_scalar(&format!(
        "INSERT INTO tokens (mall_id, shop_no, user_id, client_id, scopes, key_id, access_token,
             access_expires_at, refresh_token, refresh_expires_at, issued_at, status, version, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', 1, {NOW})
         ON CONFLICT (mall_id) DO UPDATE SET
             shop_no = excluded.shop_no, user_id = excluded.user_id, client_id = excluded.client_id,
             scopes = excluded.scopes, key_id = excluded.key_id, access_token = excluded.access_token,
             access_expires_at = excluded.access_expires_at, refresh_token = excluded.refresh_token,
             refresh_expires_at = excluded.refresh_expires_at, issued_at = excluded.issued_at,
             status = 'active', version = tokens.version + 1, refresh_started_at = NULL,
             last_error = NULL, updated_at = {NOW}
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
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(&format!(
        "UPDATE authorization_codes SET status = 'exchanged', code = '', last_error = NULL, processed_at = {NOW} WHERE id = ?"
    ))
    .bind(code_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO mall_events (mall_id, kind) VALUES (?, 'installed')")
        .bind(t.mall_id.as_str())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(version)
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
/// `lock_expires_at`). A holder that dies leaves it to expire after [`LEASE`].
pub(super) struct SqliteMallLock<'a> {
    pool: &'a SqlitePool,
    mall: MallId,
    owner: String,
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
            let now = Utc::now();
            let took = sqlx::query(
                "UPDATE tokens SET lock_owner = ?, lock_expires_at = ?
                 WHERE mall_id = ? AND (lock_owner IS NULL OR lock_expires_at < ?)",
            )
            .bind(&owner)
            .bind(ts(now
                + chrono::Duration::from_std(LEASE)
                    .unwrap_or(chrono::Duration::zero())))
            .bind(mall.as_str())
            .bind(ts(now))
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
                return Ok(Self {
                    pool,
                    mall: mall.clone(),
                    owner,
                });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StoreError::LockTimeout);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[async_trait::async_trait]
impl MallLock for SqliteMallLock<'_> {
    async fn current(&mut self) -> Result<Option<TokenRecord>, StoreError> {
        read_tokens(self.pool, &self.mall).await
    }

    async fn journal_refresh(&mut self, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("UPDATE tokens SET refresh_started_at = ? WHERE mall_id = ?")
            .bind(ts(at))
            .bind(self.mall.as_str())
            .execute(self.pool)
            .await?;
        Ok(())
    }

    async fn replace_tokens(
        &mut self,
        expected_version: i64,
        t: &NewTokens,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(&format!(
            "UPDATE tokens SET
                 shop_no = COALESCE(?, shop_no), user_id = COALESCE(?, user_id), scopes = ?, key_id = ?,
                 access_token = ?, access_expires_at = ?, refresh_token = ?, refresh_expires_at = ?,
                 issued_at = ?, version = version + 1, refresh_started_at = NULL, last_refreshed_at = ?,
                 last_error = NULL, updated_at = {NOW}
             WHERE mall_id = ? AND version = ?"
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
        .bind(self.mall.as_str())
        .bind(expected_version)
        .execute(self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn set_status(
        &mut self,
        status: MallStatus,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "UPDATE tokens SET status = ?1, last_error = ?2, refresh_started_at = NULL, updated_at = {NOW},
                 access_token = CASE WHEN ?1 = 'revoked' THEN x'' ELSE access_token END,
                 refresh_token = CASE WHEN ?1 = 'revoked' THEN x'' ELSE refresh_token END
             WHERE mall_id = ?3"
        ))
        .bind(status.as_str())
        .bind(error)
        .bind(self.mall.as_str())
        .execute(self.pool)
        .await?;
        Ok(())
    }

    async fn note_error(&mut self, error: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE tokens SET last_error = ? WHERE mall_id = ?")
            .bind(error)
            .bind(self.mall.as_str())
            .execute(self.pool)
            .await?;
        Ok(())
    }

    async fn release(self: Box<Self>) -> Result<(), StoreError> {
        sqlx::query("UPDATE tokens SET lock_owner = NULL, lock_expires_at = NULL WHERE mall_id = ? AND lock_owner = ?")
            .bind(self.mall.as_str())
            .bind(&self.owner)
            .execute(self.pool)
            .await?;
        Ok(())
    }
}
