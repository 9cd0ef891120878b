//! The token lifecycle against the real sandbox over HTTP, on PostgreSQL and SQLite.

mod reliability;
mod support;

use std::time::Duration;

use cafe24_store::{CodeStatus, MallStatus};
use cafe24_testkit::{execute, on_both_backends, raw_database_bytes, TestBackend};
use cafe24_tokens::keepalive::{due_malls, refresh_malls};
use cafe24_tokens::{Exchanger, Sealer, TokenError, TokenKind};
use support::{mall, rig};

on_both_backends!(
    a_stored_code_is_exchanged_and_the_token_works,
    tokens_at_rest_are_ciphertext,
    an_expired_code_is_never_sent_to_cafe24,
    a_refused_code_is_recorded_as_failed,
    transport_errors_are_retried_within_the_code_lifetime,
    many_tasks_refresh_an_expiring_token_exactly_once,
    two_callers_rejected_with_one_token_cause_one_refresh,
    a_rotated_but_lost_response_flags_the_mall_instead_of_failing_silently,
    keep_alive_refreshes_only_the_malls_that_are_due,
    revoke_calls_cafe24_and_wipes_the_tokens,
    an_uninstall_marks_the_mall_revoked_without_calling_cafe24,
    reencrypt_moves_every_row_to_the_newest_key,
    a_newer_pair_is_never_overwritten_by_an_older_one,
);

async fn a_stored_code_is_exchanged_and_the_token_works(backend: TestBackend) {
    let rig = rig(backend, |_| {}, &[]).await;
    let shop = mall("shop1");
    let code = rig.code(&shop).await;
    let id = rig.stored_code(&shop, &code).await;
    let summary = Exchanger::new(rig.manager.clone())
        .drain()
        .await
        .expect("exchange");
    assert_eq!(
        (summary.claimed, summary.exchanged, summary.failed),
        (1, 1, 0)
    );

    let row = rig
        .store
        .authorization_code(id)
        .await
        .expect("read")
        .expect("row");
    assert_eq!(row.status, CodeStatus::Exchanged);
    assert!(row.code.is_none(), "the code is cleared once used");
    let tokens = rig
        .store
        .tokens(&shop)
        .await
        .expect("read")
        .expect("tokens");
    assert_eq!(tokens.status, MallStatus::Active);
    assert_eq!(tokens.scopes, vec!["mall.read_product", "mall.read_store"]);
    // Cafe24's KST timestamps became the right UTC instants: about 2 h and 14 d from now.
    let now = chrono::Utc::now();
    assert!(
        ((tokens.access_expires_at - now).num_minutes() - 120).abs() <= 1,
        "{}",
        tokens.access_expires_at
    );
    assert!(((tokens.refresh_expires_at - now).num_hours() - 14 * 24).abs() <= 1);

    let token = rig.manager.access_token(&shop).await.expect("token");
    assert_eq!(rig.api_status(&shop, token.expose_secret()).await, 200);
    assert_eq!(rig.stats(&shop).authorization_code_grants, 1);
    let events = rig.store.events(0, 10).await.expect("events");
    assert_eq!(
        events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        vec!["installed"]
    );
}

async fn tokens_at_rest_are_ciphertext(backend: TestBackend) {
    let rig = rig(backend, |_| {}, &[]).await;
    let shop = mall("shop1");
    rig.install(&shop).await;
    rig.manager.force_refresh(&shop).await.expect("refresh");
    let row = rig.store.tokens(&shop).await.expect("read").expect("row");
    let sealer =
        Sealer::new(cafe24_core::settings::EncryptionKeys::parse(&rig.keys).expect("keys"));
    let access = sealer
        .open(
            &shop,
            TokenKind::Access,
            &row.key_id,
            &row.access_ciphertext,
        )
        .expect("open");
    let refresh = sealer
        .open(
            &shop,
            TokenKind::Refresh,
            &row.key_id,
            &row.refresh_ciphertext,
        )
        .expect("open");
    let raw = raw_database_bytes(&rig.db).await;
    // The scan really covers the row: its ciphertext is there (as bytes, or as bytea hex).
    let cipher_hex: String = row
        .refresh_ciphertext
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let found = |needle: &[u8]| raw.windows(needle.len()).any(|w| w == needle);
    assert!(
        found(&row.refresh_ciphertext) || found(cipher_hex.as_bytes()),
        "the scan missed the tokens row"
    );
    for token in [access.as_str(), refresh.as_str()] {
        assert!(token.len() >= 16);
        let hex: String = token.bytes().map(|b| format!("{b:02x}")).collect();
        for needle in [token.as_bytes(), hex.as_bytes()] {
            assert!(
                !raw.windows(needle.len()).any(|w| w == needle),
                "a token is stored in plaintext"
            );
        }
    }
}

