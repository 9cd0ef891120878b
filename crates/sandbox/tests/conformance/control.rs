//! Inspection and control over HTTP: what tests in other processes rely on.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

async fn get_json(t: &TestSandbox, path: &str) -> Value {
    t.http
        .get(t.sb.url(path))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn stats_over_http_count_grants_exactly() {
    let t = spawn().await;
    let first = t.tokens().await;
    let rt = first["refresh_token"].as_str().expect("rt");
    assert_eq!(t.refresh(rt).await.status(), StatusCode::OK);
    let s = get_json(&t, &format!("/_sandbox/stats/{MALL}")).await;
    assert_eq!(s["authorization_code_grants"], 1);
    assert_eq!(s["refresh_grants"], 1);
    assert_eq!(s["refresh_tokens_issued"], 2);
    assert_eq!(s["refresh_tokens_rejected"], 0);
    assert_eq!(t.refresh(rt).await.status(), StatusCode::UNAUTHORIZED);
    let all = get_json(&t, "/_sandbox/stats").await;
    assert_eq!(all["malls"][MALL]["refresh_tokens_rejected"], 1);
    assert_eq!(all["totals"]["refresh_grants"], 1);
    let reset = t
        .http
        .post(t.sb.url("/_sandbox/stats/reset"))
        .send()
        .await
        .expect("reset");
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        get_json(&t, &format!("/_sandbox/stats/{MALL}")).await["refresh_grants"],
        0
    );
}

#[tokio::test]
async fn api_calls_and_revokes_are_counted() {
    let t = spawn().await;
    let token = t.access_token().await;
    for _ in 0..3 {
        t.admin_get(&token, "/products").await;
    }
    let s = t.sb.stats(MALL).expect("stats");
    assert_eq!(s.api_calls, 3);
    assert_eq!(s.rate_limited, 0);
}

