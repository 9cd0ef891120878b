//! A mall is never lost: cancelled callers, failing stores, late events, floods, leases. Each
//! test names the defect it guards against.

use std::time::{Duration, Instant};

use cafe24_core::secret::AuthorizationCode;
use cafe24_sandbox::FaultSpec;
use cafe24_store::{CodeInsert, CodeStatus, MallStatus, NewAuthorizationCode, StoreError};
use cafe24_testkit::{execute, on_both_backends, TestBackend};
use cafe24_tokens::{Exchanger, TokenError};

use crate::support::{self, mall, rig, Rig};

on_both_backends!(
    a_cancelled_caller_never_loses_a_rotated_pair,
    a_dropped_exchange_pass_still_stores_the_grant,
    no_refresh_is_started_that_cannot_finish_before_the_deadline,
    a_late_uninstall_does_not_revoke_a_newer_grant,
    a_token_response_that_does_not_fully_parse_keeps_both_tokens,
    a_stale_claim_can_neither_reset_nor_undo_another_workers_claim,
    a_mall_cannot_queue_more_than_the_cap_of_pending_codes,
    a_genuine_install_is_exchanged_in_time_under_a_flood_of_junk_codes,
    repeated_401s_do_not_rotate_again_within_the_floor,
    revoke_revokes_both_tokens_and_refused_credentials_change_nothing,
    reencrypt_never_revives_a_dead_grant,
);

/// `reencrypt` writes through the compare-and-swap that marks a rotated pair active: it must
/// leave a `needs_reauth` row alone.
async fn reencrypt_never_revives_a_dead_grant(backend: TestBackend) {
    let rig = rig(backend, |_| {}, &[]).await;
    let shop = mall("shop1");
    rig.install(&shop).await;
    let table = match backend {
        TestBackend::Postgres => "cafe24.tokens",
        TestBackend::Sqlite => "tokens",
    };
    execute(
        &rig.db,
        &format!("UPDATE {table} SET status = 'needs_reauth'"),
    )
    .await;
    let rotated = format!(
        "{},{}",
        cafe24_core::settings::generate_key_entry("k2"),
        rig.keys
    );
    let manager = support::manager_for(
        &rig.sandbox,
        rig.store.clone(),
        &rotated,
        &[],
        rig.clock.clone(),
    );
    assert_eq!(manager.reencrypt_all().await.expect("reencrypt"), (0, 1));
    let row = rig.store.tokens(&shop).await.expect("read").expect("row");
    assert_eq!(row.status, MallStatus::NeedsReauth);
}

/// Delays every token-endpoint response by `ms` after Cafe24 has done the work (rotated).
fn delay_token_responses(rig: &Rig, ms: u64) {
    rig.sandbox
        .set_fault(
            "token",
            FaultSpec {
                response_delay_ms: ms,
                ..Default::default()
            },
        )
        .expect("fault");
}

/// After the work has settled: the stored pair is the live one (a keep-alive refresh with it is
/// accepted) and Cafe24 never refused a refresh token.
async fn assert_stored_pair_is_live(rig: &Rig, shop: &cafe24_core::MallId) {
    rig.sandbox.clear_faults();
    let row = rig.store.tokens(shop).await.expect("read").expect("row");
    assert_eq!(row.status, MallStatus::Active, "{:?}", row.last_error);
    assert!(
        row.refresh_started_at.is_none(),
        "no refresh left in flight"
    );
    let refreshed = rig
        .manager
        .keep_alive(shop, Duration::from_secs(400 * 86_400))
        .await;
    assert!(
        matches!(refreshed, Ok(true)),
        "the stored refresh token is live: {refreshed:?}"
    );
    assert_eq!(rig.stats(shop).refresh_tokens_rejected, 0);
}

