//! CAFE24.md §2–3: the token endpoint, rotation, revoke.

use chrono::{Duration, NaiveDateTime};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

fn kst(v: &Value) -> NaiveDateTime {
    let s = v.as_str().expect("timestamp string");
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.3f").expect("YYYY-MM-DDTHH:MM:SS.SSS")
}

#[tokio::test]
async fn token_response_has_cafe24_fields_and_kst_timestamps() {
    let t = spawn().await;
    t.sb.freeze_clock();
    let body = t.tokens().await;
    let obj = body.as_object().expect("object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "access_token",
            "client_id",
            "expires_at",
            "issued_at",
            "mall_id",
            "refresh_token",
            "refresh_token_expires_at",
            "scopes",
            "shop_no",
            "token_type",
            "user_id"
        ]
    );
    assert!(obj.get("expires_in").is_none());
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["shop_no"], "1");
    assert_eq!(body["mall_id"], MALL);
    assert_eq!(body["client_id"], CLIENT_ID);
    assert!(body["scopes"].is_array());
    for k in ["expires_at", "issued_at", "refresh_token_expires_at"] {
        let s = body[k].as_str().expect("string");
        assert_eq!(s.len(), 23, "{k}={s}");
        assert!(
            !s.ends_with('Z') && !s.contains('+'),
            "{k} has no offset: {s}"
        );
    }
    let issued = kst(&body["issued_at"]);
    let now_kst = (t.sb.now() + Duration::hours(9)).naive_utc();
    assert_eq!(
        (now_kst - issued).num_milliseconds(),
        0,
        "issued_at is KST wall time"
    );
    assert_eq!(kst(&body["expires_at"]) - issued, Duration::hours(2));
    assert_eq!(
        kst(&body["refresh_token_expires_at"]) - issued,
        Duration::days(14)
    );
}

