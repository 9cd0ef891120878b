//! PostgreSQL queries for the exchange queue, token rows, the per-mall advisory lock and events.

use std::time::Duration;

use cafe24_core::MallId;
use chrono::{DateTime, Utc};
use sqlx::{Connection, PgConnection};

use crate::pg_pool::{Lease, PgConnections, Priority};
use crate::records::{parse_mall, ClaimRow, EventRow, TokenRow, TOKEN_COLUMNS};
use crate::{
    ClaimedCode, CodeClaim, CodeStatus, MallEvent, MallLock, MallStatus, NewTokens, StoreError,
    TokenRecord,
};

pub(super) async fn expire_codes(
    conns: &PgConnections,
    window: Duration,
) -> Result<u64, StoreError> {
    let mut lease = conns.acquire().await?;
    let r = sqlx::query(
        "UPDATE cafe24.authorization_codes
         SET status = 'expired', code = '', processed_at = now(),
             last_error = 'not exchanged within the code lifetime'
         WHERE status IN ('pending', 'processing') AND created_at < now() - make_interval(secs => $1)",
    )
    .bind(window.as_secs_f64())
    .execute(lease.conn())
    .await;
    Ok(lease.finish(r)?.rows_affected())
}

pub(super) async fn claim_codes(
    conns: &PgConnections,
    window: Duration,
    lease_for: Duration,
    limit: u32,
) -> Result<Vec<ClaimedCode>, StoreError> {
    let mut lease = conns.acquire().await?;
    let rows: Result<Vec<ClaimRow>, _> = sqlx::query_as(
        "UPDATE cafe24.authorization_codes AS c
         SET status = 'processing', attempts = c.attempts + 1, claimed_at = now()
         FROM (SELECT id FROM cafe24.authorization_codes
               WHERE mall_id IS NOT NULL
                 AND created_at >= now() - make_interval(secs => $1)
                 AND (status = 'pending'
                      OR (status = 'processing' AND claimed_at < now() - make_interval(secs => $2)))
               ORDER BY created_at DESC, id DESC LIMIT $3
               FOR UPDATE SKIP LOCKED) AS picked
         WHERE c.id = picked.id
         RETURNING c.id, c.code, c.mall_id, EXTRACT(EPOCH FROM (now() - c.created_at))::float8, c.attempts",
    )
    .bind(window.as_secs_f64())
    .bind(lease_for.as_secs_f64())
    .bind(i64::from(limit))
    .fetch_all(lease.conn())
    .await;
    lease
        .finish(rows)?
        .into_iter()
        .map(ClaimedCode::try_from)
        .collect()
}

pub(super) async fn retry_code(
    conns: &PgConnections,
    claim: CodeClaim,
    error: &str,
) -> Result<bool, StoreError> {
    let mut lease = conns.acquire().await?;
    let r = sqlx::query(
        "UPDATE cafe24.authorization_codes SET status = 'pending', claimed_at = NULL, last_error = $3
         WHERE id = $1 AND attempts = $2 AND status = 'processing'",
    )
    .bind(claim.id)
    .bind(claim.attempt)
    .bind(error)
    .execute(lease.conn())
    .await;
    Ok(lease.finish(r)?.rows_affected() == 1)
}

pub(super) async fn finish_code(
    conns: &PgConnections,
    claim: CodeClaim,
    status: CodeStatus,
    error: &str,
) -> Result<bool, StoreError> {
    let mut lease = conns.acquire().await?;
    let r = sqlx::query(
        "UPDATE cafe24.authorization_codes
         SET status = $3, code = '', last_error = $4, processed_at = now()
         WHERE id = $1 AND attempts = $2 AND status = 'processing'",
    )
    .bind(claim.id)
    .bind(claim.attempt)
    .bind(status.as_str())
    .bind(error)
    .execute(lease.conn())
    .await;
    Ok(lease.finish(r)?.rows_affected() == 1)
}