/// Defect 1: a caller that gives up (a request timeout, a disconnect, `select!`) after the
/// refresh was sent used to drop the rotated pair with it.
async fn a_cancelled_caller_never_loses_a_rotated_pair(backend: TestBackend) {
    let rig = rig(backend, |_| {}, &[]).await;
    let shop = mall("shop1");
    rig.install(&shop).await;
    delay_token_responses(&rig, 700);
    let gave_up =
        tokio::time::timeout(Duration::from_millis(200), rig.manager.force_refresh(&shop)).await;
    assert!(gave_up.is_err(), "the caller stopped waiting");
    assert!(
        rig.manager.drain(Duration::from_secs(10)).await,
        "the refresh finished on its own"
    );
    assert_eq!(rig.stats(&shop).refresh_grants, 1);
    let row = rig.store.tokens(&shop).await.expect("read").expect("row");
    assert_eq!(row.version, 2, "the rotated pair was stored");
    assert_stored_pair_is_live(&rig, &shop).await;
}

/// Defect 1, exchange side: a pass dropped after the code was sent (shutdown, a Lambda
/// deadline) still stores the grant Cafe24 issued for it.
async fn a_dropped_exchange_pass_still_stores_the_grant(backend: TestBackend) {
    let rig = rig(backend, |_| {}, &[]).await;
    let shop = mall("shop1");
    let code = rig.code(&shop).await;
    let id = rig.stored_code(&shop, &code).await;
    delay_token_responses(&rig, 700);
    let pass = tokio::time::timeout(
        Duration::from_millis(200),
        Exchanger::new(rig.manager.clone()).run_once(),
    )
    .await;
    assert!(pass.is_err(), "the pass was dropped mid-flight");
    assert!(rig.manager.drain(Duration::from_secs(10)).await);
    let stored = rig.store.authorization_code(id).await.expect("read");
    assert_eq!(stored.map(|c| c.status), Some(CodeStatus::Exchanged));
    assert_eq!(rig.stats(&shop).authorization_code_grants, 1);
    assert_stored_pair_is_live(&rig, &shop).await;
}

/// Defect 1, Lambda: a handler is frozen when it returns, so nothing may be sent to Cafe24
/// that cannot be finished (and stored) before the invocation's deadline.
async fn no_refresh_is_started_that_cannot_finish_before_the_deadline(backend: TestBackend) {
    let rig = rig(backend, |_| {}, &[]).await;
    let shop = mall("shop1");
    rig.install(&shop).await;
    let soon = tokio::time::Instant::now() + Duration::from_secs(3);
    let refused = rig
        .manager
        .keep_alive_by(&shop, Duration::from_secs(400 * 86_400), Some(soon))
        .await;
    assert!(matches!(refused, Err(TokenError::NoTime)), "{refused:?}");
    assert_eq!(rig.stats(&shop).refresh_grants, 0, "nothing was sent");
    let code = rig.code(&mall("shop2")).await;
    rig.stored_code(&mall("shop2"), &code).await;
    let s = Exchanger::new(rig.manager.clone())
        .run_once_by(Some(soon))
        .await
        .expect("pass");
    assert_eq!(
        s.claimed, 0,
        "no code is claimed without the time to exchange it"
    );
    let later = tokio::time::Instant::now() + Duration::from_secs(60);
    assert!(matches!(
        rig.manager
            .keep_alive_by(&shop, Duration::from_secs(400 * 86_400), Some(later))
            .await,
        Ok(true)
    ));
}

