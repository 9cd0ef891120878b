//! `GET /install`: the App URL.

use cafe24_core::launch::sign_query;
use cafe24_core::secret::ClientSecret;
use cafe24_testkit::{fresh_sqlite, on_both_backends, TestBackend};

use crate::helpers::{json, spawn_app, spawn_with, TestApp, CLIENT_SECRET};

on_both_backends!(
    install_redirects_to_cafe24_with_a_signed_state,
    the_state_from_install_completes_a_callback
);

fn launch_query(mall: &str, timestamp: i64) -> String {
    format!(
        "is_multi_shop=F&lang=ko_KR&mall_id={mall}&nation=KR&shop_no=1&timestamp={timestamp}&user_id={mall}&user_name=%ED%99%8D%EA%B8%B8%EB%8F%99&user_type=P"
    )
}

fn signed_launch(mall: &str) -> String {
    sign_query(
        &launch_query(mall, chrono::Utc::now().timestamp()),
        &ClientSecret::new(CLIENT_SECRET),
    )
}

fn location(response: &reqwest::Response) -> url::Url {
    let raw = response.headers()["location"]
        .to_str()
        .expect("ascii location");
    url::Url::parse(raw).expect("absolute location")
}

async fn install_redirects_to_cafe24_with_a_signed_state(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let response = app.get("/install?mall_id=shop1").await;
    assert_eq!(response.status(), 302);
    let url = location(&response);
    assert_eq!(url.scheme(), "https");
    assert_eq!(url.host_str(), Some("shop1.cafe24api.com"));
    assert_eq!(url.path(), "/api/v2/oauth/authorize");
    let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "test-client");
    assert_eq!(q["redirect_uri"], "https://app.example.com/oauth/callback");
    assert_eq!(q["scope"], "mall.read_product,mall.read_store");
    let verified = app
        .signer()
        .verify(&q["state"], chrono::Utc::now())
        .expect("state verifies");
    assert_eq!(verified.mall_id.as_str(), "shop1");
    assert_eq!(response.headers()["cache-control"], "no-store");
}

async fn the_state_from_install_completes_a_callback(backend: TestBackend) {
    let app = spawn_app(backend).await;
    let response = app
        .get(&format!("/install?{}", signed_launch("shop7")))
        .await;
    assert_eq!(response.status(), 302);
    let state = location(&response)
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state");
    let saved = app.callback("code-7", &state).await;
    assert_eq!(saved.status(), 200);
    let id = json(saved).await["id"].as_i64().expect("id");
    let row = app
        .store
        .authorization_code(id)
        .await
        .expect("read")
        .expect("row");
    assert_eq!(row.mall_id.map(|m| m.to_string()).as_deref(), Some("shop7"));
}

async fn sqlite_app(extra: &[(&'static str, &str)]) -> TestApp {
    spawn_with(fresh_sqlite(), extra, true).await
}

#[tokio::test]
async fn hostile_mall_ids_are_refused_without_redirect() {
    let app = sqlite_app(&[]).await;
    let hostile = [
        "evil.com",
        "shop1.evil.com",
        "shop1%2Fpath",
        "shop1%40evil",
        "shop%25",
        "shop%20one",
        "SHOP1",
        "%C3%BCber",
        "",
        "a%0Ab",
        &"a".repeat(51),
        "..%2F..",
        "shop1%3A443",
    ];
    for mall in hostile {
        let response = app.get(&format!("/install?mall_id={mall}")).await;
        assert_eq!(response.status(), 400, "{mall:?}");
        assert!(response.headers().get("location").is_none());
        let code = json(response).await["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            code == "invalid_mall_id" || code == "missing_parameter",
            "{mall:?}: {code}"
        );
    }
    assert_eq!(app.get("/install").await.status(), 400);
    assert_eq!(app.get("/install?mall_id=a&mall_id=b").await.status(), 400);
}

#[tokio::test]
async fn a_valid_launch_hmac_is_accepted() {
    let app = sqlite_app(&[("CAFE24_LAUNCH_HMAC_REQUIRED", "true")]).await;
    assert_eq!(
        app.get(&format!("/install?{}", signed_launch("shop1")))
            .await
            .status(),
        302
    );
}

#[tokio::test]
async fn tampered_reordered_stale_or_missing_launch_hmacs_are_refused() {
    let app = sqlite_app(&[("CAFE24_LAUNCH_HMAC_REQUIRED", "true")]).await;
    let now = chrono::Utc::now().timestamp();
    let secret = ClientSecret::new(CLIENT_SECRET);
    let good = signed_launch("shop1");
    let tampered = good.replace("mall_id=shop1", "mall_id=shop2");
    let (params, tag) = good.rsplit_once('&').expect("hmac");
    let mut parts: Vec<&str> = params.split('&').collect();
    parts.swap(0, 1);
    let reordered = format!("{}&{tag}", parts.join("&"));
    let stale = sign_query(&launch_query("shop1", now - 3600), &secret);
    let wrong_key = sign_query(
        &launch_query("shop1", now),
        &ClientSecret::new("another-secret"),
    );
    let cases = [
        (tampered, "launch_invalid"),
        (reordered, "launch_invalid"),
        (stale, "launch_expired"),
        (wrong_key, "launch_invalid"),
        (launch_query("shop1", now), "launch_hmac_required"),
        (
            format!("{}&hmac=not*base64", launch_query("shop1", now)),
            "launch_invalid",
        ),
    ];
    for (query, expected) in cases {
        let response = app.get(&format!("/install?{query}")).await;
        assert_eq!(response.status(), 403, "{query}");
        assert!(response.headers().get("location").is_none());
        assert_eq!(json(response).await["error"], expected, "{query}");
    }
}

#[tokio::test]
async fn by_default_an_install_without_the_launch_hmac_is_refused() {
    let pairs = crate::helpers::base_pairs()
        .into_iter()
        .filter(|(k, _)| *k != "CAFE24_LAUNCH_HMAC_REQUIRED");
    let settings =
        cafe24_core::settings::Settings::load(&cafe24_core::settings::Source::from_pairs(pairs))
            .expect("settings");
    assert!(
        settings.launch.require_hmac,
        "without the launch hmac anyone could mint states for any mall"
    );
    let app = sqlite_app(&[("CAFE24_LAUNCH_HMAC_REQUIRED", "true")]).await;
    let response = app.get("/install?mall_id=shop1").await;
    assert_eq!(response.status(), 403);
    assert!(response.headers().get("location").is_none());
}

#[tokio::test]
async fn without_the_requirement_a_plain_install_still_works_but_a_bad_hmac_does_not() {
    let app = sqlite_app(&[]).await;
    assert_eq!(app.get("/install?mall_id=shop1").await.status(), 302);
    let tampered = signed_launch("shop1").replace("shop_no=1", "shop_no=2");
    assert_eq!(app.get(&format!("/install?{tampered}")).await.status(), 403);
}