pub(super) async fn complete_exchange(
    conns: &PgConnections,
    claim: CodeClaim,
    t: &NewTokens,
) -> Result<i64, StoreError> {
    let mut lease = conns.acquire().await?;
    let r = complete_exchange_tx(lease.conn(), claim, t).await;
    lease.finish(r)
}

async fn complete_exchange_tx(
    conn: &mut PgConnection,
    claim: CodeClaim,
    t: &NewTokens,
) -> Result<i64, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let version: i64 = sqlx::query_scalar(
        "INSERT INTO cafe24.tokens (mall_id, shop_no, user_id, client_id, scopes, key_id, access_token,
             access_expires_at, refresh_token, refresh_expires_at, issued_at, status, version, updated_at,
             installed_at, last_error)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'active', 1, now(), now(), $12)
         ON CONFLICT (mall_id) DO UPDATE SET
             shop_no = EXCLUDED.shop_no, user_id = EXCLUDED.user_id, client_id = EXCLUDED.client_id,
             scopes = EXCLUDED.scopes, key_id = EXCLUDED.key_id, access_token = EXCLUDED.access_token,
             access_expires_at = EXCLUDED.access_expires_at, refresh_token = EXCLUDED.refresh_token,
             refresh_expires_at = EXCLUDED.refresh_expires_at, issued_at = EXCLUDED.issued_at,
             status = 'active', version = cafe24.tokens.version + 1, refresh_started_at = NULL,
             last_error = EXCLUDED.last_error, updated_at = now(), installed_at = now()
         RETURNING version",
    )
    .bind(t.mall_id.as_str())
    .bind(&t.shop_no)
    .bind(&t.user_id)
    .bind(&t.client_id)
    .bind(t.scopes.join(","))
    .bind(&t.key_id)
    .bind(&t.access_ciphertext)
    .bind(t.access_expires_at)
    .bind(&t.refresh_ciphertext)
    .bind(t.refresh_expires_at)
    .bind(t.issued_at)
    .bind(&t.note)
    .fetch_one(&mut *tx)
    .await?;
    // Fenced by the claim: if this worker's lease ran out and another claimed the code, that
    // claim's outcome is recorded by its holder. The tokens are stored either way: Cafe24 gave
    // them to us, and a code is single use, so no one else can hold a newer grant from it.
    sqlx::query(
        "UPDATE cafe24.authorization_codes
         SET status = 'exchanged', code = '', last_error = NULL, processed_at = now()
         WHERE id = $1 AND attempts = $2",
    )
    .bind(claim.id)
    .bind(claim.attempt)
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO cafe24.mall_events (mall_id, kind) VALUES ($1, 'installed')")
        .bind(t.mall_id.as_str())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(version)
}

pub(super) async fn read_tokens(
    conn: &mut PgConnection,
    mall: &MallId,
) -> Result<Option<TokenRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {TOKEN_COLUMNS} FROM cafe24.tokens WHERE mall_id = $1"
    ))
    .bind(mall.as_str())
    .fetch_optional(conn)
    .await
}

pub(super) async fn all_tokens(conns: &PgConnections) -> Result<Vec<TokenRecord>, StoreError> {
    let mut lease = conns.acquire().await?;
    let rows: Result<Vec<TokenRow>, _> = sqlx::query_as(&format!(
        "SELECT {TOKEN_COLUMNS} FROM cafe24.tokens ORDER BY mall_id"
    ))
    .fetch_all(lease.conn())
    .await;
    lease
        .finish(rows)?
        .into_iter()
        .map(TokenRecord::try_from)
        .collect()
}