/// Defect 4: a 90077 delivered (or reconciled) after the merchant reinstalled used to revoke
/// the new grant.
async fn a_late_uninstall_does_not_revoke_a_newer_grant(backend: TestBackend) {
    let rig = rig(backend, |_| {}, &[]).await;
    let shop = mall("shop1");
    rig.install(&shop).await;
    let uninstalled_at = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    rig.install(&shop).await; // the merchant reinstalled
    let revoked = rig
        .manager
        .uninstalled(&shop, "app deleted (event 90077)", uninstalled_at)
        .await
        .expect("uninstall");
    assert!(!revoked, "the event belongs to the earlier grant");
    let row = rig.store.tokens(&shop).await.expect("read").expect("row");
    assert_eq!(row.status, MallStatus::Active);
    assert!(rig.manager.access_token(&shop).await.is_ok());
    // An uninstall after the reinstall still revokes.
    assert!(rig
        .manager
        .uninstalled(&shop, "app deleted (event 90077)", chrono::Utc::now())
        .await
        .expect("uninstall"));
    let row = rig.store.tokens(&shop).await.expect("read").expect("row");
    assert_eq!(row.status, MallStatus::Revoked);
}

/// Defect 5: a 200 whose body does not fully parse used to discard the grant it carried.
async fn a_token_response_that_does_not_fully_parse_keeps_both_tokens(backend: TestBackend) {
    let fake = OddTokenEndpoint::start().await;
    let rig = rig(backend, |_| {}, &[]).await;
    let manager = support::manager_for(
        &rig.sandbox,
        rig.store.clone(),
        &rig.keys,
        &[("CAFE24_BASE_URL", &fake.base_url)],
        rig.clock.clone(),
    );
    let shop = mall("shop1");
    rig.stored_code(&shop, "any-code").await;
    let s = Exchanger::new(manager.clone()).drain().await.expect("pass");
    assert_eq!(s.exchanged, 1, "{s:?}");
    let row = rig.store.tokens(&shop).await.expect("read").expect("row");
    assert_eq!(row.status, MallStatus::Active);
    assert!(
        row.last_error
            .as_deref()
            .is_some_and(|e| e.contains("did not fully parse")),
        "flagged: {:?}",
        row.last_error
    );
    let lifetime = row.access_expires_at - chrono::Utc::now();
    assert!(
        lifetime <= chrono::Duration::hours(1) && lifetime > chrono::Duration::minutes(55),
        "a conservative access lifetime: {lifetime}"
    );
    assert_eq!(
        manager
            .access_token(&shop)
            .await
            .expect("token")
            .expose_secret(),
        "odd-access"
    );
    let kinds = rig.event_kinds().await;
    assert!(
        kinds.contains(&"token_response_incomplete".to_owned()),
        "{kinds:?}"
    );
}

/// Defect 3: a worker whose claim lease ran out could reset another worker's claim (a third
/// send) or turn an exchanged code back to pending with an empty code.
async fn a_stale_claim_can_neither_reset_nor_undo_another_workers_claim(backend: TestBackend) {
    let rig = rig(backend, |_| {}, &[]).await;
    let shop = mall("shop1");
    let id = rig.stored_code(&shop, "code-1").await;
    let window = Duration::from_secs(60);
    let stale = rig
        .store
        .claim_codes(window, Duration::ZERO, 8)
        .await
        .expect("claim")[0]
        .claim();
    tokio::time::sleep(Duration::from_millis(20)).await;
    // The first worker's lease is over (zero here): a second worker takes the code over.
    let live = rig
        .store
        .claim_codes(window, Duration::ZERO, 8)
        .await
        .expect("claim")[0]
        .claim();
    assert_eq!((stale.id, live.id), (id, id));
    assert_ne!(stale, live);
    assert!(!rig.store.retry_code(stale, "late").await.expect("retry"));
    assert!(!rig
        .store
        .finish_code(stale, CodeStatus::Failed, "late")
        .await
        .expect("finish"));
    let row = rig
        .store
        .authorization_code(id)
        .await
        .expect("read")
        .expect("row");
    assert_eq!(row.status, CodeStatus::Processing, "the live claim stands");
    let tokens = rig.manager.seal(
        &shop,
        &cafe24_core::oauth::TokenSet::parse(
            br#"{"access_token":"a","refresh_token":"r","expires_at":"2030-01-01T00:00:00",
                 "refresh_token_expires_at":"2030-01-14T00:00:00"}"#,
        )
        .expect("set"),
        "client",
    );
    rig.store
        .complete_exchange(live, &tokens)
        .await
        .expect("complete");
    assert!(!rig.store.retry_code(stale, "late").await.expect("retry"));
    let row = rig
        .store
        .authorization_code(id)
        .await
        .expect("read")
        .expect("row");
    assert_eq!(row.status, CodeStatus::Exchanged, "never back to pending");
}

