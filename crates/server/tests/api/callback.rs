//! `GET /oauth/callback`: the serverless spec's contract.

use cafe24_core::secret::StateKey;
use cafe24_core::state::StateSigner;
use cafe24_core::MallId;
use cafe24_store::CodeStatus;
use cafe24_testkit::{on_both_backends, TestBackend};
use std::time::Duration;

use crate::helpers::{json, spawn_app, spawn_with, TestApp};

on_both_backends!(
    a_valid_callback_stores_the_code_and_answers_saved,
    missing_or_empty_parameters_are_400_and_store_nothing,
    forged_or_tampered_states_are_refused_and_store_nothing,
    an_expired_state_is_refused,
    a_replayed_state_is_refused_with_409,
    a_merchant_denial_is_a_clear_403,
    malformed_codes_and_repeated_parameters_are_400,
    a_browser_gets_a_readable_page,
    error_bodies_never_echo_the_code,
);

/// Proves nothing was stored: ids start at 1 in a fresh database, and no row 1 exists.
async fn assert_nothing_stored(app: &TestApp) {
    assert!(
        app.store
            .authorization_code(1)
            .await
            .expect("read")
            .is_none(),
        "a row was stored"
    );
}

async fn a_valid_callback_stores_the_code_and_answers_saved(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let state = app.fresh_state("shop1");
    let response = app.callback("code-123", &state).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .starts_with("application/json"));
    let body = json(response).await;
    assert_eq!(body["ok"], true);
    assert_eq!(body["message"], "Saved");
    let id = body["id"].as_i64().expect("numeric id");
    let row = app
        .store
        .authorization_code(id)
        .await
        .expect("read")
        .expect("row");
    assert_eq!(
        row.code.as_ref().map(|c| c.expose_secret().to_owned()),
        Some("code-123".into())
    );
    assert_eq!(row.state, state);
    assert_eq!(row.mall_id, Some(MallId::parse("shop1").expect("mall")));
    assert_eq!(row.status, CodeStatus::Pending);
}

