//! SQLite queries for the webhook event queue (instants as text, see `lifecycle`).

use std::time::Duration;

use chrono::Utc;
use sqlx::SqlitePool;

use super::lifecycle::ts;
use crate::records::{WebhookRow, WEBHOOK_COLUMNS};
use crate::{
    DispatchOutcome, LoggedDelivery, NewWebhookEvent, StoreError, WebhookEventRecord, WebhookInsert,
};

const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

pub(super) async fn insert(
    pool: &SqlitePool,
    e: NewWebhookEvent<'_>,
) -> Result<WebhookInsert, StoreError> {
    let id: Option<i64> = sqlx::query_scalar(&format!(
        "INSERT INTO webhook_events (dedupe_key, mall_id, event_no, trace_id, body, occurred_at)
         VALUES (?, ?, ?, ?, ?, COALESCE(?, {NOW})) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id"
    ))
    .bind(e.dedupe_key)
    .bind(e.mall_id.as_str())
    .bind(e.event_no)
    .bind(e.trace_id)
    .bind(e.body)
    .bind(e.occurred_at.map(super::lifecycle::ts))
    .fetch_optional(pool)
    .await?;
    match id {
        Some(id) => Ok(WebhookInsert::Stored { id }),
        None => {
            let id = sqlx::query_scalar("SELECT id FROM webhook_events WHERE dedupe_key = ?")
                .bind(e.dedupe_key)
                .fetch_one(pool)
                .await?;
            Ok(WebhookInsert::Duplicate { id })
        }
    }
}

pub(super) async fn claim(
    pool: &SqlitePool,
    limit: u32,
    lease: Duration,
) -> Result<Vec<WebhookEventRecord>, StoreError> {
    let now = Utc::now();
    let stale = now - chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::zero());
    let rows: Vec<WebhookRow> = sqlx::query_as(&format!(
        "UPDATE webhook_events SET claimed_at = ?, attempts = attempts + 1
         WHERE id IN (SELECT id FROM webhook_events
                      WHERE status IN ('received', 'retry') AND next_attempt_at <= ?
                        AND (claimed_at IS NULL OR claimed_at < ?)
                      ORDER BY id LIMIT ?)
         RETURNING {WEBHOOK_COLUMNS}"
    ))
    .bind(ts(now))
    .bind(ts(now))
    .bind(ts(stale))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(WebhookEventRecord::try_from).collect()
}

pub(super) async fn finish(
    pool: &SqlitePool,
    id: i64,
    outcome: &DispatchOutcome,
) -> Result<(), StoreError> {
    let query = match outcome {
        DispatchOutcome::Dispatched => sqlx::query(
            "UPDATE webhook_events SET status = 'dispatched', dispatched_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
                 claimed_at = NULL, last_error = NULL WHERE id = ?",
        )
        .bind(id),
        DispatchOutcome::Retry { error, at } => sqlx::query(
            "UPDATE webhook_events SET status = 'retry', next_attempt_at = ?, claimed_at = NULL, last_error = ? WHERE id = ?",
        )
        .bind(ts(*at))
        .bind(error.clone())
        .bind(id),
        DispatchOutcome::DeadLetter { error } => {
            sqlx::query("UPDATE webhook_events SET status = 'dead_letter', claimed_at = NULL, last_error = ? WHERE id = ?")
                .bind(error.clone())
                .bind(id)
        }
    };
    query.execute(pool).await?;
    Ok(())
}

pub(super) async fn record_logged(
    pool: &SqlitePool,
    e: NewWebhookEvent<'_>,
) -> Result<LoggedDelivery, StoreError> {
    let id: Option<i64> = sqlx::query_scalar(&format!(
        "INSERT INTO webhook_events (dedupe_key, mall_id, event_no, trace_id, body, source, confirmed_at,
             occurred_at)
         VALUES (?, ?, ?, ?, ?, 'reconciled', {NOW}, COALESCE(?, {NOW}))
         ON CONFLICT (dedupe_key) DO NOTHING RETURNING id"
    ))
    .bind(e.dedupe_key)
    .bind(e.mall_id.as_str())
    .bind(e.event_no)
    .bind(e.trace_id)
    .bind(e.body)
    .bind(e.occurred_at.map(super::lifecycle::ts))
    .fetch_optional(pool)
    .await?;
    if let Some(id) = id {
        return Ok(LoggedDelivery::Recovered { id });
    }
    let id = sqlx::query_scalar(&format!(
        "UPDATE webhook_events SET confirmed_at = COALESCE(confirmed_at, {NOW}) WHERE dedupe_key = ? RETURNING id"
    ))
    .bind(e.dedupe_key)
    .fetch_one(pool)
    .await?;
    Ok(LoggedDelivery::Confirmed { id })
}

pub(super) async fn list(
    pool: &SqlitePool,
    after: i64,
    limit: u32,
) -> Result<Vec<WebhookEventRecord>, StoreError> {
    let rows: Vec<WebhookRow> = sqlx::query_as(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhook_events WHERE id > ? ORDER BY id LIMIT ?"
    ))
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(WebhookEventRecord::try_from).collect()
}
