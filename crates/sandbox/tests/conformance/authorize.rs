//! CAFE24.md §1: the authorize step and its codes.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn consent_page_shows_app_name_scopes_and_buttons() {
    let t = spawn().await;
    let resp = t
        .http
        .get(t.authorize_url("s1", SCOPES, REDIRECT))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.expect("html");
    assert!(html.contains("Sandbox App"));
    assert!(html.contains("mall.read_product"));
    assert!(html.contains(r#"id="approve""#));
    assert!(html.contains(r#"id="deny""#));
    assert!(html.contains(r#"<form method="post""#));
    assert!(!html.contains("<script"));
}

#[tokio::test]
async fn approve_redirects_with_code_and_exact_state() {
    let t = spawn().await;
    let state = "a b+c&d=é/%20~";
    let resp = t.approve(state, SCOPES).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let loc = resp.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(loc.starts_with(&format!("{REDIRECT}?code=")), "{loc}");
    let q = location_query(&resp);
    assert_eq!(q["state"], state);
    assert!(q["code"].len() >= 16);
}

#[tokio::test]
async fn deny_redirects_with_access_denied_and_state() {
    let t = spawn().await;
    let form = [
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("state", "xyz"),
        ("redirect_uri", REDIRECT),
        ("scope", SCOPES),
        ("decision", "deny"),
    ];
    let resp = t
        .http
        .post(t.mall_url("/api/v2/oauth/authorize"))
        .form(&form)
        .send()
        .await
        .expect("deny");
    assert_eq!(resp.status(), StatusCode::FOUND);
    let q = location_query(&resp);
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "xyz");
    assert!(!q.contains_key("code"));
}

#[tokio::test]
async fn auto_approve_redirects_immediately() {
    let t = spawn_with(|c| c.auto_approve = true).await;
    let resp = t
        .http
        .get(t.authorize_url("s", SCOPES, REDIRECT))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), StatusCode::FOUND);
    let q = location_query(&resp);
    assert_eq!(q["state"], "s");
    assert!(q.contains_key("code"));
}

#[tokio::test]
async fn redirect_uri_mismatch_shows_json_error_without_redirect() {
    let t = spawn_with(|c| c.auto_approve = true).await;
    for wrong in [
        format!("{REDIRECT}/"),
        REDIRECT.to_uppercase(),
        format!("{REDIRECT}?x=1"),
    ] {
        let resp = t
            .http
            .get(t.authorize_url("s", SCOPES, &wrong))
            .send()
            .await
            .expect("get");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert!(resp.headers().get("location").is_none());
        let body: Value = resp.json().await.expect("json");
        assert_eq!(
            body,
            serde_json::json!({"error":"invalid_request","error_description":"The redirect_uri added by Cafe24 Developers is invalid."})
        );
    }
}

#[tokio::test]
async fn missing_state_is_refused_without_redirect() {
    let t = spawn_with(|c| c.auto_approve = true).await;
    let resp = t
        .http
        .get(t.authorize_url("", SCOPES, REDIRECT))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.headers().get("location").is_none());
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn scopes_accept_comma_and_space_separators() {
    let t = spawn_with(|c| c.auto_approve = true).await;
    let resp = t
        .http
        .get(t.authorize_url(
            "s",
            "mall.read_product mall.read_store,mall.read_application",
            REDIRECT,
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), StatusCode::FOUND);
    let code = location_query(&resp).remove("code").expect("code");
    let body: Value = t.exchange(&code).await.json().await.expect("json");
    assert_eq!(
        body["scopes"],
        serde_json::json!([
            "mall.read_product",
            "mall.read_store",
            "mall.read_application"
        ])
    );
}

#[tokio::test]
async fn scope_outside_the_app_is_refused() {
    let t = spawn_with(|c| c.auto_approve = true).await;
    let resp = t
        .http
        .get(t.authorize_url("s", "mall.read_product,mall.write_privacy", REDIRECT))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"], "invalid_scope");
}

#[tokio::test]
async fn unknown_client_id_is_refused() {
    let t = spawn().await;
    let url = t.mall_url("/api/v2/oauth/authorize?response_type=code&client_id=nope&state=s&redirect_uri=x&scope=mall.read_product");
    let resp = t.http.get(url).send().await.expect("get");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.headers().get("location").is_none());
}

#[tokio::test]
async fn unknown_mall_is_404_in_the_admin_envelope() {
    let t = spawn().await;
    let resp = t
        .http
        .get(t.sb.url("/malls/nosuchmall/api/v2/oauth/authorize?response_type=code"))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body: Value = resp.json().await.expect("json");
    envelope_message(&body, 404);
}

#[tokio::test]
async fn code_is_single_use() {
    let t = spawn().await;
    let code = t.code().await;
    assert_eq!(t.exchange(&code).await.status(), StatusCode::OK);
    let again = t.exchange(&code).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    let body: Value = again.json().await.expect("json");
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn code_expires_after_60_seconds_with_code_time_expired() {
    let t = spawn().await;
    t.sb.freeze_clock();
    let code = t.code().await;
    t.sb.advance_clock(chrono::Duration::seconds(60));
    let resp = t.exchange(&code).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        body,
        serde_json::json!({"error":"invalid_grant","error_description":"Code time expired"})
    );
}

#[tokio::test]
async fn code_within_its_minute_is_accepted() {
    let t = spawn().await;
    t.sb.freeze_clock();
    let code = t.code().await;
    t.sb.advance_clock(chrono::Duration::seconds(59));
    assert_eq!(t.exchange(&code).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn code_is_bound_to_its_client_and_redirect_uri() {
    let t = spawn().await;
    t.sb.add_app(second_app()).expect("app");
    let code = t.code().await;
    let other = t
        .http
        .post(t.mall_url("/api/v2/oauth/token"))
        .header("authorization", basic("other-client", "other-secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(other.status(), StatusCode::BAD_REQUEST);

    let code = t.code().await;
    let wrong_redirect = t
        .http
        .post(t.mall_url("/api/v2/oauth/token"))
        .header("authorization", basic(CLIENT_ID, SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "http://127.0.0.1:8080/other"),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(wrong_redirect.status(), StatusCode::BAD_REQUEST);
    let body: Value = wrong_redirect.json().await.expect("json");
    assert_eq!(body["error"], "invalid_grant");
}
