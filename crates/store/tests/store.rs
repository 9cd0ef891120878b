//! The store's behaviour, specified once and run against PostgreSQL and SQLite.

use cafe24_core::secret::AuthorizationCode;
use cafe24_core::MallId;
use cafe24_store::{
    connect, ApiBudget, Backend, BudgetTake, CodeInsert, CodeStatus, NewAuthorizationCode, Store,
};
use cafe24_testkit::{fresh_database, on_both_backends, TestBackend};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
        if backend == TestBackend::Postgres {
            vec![1, 2, 3, 4, 5]
        } else {
            vec![1, 2, 3, 4]
        }
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

const BUCKET: ApiBudget = ApiBudget {
    size: 40.0,
    drain_per_sec: 2.0,
};

fn wait_of(take: Option<BudgetTake>) -> Duration {
    match take {
        Some(BudgetTake::Go { wait, .. }) => wait,
        other => panic!("expected a charged call, got {other:?}"),
    }
}

#[tokio::test]
async fn a_mall_budget_is_one_bucket_for_every_process() {
    let settings = cafe24_testkit::fresh_postgres().await;
    let one = connect(&settings).await.expect("connect");
    one.migrate().await.expect("migrate");
    let two = connect(&settings).await.expect("second process");
    let shop = mall("shop");
    let long = Duration::from_secs(60);
    // 40 calls fit at once, whichever process takes them.
    for i in 0..40 {
        let store = if i % 2 == 0 { &one } else { &two };
        let take = store
            .take_api_call(&shop, BUCKET, long)
            .await
            .expect("take");
        assert_eq!(wait_of(take), Duration::ZERO, "call {i}");
    }
    let Some(BudgetTake::Go { wait, level }) =
        two.take_api_call(&shop, BUCKET, long).await.expect("take")
    else {
        panic!("charged")
    };
    // The 41st waits for one call to drain, and goes with the bucket full.
    assert!(
        wait > Duration::from_millis(400) && wait <= Duration::from_millis(500),
        "{wait:?}"
    );
    assert!((level - 40.0).abs() < 1e-6, "{level}");
    // Past the caller's deadline: refused, and nothing charged.
    assert_eq!(
        one.take_api_call(&shop, BUCKET, Duration::from_millis(100))
            .await
            .expect("take"),
        Some(BudgetTake::TooLong)
    );
    let next = wait_of(one.take_api_call(&shop, BUCKET, long).await.expect("take"));
    assert!(
        next > Duration::from_millis(900) && next <= Duration::from_millis(1000),
        "{next:?}"
    );
    // Another mall has a budget of its own.
    let other = wait_of(
        one.take_api_call(&mall("other"), BUCKET, long)
            .await
            .expect("take"),
    );
    assert_eq!(other, Duration::ZERO);
}

#[tokio::test]
async fn what_cafe24_says_raises_and_pauses_the_budget_but_never_lowers_it() {
    let store = migrated(TestBackend::Postgres).await;
    let shop = mall("shop");
    let long = Duration::from_secs(60);
    // Cafe24 reports 39 calls in the bucket (made outside the fleet): one more fits at once.
    store
        .observe_api_limit(&shop, BUCKET, Some(39.0), None)
        .await
        .expect("observe");
    assert_eq!(
        wait_of(
            store
                .take_api_call(&shop, BUCKET, long)
                .await
                .expect("take")
        ),
        Duration::ZERO
    );
    let full = wait_of(
        store
            .take_api_call(&shop, BUCKET, long)
            .await
            .expect("take"),
    );
    assert!(full > Duration::from_millis(400), "{full:?}");
    // A lower report changes nothing; a pause holds every call.
    store
        .observe_api_limit(&shop, BUCKET, Some(0.0), Some(Duration::from_secs(3)))
        .await
        .expect("observe");
    let paused = wait_of(
        store
            .take_api_call(&shop, BUCKET, long)
            .await
            .expect("take"),
    );
    assert!(paused > Duration::from_millis(2900), "{paused:?}");
}

