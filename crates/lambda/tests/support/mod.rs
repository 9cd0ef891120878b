//! The harness: a local Runtime API, the real `bootstrap` started against it, a fresh
//! PostgreSQL database, signed states, and direct reads of the rows.

#![allow(dead_code)]

pub mod events;
pub mod runtime_api;

use std::path::Path;
use std::time::Duration;

use cafe24_core::secret::StateKey;
use cafe24_core::settings::{DatabaseKind, DatabaseSettings};
use cafe24_core::{MallId, StateSigner};
use sqlx::{Connection, PgConnection};

pub use runtime_api::{FunctionProcess, Outcome, RuntimeApi};

pub const STATE_SECRET: &str = "lambda-test-state-secret-0123456789abcdef";
pub const REDIRECT: &str = "https://app.example.com/oauth/callback";
pub const CLIENT_ID: &str = "sandbox-client-id";
pub const CLIENT_SECRET: &str = "sandbox-client-secret";

/// The `bootstrap` binary cargo built for these tests.
pub fn bootstrap() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_bootstrap"))
}

pub fn mall(m: &str) -> MallId {
    MallId::parse(m).expect("mall id")
}

/// A state as `/install` issues it, signed with `secret`.
pub fn signed_state(secret: &str, mall_id: &str) -> String {
    StateSigner::new(StateKey::new(secret), Duration::from_secs(600))
        .issue(&mall(mall_id), chrono::Utc::now())
        .as_str()
        .to_owned()
}

pub fn url(db: &DatabaseSettings) -> String {
    match &db.kind {
        DatabaseKind::PostgresUrl(url) => url.expose_secret().to_owned(),
        other => panic!("tests use PostgreSQL URLs, not {other:?}"),
    }
}

/// A fresh, migrated PostgreSQL database.
pub async fn migrated_postgres() -> DatabaseSettings {
    let db = cafe24_testkit::fresh_postgres().await;
    let store = cafe24_store::connect(&db).await.expect("connect");
    store.migrate().await.expect("migrate");
    store.close().await;
    db
}

/// The environment of a callback function on `database_url` (the variables `serve` reads).
pub fn http_env(database_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("CAFE24_LAMBDA_HANDLER", "http".into()),
        ("CAFE24_CLIENT_ID", CLIENT_ID.into()),
        ("CAFE24_CLIENT_SECRET", CLIENT_SECRET.into()),
        ("CAFE24_REDIRECT_URI", REDIRECT.into()),
        ("CAFE24_SCOPES", "mall.read_product,mall.read_store".into()),
        ("EXPECTED_STATE_SECRET", STATE_SECRET.into()),
        ("DATABASE_URL", database_url.into()),
        ("DATABASE_ACQUIRE_TIMEOUT_SECS", "2".into()),
        // The most talkative level, so the secrecy checks see everything that could be logged.
        ("RUST_LOG", "trace".into()),
    ]
}

/// A runtime API and one function process serving it.
pub struct Function {
    pub api: RuntimeApi,
    pub process: FunctionProcess,
}

impl Function {
    pub async fn start(env: &[(&str, String)]) -> Self {
        let api = RuntimeApi::start().await;
        let process = FunctionProcess::spawn(bootstrap(), &[], &api, env);
        Self { api, process }
    }

    pub async fn invoke(&self, event: serde_json::Value) -> Outcome {
        self.api.invoke(event).await
    }

    /// Invokes an API Gateway event; the status and JSON body of the proxy response.
    pub async fn get(&self, event: serde_json::Value) -> (u16, serde_json::Value) {
        let response = self.invoke(event).await.response();
        events::status_and_body(&response)
    }
}

pub async fn connect(database_url: &str) -> PgConnection {
    PgConnection::connect(database_url)
        .await
        .expect("connect to the test database")
}

/// `(code, state, mall_id, status)` of one stored code.
pub type CodeRow = (Option<String>, String, Option<String>, String);

pub async fn code_row(database_url: &str, id: i64) -> Option<CodeRow> {
    let mut conn = connect(database_url).await;
    sqlx::query_as(
        "SELECT code, state, mall_id, status FROM cafe24.authorization_codes WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut conn)
    .await
    .expect("read the code")
}

pub async fn count(database_url: &str, sql: &str) -> i64 {
    let mut conn = connect(database_url).await;
    sqlx::query_scalar(sql)
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Terminates every backend connected to the database behind `database_url` (as a failover,
/// an idle timeout or a NAT dropping the connection would); returns how many.
pub async fn terminate_connections(database_url: &str) -> i64 {
    let name = url::Url::parse(database_url)
        .expect("url")
        .path()
        .trim_start_matches('/')
        .to_owned();
    let mut admin = connect(&cafe24_testkit::admin_url()).await;
    sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()) t",
    )
    .bind(name)
    .fetch_one(&mut admin)
    .await
    .expect("terminate backends")
}
