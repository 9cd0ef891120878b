//! The whole flow over real HTTP on both backends: /install → Cafe24 consent (sandbox) →
//! /oauth/callback → the in-process worker exchanges the code → Admin API → refresh. And the
//! README's first command, `cafe24-oauth demo`, run as users run it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cafe24_core::settings::{Settings, Source};
use cafe24_core::MallId;
use cafe24_server::{AppState, Application};
use cafe24_store::{CodeStatus, MallStatus};
use cafe24_testkit::{fresh_database, on_both_backends, TestBackend};
use cafe24_tokens::Worker;

on_both_backends!(install_consent_callback_exchange_api_call_and_refresh);

async fn install_consent_callback_exchange_api_call_and_refresh(backend: TestBackend) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let server = format!("http://{}", listener.local_addr().expect("addr"));
    let redirect = format!("{server}/oauth/callback");
    let sandbox = cafe24_testrig::start(cafe24_testrig::sandbox_config(&redirect)).await;
    let mut pairs = cafe24_testrig::runtime_env(&sandbox, &redirect, "mall.read_product");
    pairs.push((
        "EXPECTED_STATE_SECRET".into(),
        "flow-test-state-secret-0123456789abcdef".into(),
    ));
    let source = Source::from_pairs(pairs);
    let mut settings = Settings::load(&source).expect("settings");
    settings.database = fresh_database(backend).await;
    let store = cafe24_store::connect(&settings.database)
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    let manager = Arc::new(cafe24_testrig::manager(&source, store.clone()));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (mut s1, mut s2) = (stopped.clone(), stopped);
    let state = AppState::new(&settings, store.clone());
    state
        .metrics
        .register(|registry| manager.metrics().register(registry));
    let metrics = state.metrics.clone();
    let worker = Worker::new(manager.clone()).woken_by(state.code_stored.clone());
    let worker = tokio::spawn(worker.run(async move {
        let _ = s1.changed().await;
    }));
    let http = tokio::spawn(
        Application::with_listener(listener, state, &settings.http).run(async move {
            let _ = s2.changed().await;
        }),
    );

    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let location =
        |r: &reqwest::Response| r.headers()["location"].to_str().expect("ascii").to_owned();
    let install = browser
        .get(format!("{server}/install?mall_id=shop1"))
        .send()
        .await
        .expect("install");
    assert_eq!(install.status(), 302);
    let consent = browser
        .get(location(&install))
        .send()
        .await
        .expect("authorize");
    assert_eq!(
        consent.status(),
        302,
        "the sandbox approves and redirects back"
    );
    let callback = location(&consent);
    assert!(callback.starts_with(&format!("{server}/oauth/callback?")));
    let saved = browser.get(&callback).send().await.expect("callback");
    assert_eq!(saved.status(), 200);
    let body: serde_json::Value = saved.json().await.expect("json");
    assert_eq!(
        (body["ok"].clone(), body["message"].clone()),
        (serde_json::json!(true), serde_json::json!("Saved"))
    );
    let id = body["id"].as_i64().expect("id");

    let mall = MallId::parse("shop1").expect("mall");
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.tokens(&mall).await.expect("read").is_none() {
        assert!(
            Instant::now() < deadline,
            "the worker did not exchange the code"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let code = store
        .authorization_code(id)
        .await
        .expect("read")
        .expect("row");
    assert_eq!(code.status, CodeStatus::Exchanged);
    assert!(code.code.is_none());

    let api = |token: String| {
        let url = format!(
            "{}/api/v2/admin/products/count",
            sandbox.base_url_template().replace("{mall_id}", "shop1")
        );
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("api")
                .status()
        }
    };
    let first = manager.access_token(&mall).await.expect("token");
    assert_eq!(api(first.expose_secret().to_owned()).await, 200);
    let second = manager
        .refresh_rejected(&mall, &first)
        .await
        .expect("refresh");
    assert_ne!(first.expose_secret(), second.expose_secret());
    assert_eq!(api(second.expose_secret().to_owned()).await, 200);
    let stats = sandbox.stats("shop1").expect("stats");
    assert_eq!(
        (
            stats.authorization_code_grants,
            stats.refresh_grants,
            stats.refresh_tokens_rejected
        ),
        (1, 1, 0)
    );
    assert_eq!(
        store
            .tokens(&mall)
            .await
            .expect("read")
            .expect("row")
            .status,
        MallStatus::Active
    );
    let exposition = metrics.encode();
    for line in [
        r#"cafe24_oauth_code_exchanges_total{outcome="ok"} 1"#,
        r#"cafe24_oauth_token_refreshes_total{outcome="ok"} 1"#,
        "cafe24_oauth_malls_needs_reauth_total 0",
    ] {
        assert!(exposition.contains(line), "missing {line} in\n{exposition}");
    }

    let _ = stop.send(true);
    worker.await.expect("worker");
    http.await.expect("server").expect("served");
}

#[test]
fn the_demo_runs_every_step_and_exits_0() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cafe24-oauth"))
        .arg("demo")
        .output()
        .expect("run demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "1. install",
        "2. consent",
        "3. approve",
        "4. callback",
        "5. exchange",
        "6. Admin API",
        "7. refresh",
        "All steps passed",
    ] {
        assert!(stdout.contains(step), "missing {step:?} in\n{stdout}");
    }
}