#[tokio::test]
async fn sqlite_keeps_no_shared_budget() {
    let store = migrated(TestBackend::Sqlite).await;
    let take = store
        .take_api_call(&mall("shop"), BUCKET, Duration::from_secs(1))
        .await
        .expect("take");
    assert_eq!(take, None);
    store
        .observe_api_limit(&mall("shop"), BUCKET, Some(40.0), None)
        .await
        .expect("a no-op");
}

/// A stored code wakes another process's listener, whether the inserting process coalesces
/// notifications (serve) or leaves them to the trigger (Lambda).
#[tokio::test]
async fn a_stored_code_wakes_listeners_in_other_processes() {
    let settings = cafe24_testkit::fresh_postgres().await;
    let coalescing = connect(&settings).await.expect("connect");
    coalescing.migrate().await.expect("migrate");
    let inline = connect(&cafe24_core::settings::DatabaseSettings {
        coalesce_code_notifications: false,
        ..settings.clone()
    })
    .await
    .expect("connect");
    let listener = connect(&settings).await.expect("listener");
    let mut wakeups = listener.code_wakeups().await.expect("listen");
    assert!(wakeups.is_listening());
    for (n, store) in [&coalescing, &inline, &coalescing].into_iter().enumerate() {
        store
            .insert_authorization_code(NewAuthorizationCode {
                code: &AuthorizationCode::new(format!("code-{n}")),
                state: &format!("state-{n}"),
                mall_id: &mall("shop"),
                max_pending: 10,
            })
            .await
            .expect("insert");
        let started = Instant::now();
        wakeups.wait(Duration::from_secs(5)).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "insert {n}: no notification (waited {:?})",
            started.elapsed()
        );
    }
    // 50 concurrent inserts from the coalescing store: the listener is woken, by fewer
    // notifications than inserts (the trigger would send one per insert).
    for insert in concurrent_codes(&coalescing, 10..60) {
        insert.await.expect("task");
    }
    let mut woken = 0;
    loop {
        let started = Instant::now();
        wakeups.wait(Duration::from_millis(300)).await;
        if started.elapsed() >= Duration::from_millis(300) {
            break;
        }
        woken += 1;
    }
    assert!(
        (1..50).contains(&woken),
        "50 inserts woke the listener {woken} times"
    );
}

/// One callback per `n`, all at once: code `code-{n}`, state `state-{n}`, mall `mall{n}`.
fn concurrent_codes(
    store: &Arc<dyn Store>,
    range: std::ops::Range<usize>,
) -> Vec<tokio::task::JoinHandle<CodeInsert>> {
    range
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .insert_authorization_code(NewAuthorizationCode {
                        code: &AuthorizationCode::new(format!("code-{n}")),
                        state: &format!("state-{n}"),
                        mall_id: &mall(&format!("mall{n}")),
                        max_pending: 5,
                    })
                    .await
                    .expect("insert")
            })
        })
        .collect()
}

/// Concurrent callbacks share insert statements on PostgreSQL; each still gets its own row.
#[tokio::test]
async fn concurrent_callbacks_each_get_their_own_row() {
    let store = migrated(TestBackend::Postgres).await;
    let inserts = concurrent_codes(&store, 0..200);
    let mut ids = std::collections::HashSet::new();
    for insert in inserts {
        match insert.await.expect("task") {
            CodeInsert::Stored { id } => assert!(ids.insert(id), "id {id} given twice"),
            other => panic!("not stored: {other:?}"),
        }
    }
    assert_eq!(ids.len(), 200);
    for n in [0, 77, 199] {
        let again = store
            .insert_authorization_code(NewAuthorizationCode {
                code: &AuthorizationCode::new("again"),
                state: &format!("state-{n}"),
                mall_id: &mall(&format!("mall{n}")),
                max_pending: 5,
            })
            .await
            .expect("insert");
        assert_eq!(again, CodeInsert::StateAlreadyUsed, "state-{n}");
    }
}
