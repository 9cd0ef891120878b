//! Health, readiness, metrics, limits and the JSON answers for unknown routes.

use cafe24_testkit::{fresh_sqlite, on_both_backends, unreachable_postgres, TestBackend};

use crate::helpers::{json, spawn_app, spawn_with};

on_both_backends!(health_and_readiness_answer);

async fn health_and_readiness_answer(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert_eq!(json(health).await["ok"], true);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    assert_eq!(json(ready).await["database"], "up");
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_unreachable() {
    let app = spawn_with(unreachable_postgres(), &[], false).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 503);
    assert_eq!(json(ready).await["error"], "database_unavailable");
}

#[tokio::test]
async fn metrics_count_requests_callback_outcomes_and_latency() {
    let app = spawn_with(fresh_sqlite(), &[], true).await;
    let state = app.fresh_state("shop1");
    assert_eq!(app.callback("c1", &state).await.status(), 200);
    assert_eq!(app.callback("c2", &state).await.status(), 409);
    assert_eq!(app.get("/oauth/callback").await.status(), 400);
    let text = app.get("/metrics").await.text().await.expect("body");
    for line in [
        r#"cafe24_oauth_http_requests_total{route="/oauth/callback",method="GET",status="200"} 1"#,
        r#"cafe24_oauth_http_requests_total{route="/oauth/callback",method="GET",status="409"} 1"#,
        r#"cafe24_oauth_http_requests_total{route="/oauth/callback",method="GET",status="400"} 1"#,
        r#"cafe24_oauth_callback_outcomes_total{outcome="saved"} 1"#,
        r#"cafe24_oauth_callback_outcomes_total{outcome="state_replayed"} 1"#,
        r#"cafe24_oauth_callback_outcomes_total{outcome="missing_parameter"} 1"#,
        r#"cafe24_oauth_http_request_duration_seconds_count{route="/oauth/callback"} 3"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    assert!(text.contains("cafe24_oauth_http_request_duration_seconds_bucket{le=\"0.0005\",route=\"/oauth/callback\"}")
        || text.contains("cafe24_oauth_http_request_duration_seconds_bucket{route=\"/oauth/callback\",le=\"0.0005\"}"), "{text}");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let app = spawn_with(fresh_sqlite(), &[], true).await;
    let missing = app.get("/nope").await;
    assert_eq!(missing.status(), 404);
    assert_eq!(json(missing).await["error"], "not_found");
    let post = app
        .client
        .post(app.url("/oauth/callback"))
        .send()
        .await
        .expect("post");
    assert_eq!(post.status(), 405);
    assert_eq!(json(post).await["error"], "method_not_allowed");
}

#[tokio::test]
async fn oversized_requests_are_refused() {
    let app = spawn_with(fresh_sqlite(), &[("HTTP_MAX_BODY_BYTES", "1024")], true).await;
    let state = app.fresh_state("shop1");
    let long = app
        .get(&format!(
            "/oauth/callback?code={}&state={state}",
            "a".repeat(9000)
        ))
        .await;
    assert_eq!(long.status(), 414);
    assert_eq!(json(long).await["error"], "uri_too_long");
    let body = app
        .client
        .get(app.url("/oauth/callback?code=a"))
        .body(vec![b'x'; 4096])
        .send()
        .await
        .expect("send");
    assert_eq!(body.status(), 413);
    assert_eq!(json(body).await["error"], "body_too_large");
    assert!(app
        .store
        .authorization_code(1)
        .await
        .expect("read")
        .is_none());
}
