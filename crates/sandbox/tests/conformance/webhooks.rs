//! CAFE24.md §7: webhook deliveries, authentication header, retries, logs.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use cafe24_sandbox::{FireOptions, Secret, WebhookAuth, WebhookAuthScheme};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::*;

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    /// Statuses to answer with, in order; 200 once empty.
    script: Arc<Mutex<VecDeque<u16>>>,
}

/// A local app that records what it receives.
async fn receiver(script: &[u16]) -> (String, Receiver) {
    let r = Receiver::default();
    r.script
        .lock()
        .expect("lock")
        .extend(script.iter().copied());
    let r2 = r.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: String| {
            let r = r2.clone();
            async move {
                r.got.lock().expect("lock").push((headers, body));
                let code = r.script.lock().expect("lock").pop_front().unwrap_or(200);
                StatusCode::from_u16(code).expect("status")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hook"), r)
}

fn wait() -> FireOptions {
    FireOptions {
        wait: true,
        ..FireOptions::default()
    }
}

#[tokio::test]
async fn webhook_delivers_event_with_auth_and_trace_headers() {
    let (url, r) = receiver(&[]).await;
    let t = spawn_with(|c| c.apps[0].webhook_url = Some(url.clone())).await;
    let report =
        t.sb.fire_webhook(MALL, 90001, json!({"product_no": 7}), wait())
            .await
            .expect("fire");
    assert_eq!(report.deliveries.len(), 1);
    assert_eq!(report.deliveries[0].status, "delivered");
    let got = r.got.lock().expect("lock").clone();
    assert_eq!(got.len(), 1);
    let (headers, body) = &got[0];
    let body: Value = serde_json::from_str(body).expect("json");
    assert_eq!(body["event_no"], 90001);
    assert_eq!(body["resource"]["mall_id"], MALL);
    assert_eq!(body["resource"]["event_shop_no"], "1");
    assert_eq!(body["resource"]["product_no"], 7);
    assert_eq!(headers["x-api-key"], "sandbox-webhook-key");
    assert_eq!(
        headers["x-trace-id"].to_str().expect("ascii"),
        report.deliveries[0].trace_id
    );
    let logs = t.sb.webhook_logs(MALL);
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].trace_id, report.deliveries[0].trace_id);
    assert_eq!(logs[0].success, "T");
    assert_eq!(logs[0].log_type, "G");
}

#[tokio::test]
async fn hmac_scheme_signs_the_body() {
    let (url, r) = receiver(&[]).await;
    let t = spawn_with(|c| {
        c.apps[0].webhook_url = Some(url.clone());
        c.apps[0].webhook_auth = WebhookAuth {
            header: "X-Signature".into(),
            key: Secret::new("k3y"),
            scheme: WebhookAuthScheme::HmacSha256Hex,
        };
    })
    .await;
    t.sb.fire_webhook(MALL, 90002, json!({}), wait())
        .await
        .expect("fire");
    let (headers, body) = r.got.lock().expect("lock")[0].clone();
    let mut mac = Hmac::<Sha256>::new_from_slice(b"k3y").expect("key");
    mac.update(body.as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(headers["x-signature"].to_str().expect("ascii"), hex);
}

#[tokio::test]
async fn failed_deliveries_are_retried_and_every_attempt_logged() {
    let (url, r) = receiver(&[500, 503]).await;
    let t = spawn_with(|c| {
        c.apps[0].webhook_url = Some(url.clone());
        c.webhooks.backoff_ms = 10;
        c.webhooks.max_attempts = 3;
    })
    .await;
    let report =
        t.sb.fire_webhook(MALL, 90001, json!({}), wait())
            .await
            .expect("fire");
    assert_eq!(report.deliveries[0].status, "delivered");
    assert_eq!(report.deliveries[0].attempts, 3);
    assert_eq!(r.got.lock().expect("lock").len(), 3);
    let logs = t.sb.webhook_logs(MALL);
    let summary: Vec<(&str, &str, Option<u16>)> = logs
        .iter()
        .map(|l| {
            (
                l.log_type.as_str(),
                l.success.as_str(),
                l.response_http_code,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("G", "F", Some(500)),
            ("R", "F", Some(503)),
            ("R", "T", Some(200))
        ]
    );
    assert!(logs
        .iter()
        .all(|l| l.trace_id == report.deliveries[0].trace_id));
}

#[tokio::test]
async fn giving_up_after_max_attempts_is_logged_as_failed() {
    let (url, _r) = receiver(&[500, 500, 500, 500]).await;
    let t = spawn_with(|c| {
        c.apps[0].webhook_url = Some(url.clone());
        c.webhooks.backoff_ms = 1;
        c.webhooks.max_attempts = 2;
    })
    .await;
    let report =
        t.sb.fire_webhook(MALL, 90001, json!({}), wait())
            .await
            .expect("fire");
    assert_eq!(report.deliveries[0].status, "failed");
    assert_eq!(t.sb.webhook_logs(MALL).len(), 2);
    assert_eq!(t.sb.stats(MALL).expect("stats").webhook_failures, 2);
}

#[tokio::test]
async fn lost_delivery_is_logged_as_sent_but_never_arrives() {
    let (url, r) = receiver(&[]).await;
    let t = spawn_with(|c| c.apps[0].webhook_url = Some(url.clone())).await;
    let opts = FireOptions {
        lose: true,
        wait: true,
        ..FireOptions::default()
    };
    let report =
        t.sb.fire_webhook(MALL, 90001, json!({}), opts)
            .await
            .expect("fire");
    assert_eq!(report.deliveries[0].status, "lost");
    assert!(r.got.lock().expect("lock").is_empty());
    let logs = t.sb.webhook_logs(MALL);
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].success, "T");
}

