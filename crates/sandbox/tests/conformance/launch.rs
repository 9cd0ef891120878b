//! CAFE24.md §6: App launch URLs and their `hmac`.

use base64::Engine;
use cafe24_sandbox::{LaunchParams, TimestampUnit};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::helpers::*;

/// Verifies a launch URL the way Cafe24's sample apps do.
fn verify(url: &str, secret: &str) -> bool {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let Some((msg, hmac_part)) = query.rsplit_once('&') else {
        return false;
    };
    let Some(encoded) = hmac_part.strip_prefix("hmac=") else {
        return false;
    };
    let received: String = form_urlencoded::parse(format!("h={encoded}").as_bytes())
        .map(|(_, v)| v.into_owned())
        .collect();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(msg.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    expected == received
}

fn keys(url: &str) -> Vec<String> {
    let parsed = url::Url::parse(url).expect("url");
    parsed.query_pairs().map(|(k, _)| k.into_owned()).collect()
}

#[tokio::test]
async fn launch_hmac_matches_cafe24_sample_algorithm() {
    let t = spawn().await;
    let url =
        t.sb.launch_url(&LaunchParams {
            mall_id: MALL.into(),
            user_name: Some("홍 길동 & co".into()),
            ..Default::default()
        })
        .expect("url");
    assert!(url.starts_with("http://127.0.0.1:8080/install?"));
    assert!(verify(&url, SECRET));
    assert!(!verify(&url, "another-secret"));
    let tampered = url.replace("mall_id=sandboxmall", "mall_id=evilmall");
    assert!(!verify(&tampered, SECRET));
}

#[tokio::test]
async fn launch_params_are_alphabetical_with_hmac_last() {
    let t = spawn().await;
    let url =
        t.sb.launch_url(&LaunchParams {
            mall_id: MALL.into(),
            ..Default::default()
        })
        .expect("url");
    assert_eq!(
        keys(&url),
        [
            "is_multi_shop",
            "lang",
            "mall_id",
            "nation",
            "shop_no",
            "timestamp",
            "user_id",
            "user_name",
            "user_type",
            "hmac"
        ]
    );
}

#[tokio::test]
async fn launch_url_over_http_and_timestamp_unit_setting() {
    let t = spawn_with(|c| c.launch.timestamp_unit = TimestampUnit::Milliseconds).await;
    t.sb.freeze_clock();
    let body: serde_json::Value = t
        .http
        .get(t.sb.url(&format!("/_sandbox/launch-url?mall_id={MALL}")))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let url = body["url"].as_str().expect("url");
    assert!(verify(url, SECRET));
    let parsed = url::Url::parse(url).expect("url");
    let ts: i64 = parsed
        .query_pairs()
        .find(|(k, _)| k == "timestamp")
        .expect("ts")
        .1
        .parse()
        .expect("number");
    assert_eq!(ts, t.sb.now().timestamp_millis());
}