async fn backdate_codes(rig: &support::Rig, backend: TestBackend, seconds: u32) {
    let sql = match backend {
        TestBackend::Postgres => format!("UPDATE cafe24.authorization_codes SET created_at = now() - interval '{seconds} seconds'"),
        TestBackend::Sqlite => {
            format!("UPDATE authorization_codes SET created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-{seconds} seconds')")
        }
    };
    execute(&rig.db, &sql).await;
}

async fn an_expired_code_is_never_sent_to_cafe24(backend: TestBackend) {
    let rig = rig(backend, |_| {}, &[]).await;
    let shop = mall("shop1");
    let code = rig.code(&shop).await;
    let old = rig.stored_code(&shop, &code).await;
    let borderline = rig.stored_code(&shop, "another-code").await;
    backdate_codes(&rig, backend, 61).await;
    let summary = Exchanger::new(rig.manager.clone())
        .drain()
        .await
        .expect("exchange");
    assert_eq!((summary.expired, summary.claimed), (2, 0));
    for id in [old, borderline] {
        let row = rig
            .store
            .authorization_code(id)
            .await
            .expect("read")
            .expect("row");
        assert_eq!(row.status, CodeStatus::Expired);
        assert!(row.code.is_none());
    }
    // Cafe24 never saw it: no grant and no rejected code.
    let stats = rig.stats(&shop);
    assert_eq!(
        (
            stats.authorization_code_grants,
            stats.codes_rejected,
            stats.token_errors
        ),
        (0, 0, 0)
    );
}

async fn a_refused_code_is_recorded_as_failed(backend: TestBackend) {
    let rig = rig(backend, |_| {}, &[]).await;
    let shop = mall("shop1");
    let id = rig.stored_code(&shop, "not-a-code-cafe24-issued").await;
    let summary = Exchanger::new(rig.manager.clone())
        .drain()
        .await
        .expect("exchange");
    assert_eq!(summary.failed, 1);
    let row = rig
        .store
        .authorization_code(id)
        .await
        .expect("read")
        .expect("row");
    assert_eq!(row.status, CodeStatus::Failed);
    assert!(row.code.is_none());
    assert!(
        row.last_error
            .as_deref()
            .is_some_and(|e| e.contains("invalid_grant")),
        "{:?}",
        row.last_error
    );
    assert!(
        !row.last_error.unwrap_or_default().contains("not-a-code"),
        "the code leaked into the error"
    );
    assert!(rig.store.tokens(&shop).await.expect("read").is_none());
}

async fn transport_errors_are_retried_within_the_code_lifetime(backend: TestBackend) {
    let rig = rig(backend, |_| {}, &[]).await;
    let shop = mall("shop1");
    let code = rig.code(&shop).await;
    let id = rig.stored_code(&shop, &code).await;
    let fault = cafe24_sandbox::FaultSpec {
        error_next: 1,
        error_status: Some(503),
        drop_next: 1,
        ..Default::default()
    };
    rig.sandbox.set_fault("token", fault).expect("fault");
    let summary = Exchanger::new(rig.manager.clone())
        .drain()
        .await
        .expect("exchange");
    assert_eq!(
        (summary.retried, summary.exchanged, summary.failed),
        (2, 1, 0),
        "{summary:?}"
    );
    let row = rig
        .store
        .authorization_code(id)
        .await
        .expect("read")
        .expect("row");
    assert_eq!((row.status, row.attempts), (CodeStatus::Exchanged, 3));
}