#[tokio::test]
async fn logs_api_shows_request_body_as_string_and_filters() {
    let (url, _r) = receiver(&[500]).await;
    let t = spawn_with(|c| {
        c.apps[0].webhook_url = Some(url.clone());
        c.webhooks.backoff_ms = 1;
    })
    .await;
    t.sb.fire_webhook(MALL, 90001, json!({}), wait())
        .await
        .expect("fire");
    t.sb.fire_webhook(MALL, 90003, json!({}), wait())
        .await
        .expect("fire");
    let token = t.access_token().await;
    let (status, body) = t.admin_json(&token, "/webhooks/logs").await;
    assert_eq!(status, StatusCode::OK);
    let logs = body["logs"].as_array().expect("array");
    assert_eq!(logs.len(), 3);
    let first = &logs[0];
    for k in [
        "log_id",
        "log_type",
        "event_no",
        "mall_id",
        "trace_id",
        "requested_time",
        "request_endpoint",
        "request_body",
        "success",
        "response_http_code",
        "response_body",
    ] {
        assert!(first.get(k).is_some(), "missing {k}");
    }
    let inner: Value =
        serde_json::from_str(first["request_body"].as_str().expect("string")).expect("json string");
    assert_eq!(inner["event_no"], 90001);
    let (_, failed) = t.admin_json(&token, "/webhooks/logs?success=F").await;
    assert_eq!(failed["logs"].as_array().expect("array").len(), 1);
    let (_, by_event) = t.admin_json(&token, "/webhooks/logs?event_no=90003").await;
    assert_eq!(by_event["logs"].as_array().expect("array").len(), 1);
    let first_id = first["log_id"].as_str().expect("id");
    let (_, since) = t
        .admin_json(
            &token,
            &format!("/webhooks/logs?since_log_id={first_id}&limit=1"),
        )
        .await;
    assert_eq!(since["logs"].as_array().expect("array").len(), 1);
    assert_ne!(since["logs"][0]["log_id"], first["log_id"]);
}

#[tokio::test]
async fn fire_over_http_and_reception_off_sends_nothing() {
    let (url, r) = receiver(&[]).await;
    let t = spawn_with(|c| c.apps[0].webhook_url = Some(url.clone())).await;
    let resp = t
        .http
        .post(t.sb.url("/_sandbox/webhooks/fire"))
        .json(&json!({"mall_id": MALL, "event_no": 90078, "wait": true}))
        .send()
        .await
        .expect("fire");
    assert_eq!(resp.status(), StatusCode::OK);
    let report: Value = resp.json().await.expect("json");
    assert_eq!(report["deliveries"][0]["status"], "delivered");
    let token = t.access_token().await;
    t.http
        .put(t.mall_url("/api/v2/admin/webhooks/setting"))
        .bearer_auth(&token)
        .json(&json!({"request": {"reception_status": "F"}}))
        .send()
        .await
        .expect("put");
    let report =
        t.sb.fire_webhook(MALL, 90001, json!({}), wait())
            .await
            .expect("fire");
    assert!(!report.reception);
    assert!(report.deliveries.is_empty());
    assert_eq!(r.got.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn variant_update_fires_product_edited() {
    let (url, r) = receiver(&[]).await;
    let t = spawn_with(|c| c.apps[0].webhook_url = Some(url.clone())).await;
    let token = t.access_token().await;
    let resp = t
        .http
        .put(t.mall_url("/api/v2/admin/products/3/variants/P000000C000A"))
        .bearer_auth(&token)
        .json(&json!({"shop_no": 1, "request": {"quantity": 2}}))
        .send()
        .await
        .expect("put");
    assert_eq!(resp.status(), StatusCode::OK);
    for _ in 0..200 {
        if !r.got.lock().expect("lock").is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let got = r.got.lock().expect("lock").clone();
    let body: Value = serde_json::from_str(&got[0].1).expect("json");
    assert_eq!(body["event_no"], 90002);
    assert_eq!(body["resource"]["product_no"], 3);
}

#[tokio::test]
async fn uninstall_revokes_tokens_and_sends_90077() {
    let (url, r) = receiver(&[]).await;
    let t = spawn_with(|c| c.apps[0].webhook_url = Some(url.clone())).await;
    let token = t.access_token().await;
    let resp = t
        .http
        .post(t.sb.url(&format!("/_sandbox/malls/{MALL}/uninstall")))
        .json(&json!({"client_id": CLIENT_ID}))
        .send()
        .await
        .expect("uninstall");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        t.admin_get(&token, "/store").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let body: Value = serde_json::from_str(&r.got.lock().expect("lock")[0].1).expect("json");
    assert_eq!(body["event_no"], 90077);
}