#[tokio::test]
async fn body_credentials_are_accepted_like_basic() {
    let t = spawn().await;
    let code = t.code().await;
    let resp = t
        .http
        .post(t.mall_url("/api/v2/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("client_id", CLIENT_ID),
            ("client_secret", SECRET),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn wrong_client_secret_is_invalid_grant() {
    let t = spawn().await;
    let code = t.code().await;
    let resp = t
        .http
        .post(t.mall_url("/api/v2/oauth/token"))
        .header("authorization", basic(CLIENT_ID, "wrong"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .expect("token");
    assert!(resp.status() == StatusCode::UNAUTHORIZED || resp.status() == StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        body,
        serde_json::json!({"error":"invalid_grant","error_description":"Invalid client_secret"})
    );
}

#[tokio::test]
async fn refresh_token_rotates_and_old_one_is_rejected() {
    let t = spawn().await;
    let first = t.tokens().await;
    let old_rt = first["refresh_token"].as_str().expect("rt");
    let resp = t.refresh(old_rt).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let second: Value = resp.json().await.expect("json");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_ne!(second["access_token"], first["access_token"]);

    let replay = t.refresh(old_rt).await;
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    let body: Value = replay.json().await.expect("json");
    assert_eq!(
        body,
        serde_json::json!({"error":"invalid_grant","error_description":"Invalid refresh_token"})
    );

    let new_rt = second["refresh_token"].as_str().expect("rt");
    assert_eq!(t.refresh(new_rt).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn rotated_refresh_token_gets_a_fresh_14_day_window() {
    let t = spawn().await;
    t.sb.freeze_clock();
    let first = t.tokens().await;
    t.sb.advance_clock(Duration::days(10));
    let second: Value = t
        .refresh(first["refresh_token"].as_str().expect("rt"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        kst(&second["refresh_token_expires_at"]) - kst(&second["issued_at"]),
        Duration::days(14)
    );
    t.sb.advance_clock(Duration::days(13));
    assert_eq!(
        t.refresh(second["refresh_token"].as_str().expect("rt"))
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn expired_refresh_token_is_rejected() {
    let t = spawn().await;
    t.sb.freeze_clock();
    let first = t.tokens().await;
    t.sb.advance_clock(Duration::days(14));
    let resp = t
        .refresh(first["refresh_token"].as_str().expect("rt"))
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let stats = t.sb.stats(MALL).expect("stats");
    assert_eq!(stats.refresh_tokens_rejected, 1);
    assert_eq!(stats.refresh_grants, 0);
}

#[tokio::test]
async fn old_access_token_survives_refresh_by_default() {
    let t = spawn().await;
    let first = t.tokens().await;
    let old_at = first["access_token"].as_str().expect("at");
    assert_eq!(
        t.refresh(first["refresh_token"].as_str().expect("rt"))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(t.admin_get(old_at, "/store").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn old_access_token_dies_on_refresh_when_configured() {
    let t = spawn_with(|c| c.old_access_token_survives_refresh = false).await;
    let first = t.tokens().await;
    let old_at = first["access_token"].as_str().expect("at");
    assert_eq!(
        t.refresh(first["refresh_token"].as_str().expect("rt"))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        t.admin_get(old_at, "/store").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn concurrent_refreshes_with_one_token_have_exactly_one_winner() {
    let t = spawn().await;
    let first = t.tokens().await;
    let rt = first["refresh_token"].as_str().expect("rt").to_string();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let http = t.http.clone();
        let url = t.mall_url("/api/v2/oauth/token");
        let rt = rt.clone();
        set.spawn(async move {
            http.post(url)
                .header("authorization", basic(CLIENT_ID, SECRET))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt.as_str()),
                ])
                .send()
                .await
                .map(|r| r.status())
        });
    }
    let results: Vec<StatusCode> = set
        .join_all()
        .await
        .into_iter()
        .map(|r| r.expect("response"))
        .collect();
    let ok = results.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(ok, 1);
    let stats = t.sb.stats(MALL).expect("stats");
    assert_eq!(stats.refresh_grants, 1);
    assert_eq!(stats.refresh_tokens_rejected, 7);
}

#[tokio::test]
async fn ttls_are_configurable_in_seconds() {
    let t = spawn_with(|c| {
        c.access_token_ttl_secs = 5;
        c.refresh_token_ttl_secs = 30;
    })
    .await;
    t.sb.freeze_clock();
    let body = t.tokens().await;
    let issued = kst(&body["issued_at"]);
    assert_eq!(kst(&body["expires_at"]) - issued, Duration::seconds(5));
    assert_eq!(
        kst(&body["refresh_token_expires_at"]) - issued,
        Duration::seconds(30)
    );
}

#[tokio::test]
async fn revoke_kills_the_pair_and_answers_200_empty() {
    let t = spawn().await;
    let body = t.tokens().await;
    let at = body["access_token"].as_str().expect("at");
    let rt = body["refresh_token"].as_str().expect("rt");
    let resp = t
        .http
        .post(t.mall_url("/api/v2/oauth/revoke"))
        .header("authorization", basic(CLIENT_ID, SECRET))
        .form(&[("token", at), ("token_hint", "access_token")])
        .send()
        .await
        .expect("revoke");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.bytes().await.expect("body").is_empty());
    assert_eq!(
        t.admin_get(at, "/store").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(t.refresh(rt).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(t.sb.stats(MALL).expect("stats").revokes, 1);
}

#[tokio::test]
async fn revoking_the_refresh_token_kills_the_access_token() {
    let t = spawn().await;
    let body = t.tokens().await;
    let at = body["access_token"].as_str().expect("at");
    let rt = body["refresh_token"].as_str().expect("rt");
    let resp = t
        .http
        .post(t.mall_url("/api/v2/oauth/revoke"))
        .header("authorization", basic(CLIENT_ID, SECRET))
        .form(&[("token", rt), ("token_hint", "refresh_token")])
        .send()
        .await
        .expect("revoke");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        t.admin_get(at, "/store").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn unsupported_grant_type_is_refused() {
    let t = spawn().await;
    let resp = t
        .http
        .post(t.mall_url("/api/v2/oauth/token"))
        .header("authorization", basic(CLIENT_ID, SECRET))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .expect("token");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"], "unsupported_grant_type");
}