async fn many_tasks_refresh_an_expiring_token_exactly_once(backend: TestBackend) {
    let rig = rig(backend, |_| {}, &[]).await;
    let shop = mall("shop1");
    rig.install(&shop).await;
    let first = rig.manager.access_token(&shop).await.expect("token");
    assert_eq!(
        rig.stats(&shop).refresh_grants,
        0,
        "a fresh token is used as it is"
    );
    // 1 h 58 min later the 2-hour token is inside the 5-minute margin: every caller wants a refresh.
    rig.advance(chrono::Duration::minutes(118));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let manager = rig.manager.clone();
        let shop = shop.clone();
        tasks.spawn(async move { manager.access_token(&shop).await });
    }
    let mut tokens = std::collections::HashSet::new();
    while let Some(done) = tasks.join_next().await {
        tokens.insert(
            done.expect("join")
                .expect("token")
                .expose_secret()
                .to_owned(),
        );
    }
    let stats = rig.stats(&shop);
    assert_eq!(
        (stats.refresh_grants, stats.refresh_tokens_rejected),
        (1, 0)
    );
    assert_eq!(tokens.len(), 1, "every task got the one new token");
    assert!(!tokens.contains(first.expose_secret()));
    assert_eq!(
        rig.api_status(&shop, tokens.iter().next().expect("token"))
            .await,
        200
    );
}

async fn two_callers_rejected_with_one_token_cause_one_refresh(backend: TestBackend) {
    let rig = rig(backend, |_| {}, &[]).await;
    let shop = mall("shop1");
    rig.install(&shop).await;
    let rejected = rig.manager.access_token(&shop).await.expect("token");
    // Two callers got a 401 for the same token at the same time.
    let (a, b) = tokio::join!(
        rig.manager.refresh_rejected(&shop, &rejected),
        rig.manager.refresh_rejected(&shop, &rejected)
    );
    let (a, b) = (a.expect("a"), b.expect("b"));
    assert_eq!(a.expose_secret(), b.expose_secret());
    assert_eq!(rig.stats(&shop).refresh_grants, 1);
    assert_eq!(rig.api_status(&shop, a.expose_secret()).await, 200);
}

async fn a_rotated_but_lost_response_flags_the_mall_instead_of_failing_silently(
    backend: TestBackend,
) {
    // A short token-call timeout keeps the journal's fence (timeout + 2 s) short.
    let rig = rig(backend, |_| {}, &[("CAFE24_HTTP_TIMEOUT_SECS", "1")]).await;
    let shop = mall("shop1");
    rig.install(&shop).await;
    rig.sandbox
        .set_fault(
            "token",
            cafe24_sandbox::FaultSpec {
                lose_response_next: 1,
                ..Default::default()
            },
        )
        .expect("fault");
    let lost = rig.manager.force_refresh(&shop).await;
    assert!(
        matches!(lost, Err(TokenError::Cafe24(ref e)) if e.is_retryable()),
        "{lost:?}"
    );
    let row = rig.store.tokens(&shop).await.expect("read").expect("row");
    assert!(
        row.refresh_started_at.is_some(),
        "the unfinished refresh stays visible in the journal"
    );
    assert_eq!(row.status, MallStatus::Active);

    let next = rig.manager.access_token(&shop).await;
    assert!(
        next.is_ok(),
        "the old access token still works until it expires: {next:?}"
    );
    let again = rig.manager.force_refresh(&shop).await;
    assert!(
        matches!(again, Err(TokenError::NeedsReauth(_))),
        "{again:?}"
    );
    let row = rig.store.tokens(&shop).await.expect("read").expect("row");
    assert_eq!(row.status, MallStatus::NeedsReauth);
    assert!(row.last_error.is_some());
    let kinds = rig.event_kinds().await;
    assert!(kinds.contains(&"needs_reauth".to_owned()), "{kinds:?}");
    assert!(matches!(
        rig.manager.access_token(&shop).await,
        Err(TokenError::NeedsReauth(_))
    ));
}

async fn keep_alive_refreshes_only_the_malls_that_are_due(backend: TestBackend) {
    let rig = rig(backend, |_| {}, &[("CAFE24_KEEPALIVE_RATE", "1000")]).await;
    let malls: Vec<_> = ["shop1", "shop2", "shop3"]
        .iter()
        .map(|m| mall(m))
        .collect();
    for m in &malls {
        rig.install(m).await;
    }
    let (_keep, stop) = tokio::sync::watch::channel(false);
    assert!(
        due_malls(&rig.manager, Duration::from_secs(86_400))
            .await
            .expect("due")
            .is_empty(),
        "fresh malls are not due"
    );
    let window = Duration::from_secs(15 * 86_400);
    let due = due_malls(&rig.manager, window).await.expect("due");
    assert_eq!(due.len(), 3);
    let summary = refresh_malls(&rig.manager, due, window, &stop, None, &|| {}).await;
    assert_eq!((summary.refreshed, summary.failed), (3, 0));
    for m in &malls {
        assert_eq!(rig.stats(m).refresh_grants, 1, "{m}");
    }
}

