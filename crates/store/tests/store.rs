//! The store's behaviour, specified once and run against PostgreSQL and SQLite.

use cafe24_core::secret::AuthorizationCode;
use cafe24_core::MallId;
use cafe24_store::{connect, Backend, CodeInsert, CodeStatus, NewAuthorizationCode, Store};
use cafe24_testkit::{fresh_database, on_both_backends, TestBackend};
use std::sync::Arc;

async fn migrated(backend: TestBackend) -> Arc<dyn Store> {
    let store = connect(&fresh_database(backend).await)
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    store
}

fn mall(s: &str) -> MallId {
    MallId::parse(s).expect("mall id")
}

on_both_backends!(
    migrations_are_idempotent,
    a_stored_code_reads_back_pending,
    a_state_is_accepted_once,
    concurrent_inserts_of_one_state_store_exactly_one,
    ping_answers,
);

async fn migrations_are_idempotent(backend: TestBackend) {
    let store = connect(&fresh_database(backend).await)
        .await
        .expect("connect");
    let first = store.migrate().await.expect("first");
    let second = store.migrate().await.expect("second");
    assert_eq!(first, second);
    assert_eq!(
        first.iter().map(|m| m.version).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(
        store.backend(),
        if backend == TestBackend::Postgres {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    );
}

async fn a_stored_code_reads_back_pending(backend: TestBackend) {
    let store = migrated(backend).await;
    let code = AuthorizationCode::new("code-abc");
    let outcome = store
        .insert_authorization_code(NewAuthorizationCode {
            code: &code,
            state: "state-1",
            mall_id: &mall("shop1"),
            max_pending: u32::MAX,
        })
        .await
        .expect("insert");
    let CodeInsert::Stored { id } = outcome else {
        panic!("not stored: {outcome:?}")
    };
    let row = store
        .authorization_code(id)
        .await
        .expect("read")
        .expect("row exists");
    assert_eq!(
        row.code.as_ref().map(AuthorizationCode::expose_secret),
        Some("code-abc")
    );
    assert_eq!(row.state, "state-1");
    assert_eq!(row.mall_id, Some(mall("shop1")));
    assert_eq!(row.status, CodeStatus::Pending);
    assert_eq!(row.attempts, 0);
    assert!(row.processed_at.is_none());
    let age = chrono::Utc::now() - row.created_at;
    assert!(
        age.num_seconds().abs() < 60,
        "created_at is now-ish: {}",
        row.created_at
    );
    assert!(store
        .authorization_code(id + 1000)
        .await
        .expect("read")
        .is_none());
}

async fn a_state_is_accepted_once(backend: TestBackend) {
    let store = migrated(backend).await;
    let new = |code: &'static str| AuthorizationCode::new(code);
    let (a, b) = (new("code-a"), new("code-b"));
    let m = mall("shop1");
    let first = store
        .insert_authorization_code(NewAuthorizationCode {
            code: &a,
            state: "s",
            mall_id: &m,
            max_pending: u32::MAX,
        })
        .await;
    let again = store
        .insert_authorization_code(NewAuthorizationCode {
            code: &b,
            state: "s",
            mall_id: &m,
            max_pending: u32::MAX,
        })
        .await;
    assert!(matches!(first, Ok(CodeInsert::Stored { .. })));
    assert!(matches!(again, Ok(CodeInsert::StateAlreadyUsed)));
}

async fn concurrent_inserts_of_one_state_store_exactly_one(backend: TestBackend) {
    let store = migrated(backend).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let code = AuthorizationCode::new(format!("code-{i}"));
            let m = MallId::parse("shop1").expect("mall");
            store
                .insert_authorization_code(NewAuthorizationCode {
                    code: &code,
                    state: "same",
                    mall_id: &m,
                    max_pending: u32::MAX,
                })
                .await
        }));
    }
    let mut stored = 0;
    for t in tasks {
        if let CodeInsert::Stored { .. } = t.await.expect("join").expect("insert") {
            stored += 1;
        }
    }
    assert_eq!(stored, 1);
}

async fn ping_answers(backend: TestBackend) {
    migrated(backend).await.ping().await.expect("ping");
}

#[tokio::test]
async fn an_unreachable_postgres_is_reported_as_unavailable() {
    let store = connect(&cafe24_testkit::unreachable_postgres())
        .await
        .expect("lazy connect");
    let err = store.ping().await.expect_err("nothing listens");
    assert!(err.is_unavailable(), "{err:?}");
}

#[tokio::test]
async fn connections_killed_by_the_server_are_replaced() {
    use sqlx::Connection;
    let settings = cafe24_testkit::fresh_postgres().await;
    let store = connect(&settings).await.expect("connect");
    store.migrate().await.expect("migrate");
    store.ping().await.expect("ping");

    let cafe24_core::settings::DatabaseKind::PostgresUrl(url) = &settings.kind else {
        panic!("url")
    };
    let dbname = url
        .expose_secret()
        .rsplit('/')
        .next()
        .expect("db name")
        .to_owned();
    let mut admin = sqlx::PgConnection::connect(&cafe24_testkit::admin_url())
        .await
        .expect("admin");
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&dbname)
    .fetch_all(&mut admin)
    .await
    .expect("terminate");
    assert!(!killed.is_empty(), "the store held a connection to kill");

    // Each dead pooled connection may fail one call; then the store reconnects by itself.
    let mut failures = 0;
    while store.ping().await.is_err() {
        failures += 1;
        assert!(
            failures <= settings.max_connections,
            "the store never recovered"
        );
    }
    for _ in 0..5 {
        store.ping().await.expect("healthy after recovery");
    }
}