/// Defect 8: anyone can mint states when the launch hmac is off; a mall's queue is capped.
async fn a_mall_cannot_queue_more_than_the_cap_of_pending_codes(backend: TestBackend) {
    let rig = rig(backend, |_| {}, &[]).await;
    let insert = |mall_id: &'static str, n: usize| {
        let store = rig.store.clone();
        async move {
            let code = AuthorizationCode::new(format!("code-{n}"));
            store
                .insert_authorization_code(NewAuthorizationCode {
                    code: &code,
                    state: &format!("state-{mall_id}-{n}"),
                    mall_id: &mall(mall_id),
                    max_pending: 3,
                })
                .await
                .expect("insert")
        }
    };
    for n in 0..3 {
        assert!(matches!(
            insert("shop1", n).await,
            CodeInsert::Stored { .. }
        ));
    }
    assert_eq!(insert("shop1", 3).await, CodeInsert::TooManyPending);
    assert!(matches!(
        insert("shop2", 0).await,
        CodeInsert::Stored { .. }
    ));
    assert_eq!(insert("shop2", 0).await, CodeInsert::StateAlreadyUsed);
}

/// Defect 8: oldest-first claims let a flood of junk codes push a genuine install past
/// Cafe24's window. Newest first, the genuine code goes in the first batch.
async fn a_genuine_install_is_exchanged_in_time_under_a_flood_of_junk_codes(backend: TestBackend) {
    let rig = rig(backend, |_| {}, &[("CAFE24_CODE_LIFETIME_SECS", "5")]).await;
    for n in 0..600 {
        rig.stored_code(&mall(&format!("junk{n}")), &format!("junk-code-{n}"))
            .await;
    }
    let shop = mall("shop1");
    let code = rig.code(&shop).await;
    let genuine = rig.stored_code(&shop, &code).await;
    rig.sandbox
        .set_fault(
            "token",
            FaultSpec {
                latency_ms: 300,
                ..Default::default()
            },
        )
        .expect("fault");
    Exchanger::new(rig.manager.clone())
        .drain()
        .await
        .expect("drain");
    let row = rig
        .store
        .authorization_code(genuine)
        .await
        .expect("read")
        .expect("row");
    assert_eq!(row.status, CodeStatus::Exchanged, "{:?}", row.last_error);
    assert_eq!(rig.stats(&shop).authorization_code_grants, 1);
}

/// Defect 10: every 401 used to force another rotation.
async fn repeated_401s_do_not_rotate_again_within_the_floor(backend: TestBackend) {
    let rig = rig(backend, |_| {}, &[]).await;
    let shop = mall("shop1");
    rig.install(&shop).await;
    let first = rig.manager.force_refresh(&shop).await.expect("refresh");
    let again = rig
        .manager
        .refresh_rejected(&shop, &first)
        .await
        .expect("no error");
    assert_eq!(again.expose_secret(), first.expose_secret());
    assert_eq!(rig.stats(&shop).refresh_grants, 1, "one rotation, not two");
}