pub(super) async fn malls_due(
    conns: &PgConnections,
    before: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<MallId>, StoreError> {
    let mut lease = conns.acquire().await?;
    let rows: Result<Vec<String>, _> = sqlx::query_scalar(
        "SELECT mall_id FROM cafe24.tokens WHERE status = 'active' AND refresh_expires_at < $1
         ORDER BY refresh_expires_at LIMIT $2",
    )
    .bind(before)
    .bind(i64::from(limit))
    .fetch_all(lease.conn())
    .await;
    lease.finish(rows)?.iter().map(|m| parse_mall(m)).collect()
}

pub(super) async fn record_event(
    conns: &PgConnections,
    mall: &MallId,
    kind: &str,
    detail: &str,
) -> Result<(), StoreError> {
    let mut lease = conns.acquire().await?;
    let r =
        sqlx::query("INSERT INTO cafe24.mall_events (mall_id, kind, detail) VALUES ($1, $2, $3)")
            .bind(mall.as_str())
            .bind(kind)
            .bind(detail)
            .execute(lease.conn())
            .await;
    lease.finish(r).map(drop)
}

pub(super) async fn events(
    conns: &PgConnections,
    after: i64,
    limit: u32,
) -> Result<Vec<MallEvent>, StoreError> {
    let mut lease = conns.acquire().await?;
    let rows: Result<Vec<EventRow>, _> = sqlx::query_as(
        "SELECT id, mall_id, kind, detail, created_at FROM cafe24.mall_events WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(lease.conn())
    .await;
    lease
        .finish(rows)?
        .into_iter()
        .map(MallEvent::try_from)
        .collect()
}

/// Compare-and-swap of a refreshed pair: written only if the row is still at
/// `expected_version` and not revoked. A valid pair from Cafe24 also revives a mall that was
/// flagged meanwhile (its flagger sent a token that our refresh had already rotated).
async fn replace_tokens_on(
    conn: &mut PgConnection,
    mall: &MallId,
    expected_version: i64,
    t: &NewTokens,
    at: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE cafe24.tokens SET
             shop_no = COALESCE($3, shop_no), user_id = COALESCE($4, user_id), scopes = $5, key_id = $6,
             access_token = $7, access_expires_at = $8, refresh_token = $9, refresh_expires_at = $10,
             issued_at = $11, version = version + 1, refresh_started_at = NULL, last_refreshed_at = $12,
             last_error = $13, status = 'active', updated_at = now()
         WHERE mall_id = $1 AND version = $2 AND status <> 'revoked'",
    )
    .bind(mall.as_str())
    .bind(expected_version)
    .bind(&t.shop_no)
    .bind(&t.user_id)
    .bind(t.scopes.join(","))
    .bind(&t.key_id)
    .bind(&t.access_ciphertext)
    .bind(t.access_expires_at)
    .bind(&t.refresh_ciphertext)
    .bind(t.refresh_expires_at)
    .bind(t.issued_at)
    .bind(at)
    .bind(&t.note)
    .execute(conn)
    .await?
    .rows_affected())
}

pub(super) async fn replace_tokens(
    conns: &PgConnections,
    mall: &MallId,
    expected_version: i64,
    t: &NewTokens,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut lease = conns.acquire().await?;
    let r = replace_tokens_on(lease.conn(), mall, expected_version, t, at).await;
    Ok(lease.finish(r)? == 1)
}

/// A session-level advisory lock on `hashtextextended('cafe24.mall:' || mall_id, 0)`, held on
/// a connection of the lock pool (never one the request path needs) for as long as the refresh
/// takes. If the process dies the connection closes and PostgreSQL frees the lock; the row's
/// journal (`refresh_started_at`) then tells the next holder a refresh may still be in flight.
pub(super) struct PgMallLock<'a> {
    lease: Lease<'a>,
    mall: MallId,
}

const LOCK: &str = "SELECT pg_advisory_lock(hashtextextended('cafe24.mall:' || $1, 0))";
const UNLOCK: &str = "SELECT pg_advisory_unlock(hashtextextended('cafe24.mall:' || $1, 0))";

