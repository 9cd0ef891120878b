//! `GET /oauth/callback` through API Gateway events, on the same router `serve` uses.

use crate::support::events::{http_api_get, rest_get};
use crate::support::*;

const CALLBACK: &str = "/oauth/callback";

#[tokio::test]
async fn rest_and_http_api_events_store_the_code_in_one_warm_process() {
    let db = url(&migrated_postgres().await);
    let function = Function::start(&http_env(&db)).await;

    let state_v1 = signed_state(STATE_SECRET, "restmall");
    let (status, body) = function
        .get(rest_get(
            CALLBACK,
            &[("code", "code-from-rest-api"), ("state", &state_v1)],
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["ok"], &body["message"]),
        (&true.into(), &"Saved".into())
    );
    let id_v1 = body["id"].as_i64().expect("id");

    let state_v2 = signed_state(STATE_SECRET, "httpmall");
    let (status, body) = function
        .get(http_api_get(
            CALLBACK,
            &[("code", "code-from-http-api"), ("state", &state_v2)],
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let id_v2 = body["id"].as_i64().expect("id");

    assert_eq!(
        code_row(&db, id_v1).await,
        Some((
            Some("code-from-rest-api".into()),
            state_v1,
            Some("restmall".into()),
            "pending".into()
        ))
    );
    assert_eq!(
        code_row(&db, id_v2).await,
        Some((
            Some("code-from-http-api".into()),
            state_v2,
            Some("httpmall".into()),
            "pending".into()
        ))
    );
    // Both answered by the process started once (warm), which is still serving.
    assert_eq!(function.process.peak_rss_kib().map(|_| ()), Some(()));
    let logs = function.process.stderr();
    for secret in ["code-from-rest-api", "code-from-http-api", STATE_SECRET] {
        assert!(!logs.contains(secret), "the log shows a secret:\n{logs}");
    }
}

#[tokio::test]
async fn missing_parameters_are_400_and_store_nothing() {
    let db = url(&migrated_postgres().await);
    let function = Function::start(&http_env(&db)).await;
    let state = signed_state(STATE_SECRET, "somemall");

    for event in [
        rest_get(CALLBACK, &[("code", "only-a-code")]),
        rest_get(CALLBACK, &[("state", &state)]),
        rest_get(CALLBACK, &[]),
        http_api_get(CALLBACK, &[("state", &state)]),
        http_api_get(CALLBACK, &[]),
    ] {
        let (status, body) = function.get(event).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["ok"], false);
    }
    assert_eq!(
        count(&db, "SELECT count(*) FROM cafe24.authorization_codes").await,
        0
    );
}

#[tokio::test]
async fn forged_and_replayed_states_are_refused() {
    let db = url(&migrated_postgres().await);
    let function = Function::start(&http_env(&db)).await;

    let forged = signed_state("another-secret-that-is-long-enough-0000000", "evilmall");
    for event in [
        rest_get(CALLBACK, &[("code", "c1"), ("state", &forged)]),
        http_api_get(CALLBACK, &[("code", "c1"), ("state", &forged)]),
        http_api_get(CALLBACK, &[("code", "c1"), ("state", "evilmall")]),
    ] {
        let (status, body) = function.get(event).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "invalid_state");
    }
    assert_eq!(
        count(&db, "SELECT count(*) FROM cafe24.authorization_codes").await,
        0
    );

    let state = signed_state(STATE_SECRET, "goodmall");
    let first = function
        .get(http_api_get(CALLBACK, &[("code", "c2"), ("state", &state)]))
        .await;
    let replay = function
        .get(rest_get(CALLBACK, &[("code", "c3"), ("state", &state)]))
        .await;
    assert_eq!((first.0, replay.0), (200, 409), "{first:?} {replay:?}");
    assert_eq!(
        count(&db, "SELECT count(*) FROM cafe24.authorization_codes").await,
        1
    );
}

#[tokio::test]
async fn database_down_is_503_and_the_function_keeps_serving() {
    let down = url(&cafe24_testkit::unreachable_postgres());
    let mut env = http_env(&down);
    env.push(("DATABASE_ACQUIRE_TIMEOUT_SECS", "1".into()));
    let function = Function::start(&env).await;

    let state = signed_state(STATE_SECRET, "somemall");
    for event in [
        rest_get(CALLBACK, &[("code", "c1"), ("state", &state)]),
        http_api_get(CALLBACK, &[("code", "c1"), ("state", &state)]),
    ] {
        let (status, body) = function.get(event).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["ok"], false);
    }
    // Validation still answers without the database.
    let (status, _) = function.get(http_api_get(CALLBACK, &[])).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn other_routes_of_the_router_answer_too() {
    let db = url(&migrated_postgres().await);
    let function = Function::start(&http_env(&db)).await;
    let (status, _) = function.get(rest_get("/readyz", &[])).await;
    assert_eq!(status, 200);
    let (status, body) = function.get(http_api_get("/nowhere", &[])).await;
    assert_eq!(status, 404, "{body}");
}