/// Defect 10: revoke sent only the access token, and treated a refusal of our own credentials
/// (`invalid_client`, or Cafe24's `invalid_grant` "Invalid client_secret") as "the token is
/// already dead" and wiped the mall.
async fn revoke_revokes_both_tokens_and_refused_credentials_change_nothing(backend: TestBackend) {
    let rig = rig(backend, |_| {}, &[]).await;
    let shop = mall("shop1");
    rig.install(&shop).await;
    let wrong = support::manager_for(
        &rig.sandbox,
        rig.store.clone(),
        &rig.keys,
        &[("CAFE24_CLIENT_SECRET", "not-the-sandbox-client-secret")],
        rig.clock.clone(),
    );
    let refused = wrong.revoke(&shop).await;
    assert!(matches!(refused, Err(TokenError::Cafe24(_))), "{refused:?}");
    let row = rig.store.tokens(&shop).await.expect("read").expect("row");
    assert_eq!(row.status, MallStatus::Active, "nothing was wiped");
    rig.manager.revoke(&shop).await.expect("revoke");
    assert_eq!(rig.stats(&shop).revokes, 2);
    // The refresh token is dead at Cafe24 too.
    assert!(matches!(
        rig.store
            .tokens(&shop)
            .await
            .expect("read")
            .map(|r| r.status),
        Some(MallStatus::Revoked)
    ));
}

