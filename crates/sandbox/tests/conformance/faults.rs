//! Faults on demand: errors, storms, dropped connections, lost token responses, latency.

use cafe24_sandbox::FaultSpec;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn error_next_answers_503_in_the_envelope_then_recovers() {
    let t = spawn().await;
    let token = t.access_token().await;
    t.sb.set_fault(
        "products",
        FaultSpec {
            error_next: 2,
            error_status: Some(503),
            ..Default::default()
        },
    )
    .expect("fault");
    for _ in 0..2 {
        let (status, body) = t.admin_json(&token, "/products").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        envelope_message(&body, 503);
    }
    assert_eq!(
        t.admin_get(&token, "/products").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        t.admin_get(&token, "/store").await.status(),
        StatusCode::OK,
        "other routes unaffected"
    );
    assert_eq!(t.sb.stats(MALL).expect("stats").faults_injected, 2);
}

#[tokio::test]
async fn admin_group_fault_covers_every_admin_route() {
    let t = spawn().await;
    let token = t.access_token().await;
    t.sb.set_fault(
        "admin",
        FaultSpec {
            error_next: 1,
            ..Default::default()
        },
    )
    .expect("fault");
    assert_eq!(
        t.admin_get(&token, "/store").await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(t.admin_get(&token, "/store").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn storm_answers_429_for_the_next_n_calls() {
    let t = spawn().await;
    let token = t.access_token().await;
    t.sb.set_fault(
        "admin",
        FaultSpec {
            storm_next: 3,
            ..Default::default()
        },
    )
    .expect("fault");
    for _ in 0..3 {
        let resp = t.admin_get(&token, "/products").await;
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()["x-api-call-limit"], "40/40");
        assert!(resp.headers().get("x-cafe24-call-remain").is_some());
    }
    assert_eq!(
        t.admin_get(&token, "/products").await.status(),
        StatusCode::OK
    );
    assert_eq!(t.sb.stats(MALL).expect("stats").rate_limited, 3);
}

#[tokio::test]
async fn dropped_connection_gets_no_response_at_all() {
    let t = spawn().await;
    let token = t.access_token().await;
    t.sb.set_fault(
        "store",
        FaultSpec {
            drop_next: 1,
            ..Default::default()
        },
    )
    .expect("fault");
    let err = t
        .http
        .get(t.mall_url("/api/v2/admin/store"))
        .bearer_auth(&token)
        .send()
        .await;
    assert!(
        err.is_err(),
        "expected a transport error, got {:?}",
        err.map(|r| r.status())
    );
    assert_eq!(t.admin_get(&token, "/store").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn lost_token_response_still_rotates_the_refresh_token() {
    let t = spawn().await;
    let first = t.tokens().await;
    let rt = first["refresh_token"].as_str().expect("rt");
    t.sb.set_fault(
        "token",
        FaultSpec {
            lose_response_next: 1,
            ..Default::default()
        },
    )
    .expect("fault");
    let lost = t
        .http
        .post(t.mall_url("/api/v2/oauth/token"))
        .header("authorization", basic(CLIENT_ID, SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
        .send()
        .await;
    assert!(lost.is_err(), "the response is lost");
    let retry = t.refresh(rt).await;
    assert_eq!(
        retry.status(),
        StatusCode::UNAUTHORIZED,
        "the old refresh token died with the rotation"
    );
    let stats = t.sb.stats(MALL).expect("stats");
    assert_eq!(stats.refresh_grants, 1);
    assert_eq!(stats.responses_lost, 1);
    assert_eq!(stats.refresh_tokens_rejected, 1);
}

#[tokio::test]
async fn lost_token_response_can_be_a_500_instead() {
    let t = spawn().await;
    let first = t.tokens().await;
    let rt = first["refresh_token"].as_str().expect("rt");
    t.sb.set_fault(
        "token",
        FaultSpec {
            lose_response_next: 1,
            lose_response_status: Some(500),
            ..Default::default()
        },
    )
    .expect("fault");
    let resp = t.refresh(rt).await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(t.refresh(rt).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn error_rate_is_reproducible_from_the_seed() {
    async fn run() -> Vec<u16> {
        let t = spawn_with(|c| c.fault_seed = 7).await;
        t.sb.set_fault(
            "token",
            FaultSpec {
                error_rate: 0.5,
                ..Default::default()
            },
        )
        .expect("fault");
        let mut out = Vec::new();
        for _ in 0..12 {
            let resp = t
                .http
                .post(t.mall_url("/api/v2/oauth/token"))
                .form(&[("grant_type", "refresh_token")])
                .send()
                .await
                .expect("resp");
            out.push(resp.status().as_u16());
        }
        out
    }
    let a = run().await;
    assert_eq!(a, run().await);
    assert!(a.contains(&500) && a.iter().any(|s| *s != 500), "{a:?}");
}

#[tokio::test]
async fn latency_delays_the_answer() {
    let t = spawn().await;
    t.sb.set_fault(
        "revoke",
        FaultSpec {
            latency_ms: 200,
            ..Default::default()
        },
    )
    .expect("fault");
    let started = std::time::Instant::now();
    let resp = t
        .http
        .post(t.mall_url("/api/v2/oauth/revoke"))
        .send()
        .await
        .expect("resp");
    // A lower bound only: sleeping guarantees at least this much.
    assert!(started.elapsed() >= std::time::Duration::from_millis(200));
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn faults_are_set_and_cleared_over_http() {
    let t = spawn().await;
    let put = t
        .http
        .put(t.sb.url("/_sandbox/faults/token"))
        .json(&json!({"error_next": 1, "error_status": 503}))
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), StatusCode::NO_CONTENT);
    let listed: Value = t
        .http
        .get(t.sb.url("/_sandbox/faults"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["faults"]["token"]["error_next"], 1);
    let bad = t
        .http
        .put(t.sb.url("/_sandbox/faults/nowhere"))
        .json(&json!({}))
        .send()
        .await
        .expect("put");
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    t.http
        .delete(t.sb.url("/_sandbox/faults"))
        .send()
        .await
        .expect("delete");
    let listed: Value = t
        .http
        .get(t.sb.url("/_sandbox/faults"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["faults"], json!({}));
}