#[tokio::test]
async fn malls_and_apps_can_be_added_at_run_time() {
    let t = spawn_with(|c| c.auto_approve = true).await;
    let resp = t
        .http
        .post(t.sb.url("/_sandbox/malls"))
        .json(&json!({"mall_id": "newmall", "products": 7, "shop_no": 2}))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let bad = t
        .http
        .post(t.sb.url("/_sandbox/malls"))
        .json(&json!({"mall_id": "Bad.Mall"}))
        .send()
        .await
        .expect("post");
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let resp = t
        .http
        .post(t.sb.url("/_sandbox/apps"))
        .json(&json!({"client_id": "app2", "client_secret": "s2", "name": "Second",
                      "redirect_uris": ["http://127.0.0.1:7000/cb"], "scopes": ["mall.read_product"]}))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let auth = t
        .http
        .get(t.sb.url("/malls/newmall/api/v2/oauth/authorize?response_type=code&client_id=app2&state=z&redirect_uri=http%3A%2F%2F127.0.0.1%3A7000%2Fcb&scope=mall.read_product"))
        .send()
        .await
        .expect("get");
    assert_eq!(auth.status(), StatusCode::FOUND);
    let code = location_query(&auth).remove("code").expect("code");
    let tok: Value = t
        .http
        .post(t.sb.url("/malls/newmall/api/v2/oauth/token"))
        .header("authorization", basic("app2", "s2"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "http://127.0.0.1:7000/cb"),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    assert_eq!(tok["shop_no"], "2");
    let at = tok["access_token"].as_str().expect("at");
    let count: Value = t
        .http
        .get(t.sb.url("/malls/newmall/api/v2/admin/products/count"))
        .bearer_auth(at)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(count, json!({"count": 7}));
}

#[tokio::test]
async fn unknown_malls_are_created_on_first_use_when_enabled() {
    let t = spawn_with(|c| {
        c.auto_create_malls = true;
        c.auto_approve = true;
    })
    .await;
    let resp = t
        .http
        .get(t.sb.url(&format!(
            "/malls/mall-0042/api/v2/oauth/authorize?response_type=code&client_id={CLIENT_ID}&state=s&redirect_uri={}&scope=mall.read_product",
            form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
        )))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), StatusCode::FOUND);
    let bad = t
        .http
        .get(t.sb.url("/malls/EVIL..host/api/v2/admin/store"))
        .send()
        .await
        .expect("get");
    assert_eq!(bad.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn clock_moves_over_http() {
    let t = spawn().await;
    let before = get_json(&t, "/_sandbox/clock").await;
    assert_eq!(before["frozen"], false);
    let moved: Value = t
        .http
        .post(t.sb.url("/_sandbox/clock"))
        .json(&json!({"freeze": true, "advance_secs": 3600}))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    assert_eq!(moved["frozen"], true);
    assert!(moved["offset_ms"].as_i64().expect("offset") >= 3_599_000);
    assert!(moved["now_kst"].as_str().expect("kst").ends_with("+09:00"));
}

#[tokio::test]
async fn health_answers_ok() {
    let t = spawn().await;
    assert_eq!(
        get_json(&t, "/_sandbox/health").await,
        json!({"status": "ok"})
    );
}

#[tokio::test]
async fn config_loads_from_toml() {
    let dir = std::env::temp_dir().join(format!("sandbox-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("sandbox.toml");
    std::fs::write(
        &path,
        r#"
auto_approve = true
access_token_ttl_secs = 10
[[apps]]
client_id = "from-toml"
client_secret = "toml-secret"
name = "Toml App"
redirect_uris = ["http://127.0.0.1:1/cb"]
scopes = ["mall.read_product"]
[[malls]]
mall_id = "tomlmall"
products = 3
[rate_limit]
bucket_size = 5.0
"#,
    )
    .expect("write");
    let cfg = cafe24_sandbox::SandboxConfig::from_file(&path).expect("parse");
    assert!(cfg.auto_approve);
    assert_eq!(cfg.apps[0].client_id, "from-toml");
    assert_eq!(format!("{:?}", cfg.apps[0].client_secret), "[redacted]");
    assert_eq!(cfg.malls[0].products, 3);
    assert_eq!(cfg.rate_limit.bucket_size, 5.0);
    assert_eq!(cfg.rate_limit.drain_per_sec, 2.0);
    assert_eq!(cfg.refresh_token_ttl_secs, 1_209_600);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn lifetimes_changed_at_run_time_apply_to_tokens_issued_afterwards() {
    let t = spawn().await;
    let before = t.tokens().await;
    let old_access = before["access_token"].as_str().expect("at").to_owned();
    let set = t
        .http
        .put(t.sb.url("/_sandbox/lifetimes"))
        .json(&json!({"access_token_ttl_secs": 60}))
        .send()
        .await
        .expect("put");
    assert_eq!(set.status(), StatusCode::OK);
    assert_eq!(
        get_json(&t, "/_sandbox/lifetimes").await,
        json!({"access_token_ttl_secs": 60, "refresh_token_ttl_secs": 1_209_600})
    );
    let rt = before["refresh_token"].as_str().expect("rt");
    let after: Value = t.refresh(rt).await.json().await.expect("json");
    let new_access = after["access_token"].as_str().expect("at");
    let info = t.sb.token_info(new_access).expect("held");
    assert_eq!(info.kind, cafe24_sandbox::TokenKind::Access);
    assert_eq!(info.mall_id, MALL);
    let lifetime = (info.expires_at - t.sb.now()).num_seconds();
    assert!((58..=60).contains(&lifetime), "{lifetime}");
    // Tokens issued before keep their lifetime; a rotated-away refresh token is forgotten.
    let old = t.sb.token_info(&old_access).expect("old access survives");
    assert!((old.expires_at - t.sb.now()).num_seconds() > 7000);
    assert_eq!(t.sb.token_info(rt), None);
    let new_refresh = after["refresh_token"].as_str().expect("rt");
    assert_eq!(
        t.sb.token_info(new_refresh).map(|i| i.kind),
        Some(cafe24_sandbox::TokenKind::Refresh)
    );
    assert!(t.sb.set_token_lifetimes(0, 10).is_err());
}
