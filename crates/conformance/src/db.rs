//! The kit's own look into the contract's schema (`cafe24.*`): what the target stored, read
//! directly, and the other writer's `INSERT` the serverless callback does.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};

use crate::check::Failure;

/// One `cafe24.tokens` row, as stored.
#[derive(Debug, Clone)]
pub struct TokenRow {
    pub key_id: String,
    pub access: Vec<u8>,
    pub refresh: Vec<u8>,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_expires_at: DateTime<Utc>,
    pub status: String,
}

pub async fn token_row(db: &PgPool, mall: &str) -> Result<Option<TokenRow>, Failure> {
    let row = sqlx::query(
        "SELECT key_id, access_token, refresh_token, access_expires_at, refresh_expires_at, status
         FROM cafe24.tokens WHERE mall_id = $1",
    )
    .bind(mall)
    .fetch_optional(db)
    .await?;
    row.map(|r| {
        Ok(TokenRow {
            key_id: r.try_get(0)?,
            access: r.try_get(1)?,
            refresh: r.try_get(2)?,
            access_expires_at: r.try_get(3)?,
            refresh_expires_at: r.try_get(4)?,
            status: r.try_get(5)?,
        })
    })
    .transpose()
    .map_err(|e: sqlx::Error| Failure::from(e))
}

/// Polls until the mall has a token row, for at most `within`; the row and how long it took.
pub async fn wait_token_row(
    db: &PgPool,
    mall: &str,
    within: Duration,
) -> Result<Option<(TokenRow, Duration)>, Failure> {
    let started = Instant::now();
    loop {
        if let Some(row) = token_row(db, mall).await? {
            return Ok(Some((row, started.elapsed())));
        }
        if started.elapsed() > within {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Polls until the mall's status is `status`, for at most `within`; the last status seen.
pub async fn wait_status(
    db: &PgPool,
    mall: &str,
    status: &str,
    within: Duration,
) -> Result<Option<String>, Failure> {
    let deadline = Instant::now() + within;
    loop {
        let seen = token_row(db, mall).await?.map(|r| r.status);
        if seen.as_deref() == Some(status) || Instant::now() > deadline {
            return Ok(seen);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One `cafe24.authorization_codes` row.
#[derive(Debug, Clone)]
pub struct CodeRow {
    pub id: i64,
    pub code: Option<String>,
    pub status: Option<String>,
}

pub async fn codes_with_state(db: &PgPool, state: &str) -> Result<Vec<CodeRow>, Failure> {
    let rows = sqlx::query(
        "SELECT id, code, status FROM cafe24.authorization_codes WHERE state = $1 ORDER BY id",
    )
    .bind(state)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(CodeRow {
                id: r.try_get(0)?,
                code: r.try_get(1)?,
                status: r.try_get(2)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Failure::from)
}

pub async fn codes_count(db: &PgPool) -> Result<i64, Failure> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM cafe24.authorization_codes")
            .fetch_one(db)
            .await?,
    )
}

/// Rows whose code is `code` (a code must never be stored from a refused request).
pub async fn codes_with_code(db: &PgPool, code: &str) -> Result<i64, Failure> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM cafe24.authorization_codes WHERE code = $1")
            .bind(code)
            .fetch_one(db)
            .await?,
    )
}

/// What another writer (the serverless callback) does: `INSERT (code, state, mall_id)`,
/// optionally `age` in the past.
pub async fn insert_code(
    db: &PgPool,
    code: &str,
    state: &str,
    mall: &str,
    age: Duration,
) -> Result<i64, Failure> {
    Ok(sqlx::query_scalar(
        "INSERT INTO cafe24.authorization_codes (code, state, mall_id, created_at)
         VALUES ($1, $2, $3, now() - make_interval(secs => $4)) RETURNING id",
    )
    .bind(code)
    .bind(state)
    .bind(mall)
    .bind(age.as_secs_f64())
    .fetch_one(db)
    .await?)
}

pub async fn code_status(
    db: &PgPool,
    id: i64,
) -> Result<(Option<String>, Option<String>), Failure> {
    let row = sqlx::query("SELECT code, status FROM cafe24.authorization_codes WHERE id = $1")
        .bind(id)
        .fetch_one(db)
        .await?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}

/// Webhook events whose body contains `marker`.
pub async fn webhook_events_with(db: &PgPool, marker: &str) -> Result<i64, Failure> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM cafe24.webhook_events WHERE strpos(body, $1) > 0")
            .bind(marker)
            .fetch_one(db)
            .await?,
    )
}

/// Every row of every table of the `cafe24` schema, as PostgreSQL prints it (bytea as hex).
pub async fn dump_schema(db: &PgPool) -> Result<String, Failure> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'cafe24' AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .fetch_all(db)
    .await?;
    let mut dump = String::new();
    for table in tables {
        let ident = table.replace('"', "\"\"");
        let text: Option<String> = sqlx::query_scalar(&format!(
            "SELECT string_agg(t::text, E'\\n') FROM cafe24.\"{ident}\" t"
        ))
        .fetch_one(db)
        .await?;
        dump.push_str(&text.unwrap_or_default());
        dump.push('\n');
    }
    Ok(dump)
}

/// Whether the contract's tables exist yet (the target creates them at start-up).
pub async fn schema_ready(db: &PgPool) -> bool {
    sqlx::query_scalar::<_, bool>(
        "SELECT to_regclass('cafe24.authorization_codes') IS NOT NULL
            AND to_regclass('cafe24.tokens') IS NOT NULL
            AND to_regclass('cafe24.webhook_events') IS NOT NULL",
    )
    .fetch_one(db)
    .await
    .unwrap_or(false)
}