async fn revoke_calls_cafe24_and_wipes_the_tokens(backend: TestBackend) {
    let rig = rig(backend, |_| {}, &[]).await;
    let shop = mall("shop1");
    rig.install(&shop).await;
    let token = rig.manager.access_token(&shop).await.expect("token");
    rig.manager.revoke(&shop).await.expect("revoke");
    assert_eq!(
        rig.stats(&shop).revokes,
        2,
        "the refresh token and the access token are both revoked"
    );
    assert_eq!(
        rig.api_status(&shop, token.expose_secret()).await,
        401,
        "Cafe24 no longer accepts it"
    );
    let row = rig.store.tokens(&shop).await.expect("read").expect("row");
    assert_eq!(row.status, MallStatus::Revoked);
    assert!(row.access_ciphertext.is_empty() && row.refresh_ciphertext.is_empty());
    assert!(matches!(
        rig.manager.access_token(&shop).await,
        Err(TokenError::Revoked(_))
    ));
    rig.manager
        .revoke(&shop)
        .await
        .expect("revoking twice is fine");
    assert_eq!(rig.stats(&shop).revokes, 2);
}

async fn an_uninstall_marks_the_mall_revoked_without_calling_cafe24(backend: TestBackend) {
    let rig = rig(backend, |_| {}, &[]).await;
    let shop = mall("shop1");
    rig.install(&shop).await;
    assert!(rig
        .manager
        .uninstalled(&shop, "app deleted (event 90077)", chrono::Utc::now())
        .await
        .expect("uninstall"));
    assert_eq!(rig.stats(&shop).revokes, 0);
    let row = rig.store.tokens(&shop).await.expect("read").expect("row");
    assert_eq!(row.status, MallStatus::Revoked);
    assert_eq!(row.last_error.as_deref(), Some("app deleted (event 90077)"));
    assert!(!rig
        .manager
        .uninstalled(&mall("never-installed"), "x", chrono::Utc::now())
        .await
        .expect("unknown malls are fine"));
}

async fn reencrypt_moves_every_row_to_the_newest_key(backend: TestBackend) {
    let rig = rig(backend, |_| {}, &[]).await;
    let shop = mall("shop1");
    rig.install(&shop).await;
    let before = rig.manager.access_token(&shop).await.expect("token");
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
    assert_eq!(manager.reencrypt_all().await.expect("reencrypt"), (1, 0));
    assert_eq!(manager.reencrypt_all().await.expect("again"), (0, 1));
    let row = rig.store.tokens(&shop).await.expect("read").expect("row");
    assert_eq!(row.key_id, "k2");
    assert_eq!(
        manager
            .access_token(&shop)
            .await
            .expect("token")
            .expose_secret(),
        before.expose_secret()
    );
    assert!(
        rig.manager.access_token(&shop).await.is_err(),
        "the old key set cannot read k2 rows"
    );
}

async fn a_newer_pair_is_never_overwritten_by_an_older_one(backend: TestBackend) {
    let rig = rig(backend, |_| {}, &[]).await;
    let shop = mall("shop1");
    rig.install(&shop).await;
    let row = rig.store.tokens(&shop).await.expect("read").expect("row");
    let mut lock = rig
        .store
        .lock_mall(&shop, Duration::from_secs(5))
        .await
        .expect("lock");
    let stale = cafe24_store::NewTokens {
        mall_id: shop.clone(),
        shop_no: None,
        user_id: None,
        client_id: row.client_id.clone(),
        scopes: vec![],
        key_id: row.key_id.clone(),
        access_ciphertext: vec![1, 2, 3],
        access_expires_at: row.access_expires_at,
        refresh_ciphertext: vec![4, 5, 6],
        refresh_expires_at: row.refresh_expires_at,
        issued_at: None,
        note: None,
    };
    assert!(!lock
        .replace_tokens(row.version - 1, &stale, chrono::Utc::now())
        .await
        .expect("cas"));
    lock.release().await.expect("release");
    let after = rig.store.tokens(&shop).await.expect("read").expect("row");
    assert_eq!(
        (after.version, after.access_ciphertext),
        (row.version, row.access_ciphertext)
    );
}
