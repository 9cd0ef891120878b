//! CAFE24.md §5: the per-mall leaky bucket and its headers.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().expect("ascii").to_string())
}

#[tokio::test]
async fn bucket_overflows_at_41st_call_with_429() {
    let t = spawn().await;
    let token = t.access_token().await;
    t.sb.freeze_clock();
    for i in 1..=40 {
        let resp = t.admin_get(&token, "/store").await;
        assert_eq!(resp.status(), StatusCode::OK, "call {i}");
        assert_eq!(header(&resp, "x-api-call-limit"), Some(format!("{i}/40")));
    }
    let resp = t.admin_get(&token, "/store").await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&resp, "x-api-call-limit").as_deref(), Some("40/40"));
    let body: Value = resp.json().await.expect("json");
    envelope_message(&body, 429);
    let stats = t.sb.stats(MALL).expect("stats");
    assert_eq!(stats.rate_limited, 1);
    assert_eq!(stats.api_calls, 41);
}

#[tokio::test]
async fn bucket_drains_two_calls_per_second() {
    let t = spawn().await;
    let token = t.access_token().await;
    t.sb.freeze_clock();
    for _ in 0..40 {
        t.admin_get(&token, "/store").await;
    }
    assert_eq!(
        t.admin_get(&token, "/store").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    t.sb.advance_clock(chrono::Duration::seconds(1));
    assert_eq!(t.admin_get(&token, "/store").await.status(), StatusCode::OK);
    assert_eq!(t.admin_get(&token, "/store").await.status(), StatusCode::OK);
    assert_eq!(
        t.admin_get(&token, "/store").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    t.sb.advance_clock(chrono::Duration::milliseconds(500));
    let resp = t.admin_get(&token, "/store").await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "half a second drains one call"
    );
}

#[tokio::test]
async fn buckets_are_per_mall() {
    let t = spawn_with(|c| c.auto_create_malls = true).await;
    let token = t.access_token().await;
    t.sb.freeze_clock();
    for _ in 0..40 {
        t.admin_get(&token, "/store").await;
    }
    let resp = t
        .http
        .get(t.sb.url("/malls/freshmall/api/v2/admin/store"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("get");
    assert_eq!(header(&resp, "x-api-call-limit").as_deref(), Some("0/40"));
}

#[tokio::test]
async fn call_limit_header_is_on_every_admin_response_even_errors() {
    let t = spawn().await;
    let resp = t.admin_get("bogus", "/products").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&resp, "x-api-call-limit").as_deref(), Some("0/40"));
    let token = t.access_token().await;
    let resp = t.admin_get(&token, "/products?limit=500").await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(header(&resp, "x-api-call-limit").is_some());
}

#[tokio::test]
async fn remain_headers_only_at_full_usage() {
    let t = spawn().await;
    let token = t.access_token().await;
    t.sb.freeze_clock();
    let resp = t.admin_get(&token, "/store").await;
    assert_eq!(header(&resp, "x-cafe24-call-usage").as_deref(), Some("3"));
    assert!(header(&resp, "x-cafe24-time-usage").is_some());
    assert!(header(&resp, "x-cafe24-call-remain").is_none());
    assert!(header(&resp, "x-cafe24-time-remain").is_none());
    for _ in 0..39 {
        t.admin_get(&token, "/store").await;
    }
    let resp = t.admin_get(&token, "/store").await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&resp, "x-cafe24-call-usage").as_deref(), Some("100"));
    assert_eq!(header(&resp, "x-cafe24-call-remain").as_deref(), Some("1"));
    assert_eq!(header(&resp, "x-cafe24-time-remain").as_deref(), Some("1"));
}

#[tokio::test]
async fn bucket_size_and_drain_are_configurable() {
    let t = spawn_with(|c| {
        c.rate_limit.bucket_size = 3.0;
        c.rate_limit.drain_per_sec = 1.0;
    })
    .await;
    let token = t.access_token().await;
    t.sb.freeze_clock();
    for _ in 0..3 {
        assert_eq!(t.admin_get(&token, "/store").await.status(), StatusCode::OK);
    }
    let resp = t.admin_get(&token, "/store").await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&resp, "x-api-call-limit").as_deref(), Some("3/3"));
}
