//! PostgreSQL queries for the webhook event queue.

use std::time::Duration;

use crate::pg_pool::{PgConnections, Priority};
use crate::records::{WebhookRow, WEBHOOK_COLUMNS};
use crate::{
    DispatchOutcome, LoggedDelivery, NewWebhookEvent, StoreError, WebhookEventRecord, WebhookInsert,
};

pub(super) async fn insert(
    conns: &PgConnections,
    e: NewWebhookEvent<'_>,
) -> Result<WebhookInsert, StoreError> {
    let mut lease = conns.acquire_as(Priority::Foreground).await?;
    let id: Result<Option<i64>, _> = sqlx::query_scalar(
        "INSERT INTO cafe24.webhook_events (dedupe_key, mall_id, event_no, trace_id, body, occurred_at)
         VALUES ($1, $2, $3, $4, $5, COALESCE($6, now())) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
    )
    .bind(e.dedupe_key)
    .bind(e.mall_id.as_str())
    .bind(e.event_no)
    .bind(e.trace_id)
    .bind(e.body)
    .bind(e.occurred_at)
    .fetch_optional(lease.conn())
    .await;
    if let Some(id) = lease.finish(id)? {
        return Ok(WebhookInsert::Stored { id });
    }
    existing(conns, e.dedupe_key)
        .await
        .map(|id| WebhookInsert::Duplicate { id })
}

async fn existing(conns: &PgConnections, key: &str) -> Result<i64, StoreError> {
    let mut lease = conns.acquire_as(Priority::Foreground).await?;
    let id = sqlx::query_scalar("SELECT id FROM cafe24.webhook_events WHERE dedupe_key = $1")
        .bind(key)
        .fetch_one(lease.conn())
        .await;
    lease.finish(id)
}

pub(super) async fn claim(
    conns: &PgConnections,
    limit: u32,
    lease_for: Duration,
) -> Result<Vec<WebhookEventRecord>, StoreError> {
    let mut lease = conns.acquire().await?;
    let rows: Result<Vec<WebhookRow>, _> = sqlx::query_as(&format!(
        "UPDATE cafe24.webhook_events AS w SET claimed_at = now(), attempts = w.attempts + 1
         FROM (SELECT id FROM cafe24.webhook_events
               WHERE status IN ('received', 'retry') AND next_attempt_at <= now()
                 AND (claimed_at IS NULL OR claimed_at < now() - make_interval(secs => $1))
               ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED) AS picked
         WHERE w.id = picked.id
         RETURNING {}",
        WEBHOOK_COLUMNS
            .split(", ")
            .map(|c| format!("w.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .bind(lease_for.as_secs_f64())
    .bind(i64::from(limit))
    .fetch_all(lease.conn())
    .await;
    lease
        .finish(rows)?
        .into_iter()
        .map(WebhookEventRecord::try_from)
        .collect()
}

pub(super) async fn finish(
    conns: &PgConnections,
    id: i64,
    outcome: &DispatchOutcome,
) -> Result<(), StoreError> {
    let mut lease = conns.acquire().await?;
    let query = match outcome {
        DispatchOutcome::Dispatched => sqlx::query(
            "UPDATE cafe24.webhook_events SET status = 'dispatched', dispatched_at = now(), claimed_at = NULL,
                 last_error = NULL WHERE id = $1",
        )
        .bind(id),
        DispatchOutcome::Retry { error, at } => sqlx::query(
            "UPDATE cafe24.webhook_events SET status = 'retry', next_attempt_at = $2, claimed_at = NULL,
                 last_error = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(*at)
        .bind(error.clone()),
        DispatchOutcome::DeadLetter { error } => sqlx::query(
            "UPDATE cafe24.webhook_events SET status = 'dead_letter', claimed_at = NULL, last_error = $2 WHERE id = $1",
        )
        .bind(id)
        .bind(error.clone()),
    };
    let r = query.execute(lease.conn()).await;
    lease.finish(r).map(drop)
}

pub(super) async fn record_logged(
    conns: &PgConnections,
    e: NewWebhookEvent<'_>,
) -> Result<LoggedDelivery, StoreError> {
    let mut lease = conns.acquire().await?;
    let id: Result<Option<i64>, _> = sqlx::query_scalar(
        "INSERT INTO cafe24.webhook_events (dedupe_key, mall_id, event_no, trace_id, body, source, confirmed_at,
             occurred_at)
         VALUES ($1, $2, $3, $4, $5, 'reconciled', now(), COALESCE($6, now()))
         ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
    )
    .bind(e.dedupe_key)
    .bind(e.mall_id.as_str())
    .bind(e.event_no)
    .bind(e.trace_id)
    .bind(e.body)
    .bind(e.occurred_at)
    .fetch_optional(lease.conn())
    .await;
    if let Some(id) = lease.finish(id)? {
        return Ok(LoggedDelivery::Recovered { id });
    }
    let mut lease = conns.acquire().await?;
    let id = sqlx::query_scalar(
        "UPDATE cafe24.webhook_events SET confirmed_at = COALESCE(confirmed_at, now()) WHERE dedupe_key = $1 RETURNING id",
    )
    .bind(e.dedupe_key)
    .fetch_one(lease.conn())
    .await;
    Ok(LoggedDelivery::Confirmed {
        id: lease.finish(id)?,
    })
}

pub(super) async fn list(
    conns: &PgConnections,
    after: i64,
    limit: u32,
) -> Result<Vec<WebhookEventRecord>, StoreError> {
    let mut lease = conns.acquire().await?;
    let rows: Result<Vec<WebhookRow>, _> = sqlx::query_as(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM cafe24.webhook_events WHERE id > $1 ORDER BY id LIMIT $2"
    ))
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(lease.conn())
    .await;
    lease
        .finish(rows)?
        .into_iter()
        .map(WebhookEventRecord::try_from)
        .collect()
}
