//! Work the caller never hears about: a request runs to completion even when its client
//! gives up, a response can be held after the work (`response_delay_ms`), and a rotated
//! token response can be lost at random (`lose_response_rate`), counted per mall.

use std::time::{Duration, Instant};

use cafe24_sandbox::{FaultSpec, MallConfig, StatsSnapshot};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

/// Polls a mall's counters until `done` holds or two seconds pass; returns the last read.
async fn stats_when(
    t: &TestSandbox,
    mall: &str,
    done: impl Fn(&StatsSnapshot) -> bool,
) -> StatsSnapshot {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let s = t.sb.stats(mall).expect("stats");
        if done(&s) || Instant::now() >= deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A token request the caller abandons after `timeout`.
async fn token_with_timeout(
    t: &TestSandbox,
    form: &[(&str, &str)],
    timeout: Duration,
) -> reqwest::Result<reqwest::Response> {
    t.http
        .post(t.mall_url("/api/v2/oauth/token"))
        .header("authorization", basic(CLIENT_ID, SECRET))
        .form(form)
        .timeout(timeout)
        .send()
        .await
}

fn assert_timed_out(r: reqwest::Result<reqwest::Response>) {
    assert!(
        r.as_ref().is_err_and(reqwest::Error::is_timeout),
        "expected the caller to time out, got {:?}",
        r.map(|r| r.status())
    );
}

fn refresh_form(rt: &str) -> [(&str, &str); 2] {
    [("grant_type", "refresh_token"), ("refresh_token", rt)]
}

async fn put_fault(t: &TestSandbox, endpoint: &str, body: Value) -> StatusCode {
    t.http
        .put(t.sb.url(&format!("/_sandbox/faults/{endpoint}")))
        .json(&body)
        .send()
        .await
        .expect("put fault")
        .status()
}

#[tokio::test]
async fn refresh_abandoned_during_latency_still_rotates() {
    let t = spawn().await;
    let first = t.tokens().await;
    let rt = first["refresh_token"].as_str().expect("rt");
    t.sb.set_fault(
        "token",
        FaultSpec {
            latency_ms: 400,
            ..Default::default()
        },
    )
    .expect("fault");
    assert_timed_out(token_with_timeout(&t, &refresh_form(rt), Duration::from_millis(100)).await);
    let stats = stats_when(&t, MALL, |s| s.refresh_grants == 1).await;
    assert_eq!(stats.refresh_grants, 1, "the abandoned grant still rotated");
    t.sb.clear_faults();
    assert_eq!(
        t.refresh(rt).await.status(),
        StatusCode::UNAUTHORIZED,
        "the old refresh token died with the rotation nobody received"
    );
    let stats = t.sb.stats(MALL).expect("stats");
    assert_eq!(stats.refresh_grants, 1);
    assert_eq!(stats.refresh_tokens_rejected, 1);
    assert_eq!(
        stats.responses_lost, 0,
        "the caller gave up, not the sandbox"
    );
}

#[tokio::test]
async fn code_exchange_abandoned_during_latency_still_consumes_the_code() {
    let t = spawn().await;
    let code = t.code().await;
    t.sb.set_fault(
        "token",
        FaultSpec {
            latency_ms: 400,
            ..Default::default()
        },
    )
    .expect("fault");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    assert_timed_out(token_with_timeout(&t, &form, Duration::from_millis(100)).await);
    let stats = stats_when(&t, MALL, |s| s.authorization_code_grants == 1).await;
    assert_eq!(
        stats.authorization_code_grants, 1,
        "the abandoned exchange still happened"
    );
    t.sb.clear_faults();
    assert_eq!(
        t.exchange(&code).await.status(),
        StatusCode::BAD_REQUEST,
        "the code is used"
    );
    assert_eq!(t.sb.stats(MALL).expect("stats").codes_rejected, 1);
}

#[tokio::test]
async fn response_delay_past_the_callers_timeout_hides_a_rotation_that_happened() {
    let t = spawn().await;
    let first = t.tokens().await;
    let rt = first["refresh_token"].as_str().expect("rt");
    t.sb.set_fault(
        "token",
        FaultSpec {
            response_delay_ms: 400,
            ..Default::default()
        },
    )
    .expect("fault");
    assert_timed_out(token_with_timeout(&t, &refresh_form(rt), Duration::from_millis(100)).await);
    let stats = stats_when(&t, MALL, |s| s.refresh_grants == 1).await;
    assert_eq!(
        stats.refresh_grants, 1,
        "rotated before the response was held"
    );
    t.sb.clear_faults();
    assert_eq!(t.refresh(rt).await.status(), StatusCode::UNAUTHORIZED);
    let stats = t.sb.stats(MALL).expect("stats");
    assert_eq!(stats.refresh_tokens_rejected, 1);
    assert_eq!(
        stats.responses_lost, 0,
        "the caller gave up, not the sandbox"
    );
}

#[tokio::test]
async fn response_delay_within_the_callers_timeout_delivers_late_but_intact() {
    let t = spawn().await;
    let first = t.tokens().await;
    let rt = first["refresh_token"].as_str().expect("rt");
    t.sb.set_fault(
        "token",
        FaultSpec {
            response_delay_ms: 200,
            ..Default::default()
        },
    )
    .expect("fault");
    let started = Instant::now();
    let resp = token_with_timeout(&t, &refresh_form(rt), Duration::from_secs(10))
        .await
        .expect("answered");
    // A lower bound only: sleeping guarantees at least this much.
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("json");
    let new_rt = body["refresh_token"].as_str().expect("new refresh token");
    assert_ne!(new_rt, rt);
    assert_eq!(body["token_type"], "Bearer");
    t.sb.clear_faults();
    assert_eq!(
        t.refresh(new_rt).await.status(),
        StatusCode::OK,
        "the delivered token works"
    );
}

#[tokio::test]
async fn counted_response_delay_holds_only_the_next_responses() {
    let t = spawn().await;
    let first = t.tokens().await;
    let rt = first["refresh_token"].as_str().expect("rt");
    let set = json!({"response_delay_ms": 400, "response_delay_next": 1});
    assert_eq!(put_fault(&t, "token", set).await, StatusCode::NO_CONTENT);
    assert_timed_out(token_with_timeout(&t, &refresh_form(rt), Duration::from_millis(100)).await);
    let listed: Value = t
        .http
        .get(t.sb.url("/_sandbox/faults"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["faults"]["token"]["response_delay_next"], 0);
    assert_eq!(listed["faults"]["token"]["response_delay_ms"], 0, "used up");
    assert_eq!(
        t.refresh(rt).await.status(),
        StatusCode::UNAUTHORIZED,
        "retry answered"
    );
    assert_eq!(t.sb.stats(MALL).expect("stats").refresh_grants, 1);
}

#[tokio::test]
async fn lose_response_rate_one_loses_every_rotated_response_and_counts_it() {
    let t = spawn().await;
    let first = t.tokens().await;
    let rt = first["refresh_token"].as_str().expect("rt");
    assert_eq!(
        put_fault(&t, "token", json!({"lose_response_rate": 1.0})).await,
        StatusCode::NO_CONTENT
    );
    let lost = token_with_timeout(&t, &refresh_form(rt), Duration::from_secs(10)).await;
    assert!(
        lost.is_err(),
        "the response is lost: {:?}",
        lost.map(|r| r.status())
    );
    let stats = t.sb.stats(MALL).expect("stats");
    assert_eq!(stats.refresh_grants, 1);
    assert_eq!(stats.responses_lost, 1);
    assert_eq!(t.refresh(rt).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn responses_lost_tells_which_malls_lost_a_rotated_response() {
    let t = spawn_with(|c| {
        c.auto_approve = true;
        c.fault_seed = 7;
    })
    .await;
    let malls: Vec<String> = (0..8).map(|i| format!("soak{i}")).collect();
    for m in &malls {
        let cfg = MallConfig {
            mall_id: m.clone(),
            ..MallConfig::default()
        };
        t.sb.add_mall(cfg).expect("mall");
    }
    let mut chains = Vec::new();
    for m in &malls {
        chains.push((m, t.refresh_token_at(m).await));
    }
    t.sb.set_fault(
        "token",
        FaultSpec {
            lose_response_rate: 0.5,
            ..Default::default()
        },
    )
    .expect("fault");
    let mut lost_somewhere = false;
    let mut answered_somewhere = false;
    for (m, rt) in chains {
        let resp = t
            .http
            .post(t.sb.url(&format!("/malls/{m}/api/v2/oauth/token")))
            .header("authorization", basic(CLIENT_ID, SECRET))
            .form(&refresh_form(&rt))
            .send()
            .await;
        let lost = resp.is_err();
        if !lost {
            assert_eq!(resp.expect("resp").status(), StatusCode::OK, "mall {m}");
        }
        let stats = t.sb.stats(m).expect("stats");
        assert_eq!(stats.refresh_grants, 1, "mall {m} rotated");
        assert_eq!(stats.responses_lost, u64::from(lost), "mall {m}");
        lost_somewhere |= lost;
        answered_somewhere |= !lost;
    }
    assert!(
        lost_somewhere && answered_somewhere,
        "seed 7 gives both outcomes"
    );
}

#[tokio::test]
async fn new_fault_fields_are_refused_out_of_range_as_the_others_are() {
    let t = spawn().await;
    for rate in [1.5, -0.1] {
        let old = put_fault(&t, "token", json!({ "drop_rate": rate })).await;
        assert_eq!(old, StatusCode::BAD_REQUEST);
        let new = put_fault(&t, "token", json!({ "lose_response_rate": rate })).await;
        assert_eq!(new, old, "lose_response_rate {rate}");
    }
    let old = put_fault(&t, "token", json!({"latency_ms": -1})).await;
    assert!(old.is_client_error(), "{old}");
    for field in ["response_delay_ms", "response_delay_next"] {
        let new = put_fault(&t, "token", json!({ field: -1 })).await;
        assert_eq!(new, old, "{field} -1");
    }
    let unknown = put_fault(&t, "token", json!({"response_delay": 1})).await;
    assert!(
        unknown.is_client_error(),
        "unknown fields stay refused: {unknown}"
    );
    let listed: Value = t
        .http
        .get(t.sb.url("/_sandbox/faults"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["faults"], json!({}), "nothing was set");
}