async fn missing_or_empty_parameters_are_400_and_store_nothing(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let state = app.fresh_state("shop1");
    let cases = [
        "/oauth/callback".to_owned(),
        "/oauth/callback?".to_owned(),
        "/oauth/callback?code=abc".to_owned(),
        format!("/oauth/callback?state={state}"),
        format!("/oauth/callback?code=&state={state}"),
        "/oauth/callback?code=abc&state=".to_owned(),
        "/oauth/callback?code&state".to_owned(),
    ];
    for path in cases {
        let response = app.get(&path).await;
        assert_eq!(response.status(), 400, "{path}");
        let body = json(response).await;
        assert_eq!(body["ok"], false);
        assert_eq!(body["error"], "missing_parameter", "{path}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_nothing_stored(&app).await;
}

async fn forged_or_tampered_states_are_refused_and_store_nothing(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let mall = MallId::parse("shop1").expect("mall");
    let forger = StateSigner::new(
        StateKey::new("attacker-key-attacker-key-attacker"),
        Duration::from_secs(600),
    );
    let forged = forger.issue(&mall, chrono::Utc::now()).as_str().to_owned();
    let genuine = app.fresh_state("shop1");
    let tampered = genuine.replacen("shop1", "shop2", 1);
    for state in [
        forged.as_str(),
        tampered.as_str(),
        "shop1",
        "v1.shop1.0.x.y",
        &"x".repeat(300),
    ] {
        let response = app.callback("code-1", state).await;
        assert_eq!(response.status(), 400, "{state}");
        assert_eq!(json(response).await["error"], "invalid_state");
    }
    assert_nothing_stored(&app).await;
}

async fn an_expired_state_is_refused(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let mall = MallId::parse("shop1").expect("mall");
    let old = chrono::Utc::now() - chrono::Duration::seconds(601);
    let state = app.signer().issue(&mall, old).as_str().to_owned();
    let response = app.callback("code-1", &state).await;
    assert_eq!(response.status(), 400);
    assert_eq!(json(response).await["error"], "state_expired");
    assert_nothing_stored(&app).await;
}

async fn a_replayed_state_is_refused_with_409(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let state = app.fresh_state("shop1");
    assert_eq!(app.callback("code-1", &state).await.status(), 200);
    for code in ["code-1", "code-2"] {
        let response = app.callback(code, &state).await;
        assert_eq!(response.status(), 409);
        assert_eq!(json(response).await["error"], "state_already_used");
    }
    assert!(
        app.store
            .authorization_code(2)
            .await
            .expect("read")
            .is_none(),
        "the replay stored a row"
    );
}

async fn a_merchant_denial_is_a_clear_403(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let state = app.fresh_state("shop1");
    let response = app
        .get(&format!(
            "/oauth/callback?error=access_denied&state={state}"
        ))
        .await;
    assert_eq!(response.status(), 403);
    let body = json(response).await;
    assert_eq!(body["error"], "access_denied");
    assert!(body["message"]
        .as_str()
        .is_some_and(|m| m.contains("access_denied")));
    let hostile = app
        .get("/oauth/callback?error=%3Cscript%3E&error_description=x")
        .await;
    assert_eq!(hostile.status(), 403);
    assert!(!hostile.text().await.expect("body").contains("<script>"));
    assert_nothing_stored(&app).await;
}

async fn malformed_codes_and_repeated_parameters_are_400(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let state = app.fresh_state("shop1");
    let long = "c".repeat(513);
    for code in [long.as_str(), "has space", "tab\there", "ünïcode", "nul\0"] {
        let response = app.callback(code, &state).await;
        assert_eq!(response.status(), 400, "{code:?}");
        assert_eq!(json(response).await["error"], "invalid_parameter");
    }
    let twice = app
        .get(&format!("/oauth/callback?code=a&code=b&state={state}"))
        .await;
    assert_eq!(twice.status(), 400);
    assert_eq!(json(twice).await["error"], "duplicate_parameter");
    assert_nothing_stored(&app).await;
    // The state was not consumed by the refusals: it still works once.
    assert_eq!(app.callback("good-code", &state).await.status(), 200);
}

async fn a_browser_gets_a_readable_page(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let state = app.fresh_state("shop1");
    let query = format!("/oauth/callback?code=abc&state={}", urlencode(&state));
    let ok = app.get_accepting(&query, accept).await;
    assert_eq!(ok.status(), 200);
    assert!(ok.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .starts_with("text/html"));
    let html = ok.text().await.expect("body");
    assert!(
        html.contains("App installed") && html.contains("data-ok=\"true\""),
        "{html}"
    );
    let bad = app.get_accepting("/oauth/callback?code=abc", accept).await;
    assert_eq!(bad.status(), 400);
    let html = bad.text().await.expect("body");
    assert!(html.starts_with("<!doctype html>") && html.contains("data-ok=\"false\""));
}

async fn error_bodies_never_echo_the_code(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let secret_code = "SECRETCODE9f8e7d";
    let state = app.fresh_state("shop1");
    let forged_state = state.replacen("shop1", "shop9", 1);
    let responses = [
        app.callback(secret_code, &forged_state).await,
        app.get(&format!("/oauth/callback?code={secret_code}"))
            .await,
        app.get(&format!(
            "/oauth/callback?code={secret_code}&code=x&state={state}"
        ))
        .await,
    ];
    for response in responses {
        let text = response.text().await.expect("body");
        assert!(!text.contains(secret_code), "code echoed in {text}");
    }
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn a_state_is_single_use_across_servers_sharing_a_database() {
    let db = cafe24_testkit::fresh_postgres().await;
    let first = spawn_with(db.clone(), &[], true).await;
    let second = spawn_with(db, &[], false).await;
    let state = first.fresh_state("shop1");
    assert_eq!(first.callback("code-1", &state).await.status(), 200);
    let replay = second.callback("code-1", &state).await;
    assert_eq!(replay.status(), 409);
}

#[tokio::test]
async fn an_unreachable_database_answers_503() {
    let app = spawn_with(cafe24_testkit::unreachable_postgres(), &[], false).await;
    let state = app.fresh_state("shop1");
    let response = app.callback("code-1", &state).await;
    assert_eq!(response.status(), 503);
    let body = json(response).await;
    assert_eq!(body["error"], "database_unavailable");
    assert!(
        !body.to_string().contains("127.0.0.1"),
        "connection details leaked: {body}"
    );
}

/// Codes and install outcomes must not sit in a browser's or a proxy's cache.
fn assert_not_cached(response: &reqwest::Response, what: &str) {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("cache-control"), "no-store", "{what}");
    assert_eq!(header("pragma"), "no-cache", "{what}");
}

#[tokio::test]
async fn every_callback_response_is_marked_no_store() {
    let app = spawn_app(TestBackend::Sqlite).await;
    let html = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let state = app.fresh_state("shop1");
    let saved = format!("/oauth/callback?code=abc&state={}", urlencode(&state));
    let other = app.fresh_state("shop2");
    let saved_html = format!("/oauth/callback?code=def&state={}", urlencode(&other));
    let cases = [
        ("saved, JSON", app.get(&saved).await, 200),
        (
            "saved, HTML",
            app.get_accepting(&saved_html, html).await,
            200,
        ),
        ("replayed", app.get(&saved).await, 409),
        (
            "missing state",
            app.get("/oauth/callback?code=abc").await,
            400,
        ),
        (
            "missing state, HTML",
            app.get_accepting("/oauth/callback?code=abc", html).await,
            400,
        ),
        (
            "denied",
            app.get("/oauth/callback?error=access_denied").await,
            403,
        ),
        (
            "forged state",
            app.callback("abc", "v1.shop1.0.x.y").await,
            400,
        ),
    ];
    for (what, response, status) in &cases {
        assert_eq!(response.status(), *status, "{what}");
        assert_not_cached(response, what);
    }

    let down = spawn_with(cafe24_testkit::unreachable_postgres(), &[], false).await;
    let response = down.callback("code-1", &down.fresh_state("shop1")).await;
    assert_eq!(response.status(), 503);
    assert_not_cached(&response, "database unavailable");
}

/// A callback held past `HTTP_REQUEST_TIMEOUT_SECS` (here the table is locked) is answered 408,
/// JSON and `no-store`; its code reaches the database anyway once the lock is gone.
#[tokio::test]
async fn a_callback_held_past_the_request_timeout_is_408_and_its_code_is_still_stored() {
    use sqlx::{Connection, Executor};
    let db = cafe24_testkit::fresh_postgres().await;
    let cafe24_core::settings::DatabaseKind::PostgresUrl(url) = &db.kind else {
        panic!("postgres")
    };
    let url = url.expose_secret().to_owned();
    let app = spawn_with(db, &[("HTTP_REQUEST_TIMEOUT_SECS", "1")], true).await;
    let mut holder = sqlx::PgConnection::connect(&url).await.expect("connect");
    let mut locked = holder.begin().await.expect("begin");
    locked
        .execute("LOCK TABLE cafe24.authorization_codes IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    let state = app.fresh_state("shop1");
    let sent = std::time::Instant::now();
    let late = app.callback("late-code", &state).await;
    let waited = sent.elapsed();
    assert_eq!(late.status(), 408);
    assert_eq!(
        late.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    assert_eq!(json(late).await["error"], "timeout");
    locked.rollback().await.expect("unlock");
    let started = std::time::Instant::now();
    loop {
        if let Some(row) = app.store.authorization_code(1).await.expect("read") {
            assert_eq!(row.state, state);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the code was never stored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.callback("late-code", &state).await.status(), 409);
}