/// Defect 2 (PostgreSQL): the connection holding the mall's lock dies while Cafe24 answers;
/// the rotated pair used to be dropped with the failed write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_lock_connection_does_not_drop_the_rotated_pair() {
    let rig = rig(TestBackend::Postgres, |_| {}, &[]).await;
    let shop = mall("shop1");
    rig.install(&shop).await;
    delay_token_responses(&rig, 1000);
    let manager = rig.manager.clone();
    let refresh = tokio::spawn({
        let shop = shop.clone();
        async move { manager.force_refresh(&shop).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    kill_advisory_lock_holders(&rig).await;
    let token = refresh.await.expect("task").expect("refreshed");
    assert_eq!(rig.stats(&shop).refresh_grants, 1);
    assert_eq!(rig.api_status(&shop, token.expose_secret()).await, 200);
    let row = rig.store.tokens(&shop).await.expect("read").expect("row");
    assert_eq!(row.version, 2);
    assert_stored_pair_is_live(&rig, &shop).await;
}

/// Defect 2 (PostgreSQL): when the lock's backend dies PostgreSQL frees the advisory lock, and
/// another process used to send the same refresh token. The journal fences it: it waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_in_flight_elsewhere_is_waited_for_not_repeated() {
    let rig = rig(TestBackend::Postgres, |_| {}, &[]).await;
    let shop = mall("shop1");
    rig.install(&shop).await;
    let other_store = cafe24_store::connect(&rig.db).await.expect("connect");
    let other = support::manager_for(&rig.sandbox, other_store, &rig.keys, &[], rig.clock.clone());
    delay_token_responses(&rig, 1500);
    let manager = rig.manager.clone();
    let first = tokio::spawn({
        let shop = shop.clone();
        async move { manager.force_refresh(&shop).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    kill_advisory_lock_holders(&rig).await;
    let second = other.force_refresh(&shop).await.expect("second caller");
    let first = first.await.expect("task").expect("first caller");
    assert_eq!(first.expose_secret(), second.expose_secret());
    let stats = rig.stats(&shop);
    assert_eq!(
        (stats.refresh_grants, stats.refresh_tokens_rejected),
        (1, 0),
        "one rotation, and the rotated token was never sent again"
    );
    assert_stored_pair_is_live(&rig, &shop).await;
}

async fn kill_advisory_lock_holders(rig: &Rig) {
    execute(
        &rig.db,
        // This test's database only: other tests run beside it in the same cluster.
        "SELECT pg_terminate_backend(pid) FROM pg_locks
         WHERE locktype = 'advisory' AND granted
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .await;
}

/// Defect 7 (PostgreSQL): lock holders kept pool connections through the Cafe24 call, in the
/// pool the callback uses; with the pool full the callback answered 503 and lost the code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_locks_never_starve_the_callback() {
    let rig = rig(TestBackend::Postgres, |_| {}, &[]).await;
    // As many refreshes in flight as the pool has connections: on a shared pool, all of them.
    assert!(rig.db.lock_connections >= rig.db.max_connections);
    let mut held = Vec::new();
    for n in 0..rig.db.lock_connections {
        let m = mall(&format!("busy{n}"));
        held.push(
            rig.store
                .lock_mall(&m, Duration::from_secs(2))
                .await
                .expect("lock"),
        );
    }
    let started = Instant::now();
    let id = rig.stored_code(&mall("shop1"), "a-code").await;
    assert!(id > 0);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the callback's insert did not wait for a connection"
    );
    // A lock holder that takes a second connection (an event) does not deadlock itself.
    rig.store
        .record_event(&mall("busy0"), "test", "")
        .await
        .expect("event while every lock connection is held");
    for lock in held {
        lock.release().await.expect("release");
    }
}

/// Defect 6 (SQLite): the lease was fixed at 120 s and never renewed: a crashed holder blocked
/// the mall for two minutes, a slow one lost it mid-refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_lease_is_renewed_while_held_and_freed_soon_after_a_crash() {
    let rig = rig(TestBackend::Sqlite, |_| {}, &[]).await;
    let shop = mall("shop1");
    rig.install(&shop).await;
    let holder = rig
        .store
        .lock_mall(&shop, Duration::from_secs(1))
        .await
        .expect("lock");
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert!(
        matches!(
            rig.store.lock_mall(&shop, Duration::from_millis(500)).await,
            Err(StoreError::LockTimeout)
        ),
        "a held lease is renewed past its 10 s"
    );
    drop(holder); // the holder dies without releasing
    let started = Instant::now();
    let next = rig
        .store
        .lock_mall(&shop, Duration::from_secs(15))
        .await
        .expect("the dead holder's lease expires");
    assert!(started.elapsed() < Duration::from_secs(11));
    next.release().await.expect("release");
}

/// Defect 6 (SQLite): writes under the lease were not fenced by its owner, so a holder whose
/// lease had passed to another process could still journal and flag the mall.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_holder_that_lost_its_lease_cannot_write() {
    let rig = rig(TestBackend::Sqlite, |_| {}, &[]).await;
    let shop = mall("shop1");
    rig.install(&shop).await;
    let mut stale = rig
        .store
        .lock_mall(&shop, Duration::from_secs(1))
        .await
        .expect("lock");
    execute(
        &rig.db,
        "UPDATE tokens SET lock_expires_at = '2000-01-01T00:00:00.000Z'",
    )
    .await;
    let live = rig
        .store
        .lock_mall(&shop, Duration::from_secs(1))
        .await
        .expect("taken over");
    let version = rig
        .store
        .tokens(&shop)
        .await
        .expect("read")
        .expect("row")
        .version;
    assert!(matches!(
        stale.journal_refresh(chrono::Utc::now()).await,
        Err(StoreError::LockLost)
    ));
    assert!(matches!(
        stale
            .set_status(MallStatus::NeedsReauth, Some("stale"), version)
            .await,
        Err(StoreError::LockLost)
    ));
    let row = rig.store.tokens(&shop).await.expect("read").expect("row");
    assert_eq!(row.status, MallStatus::Active);
    assert!(row.refresh_started_at.is_none());
    live.release().await.expect("release");
    drop(stale);
}

/// A token endpoint that answers 200 with both tokens and a body that does not fully parse.
struct OddTokenEndpoint {
    base_url: String,
    _task: tokio::task::JoinHandle<()>,
}

impl OddTokenEndpoint {
    async fn start() -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let _ = socket.read(&mut buf).await;
                    let body = r#"{"access_token":"odd-access","refresh_token":"odd-refresh","expires_at":"in two hours","refresh_token_expires_at":"2099-01-14T00:00:00.000","scopes":{"unexpected":true},"mall_id":"shop1"}"#;
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                });
            }
        });
        Self {
            base_url: format!("http://{addr}/{{mall_id}}"),
            _task: task,
        }
    }
}