impl<'a> PgMallLock<'a> {
    pub(super) async fn acquire(
        locks: &'a PgConnections,
        mall: &MallId,
        wait: Duration,
    ) -> Result<Self, StoreError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut lease = locks
            .acquire_by(Priority::Foreground, deadline)
            .await
            .map_err(|e| match e {
                StoreError::Unavailable(sqlx::Error::PoolTimedOut) => StoreError::LockTimeout,
                other => other,
            })?;
        let locking = sqlx::query(LOCK).bind(mall.as_str()).execute(lease.conn());
        match tokio::time::timeout_at(deadline, locking).await {
            // Dropping the unfinished lease closes its connection, which abandons the wait.
            Err(_) => Err(StoreError::LockTimeout),
            Ok(Err(e)) => Err(e.into()),
            Ok(Ok(_)) => Ok(Self {
                lease,
                mall: mall.clone(),
            }),
        }
    }

    async fn exec(
        &mut self,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<u64, StoreError> {
        Ok(query.execute(self.lease.conn()).await?.rows_affected())
    }
}

#[async_trait::async_trait]
impl MallLock for PgMallLock<'_> {
    async fn current(&mut self) -> Result<Option<TokenRecord>, StoreError> {
        read_tokens(self.lease.conn(), &self.mall)
            .await?
            .map(TokenRecord::try_from)
            .transpose()
    }

    async fn journal_refresh(&mut self, at: DateTime<Utc>) -> Result<(), StoreError> {
        let mall = self.mall.to_string();
        self.exec(
            sqlx::query("UPDATE cafe24.tokens SET refresh_started_at = $2 WHERE mall_id = $1")
                .bind(mall)
                .bind(at),
        )
        .await
        .map(drop)
    }

    async fn replace_tokens(
        &mut self,
        expected_version: i64,
        t: &NewTokens,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mall = self.mall.clone();
        Ok(replace_tokens_on(self.lease.conn(), &mall, expected_version, t, at).await? == 1)
    }

    async fn set_status(
        &mut self,
        status: MallStatus,
        error: Option<&str>,
        expected_version: i64,
    ) -> Result<bool, StoreError> {
        let mall = self.mall.to_string();
        let q = sqlx::query(
            "UPDATE cafe24.tokens SET status = $2, last_error = $3, refresh_started_at = NULL, updated_at = now(),
                 access_token = CASE WHEN $2 = 'revoked' THEN ''::bytea ELSE access_token END,
                 refresh_token = CASE WHEN $2 = 'revoked' THEN ''::bytea ELSE refresh_token END
             WHERE mall_id = $1 AND version = $4",
        )
        .bind(mall)
        .bind(status.as_str())
        .bind(error.map(str::to_owned))
        .bind(expected_version);
        Ok(self.exec(q).await? == 1)
    }

    async fn note_error(&mut self, error: &str, attempt_over: bool) -> Result<(), StoreError> {
        let mall = self.mall.to_string();
        self.exec(
            sqlx::query(
                "UPDATE cafe24.tokens SET last_error = $2,
                     refresh_started_at = CASE WHEN $3 THEN NULL ELSE refresh_started_at END
                 WHERE mall_id = $1",
            )
            .bind(mall)
            .bind(error.to_owned())
            .bind(attempt_over),
        )
        .await
        .map(drop)
    }

    async fn release(mut self: Box<Self>) -> Result<(), StoreError> {
        let r: Result<bool, _> = sqlx::query_scalar(UNLOCK)
            .bind(self.mall.as_str())
            .fetch_one(self.lease.conn())
            .await;
        match r {
            Ok(true) => self.lease.finish(Ok(())),
            // Never hand back a session that may still hold the lock: closing it frees it.
            Ok(false) => {
                self.lease.discard();
                Err(StoreError::Corrupt(
                    "the mall's advisory lock was not held at release".into(),
                ))
            }
            Err(e) => {
                self.lease.discard();
                Err(e.into())
            }
        }
    }
}
