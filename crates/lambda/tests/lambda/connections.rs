//! The pool outlives warm invocations, and a connection the database dropped between
//! invocations is replaced, never fatal.

use crate::support::events::http_api_get;
use crate::support::*;

#[tokio::test]
async fn dropped_connections_are_reestablished() {
    let db = url(&migrated_postgres().await);
    let function = Function::start(&http_env(&db)).await;
    let callback = |n: u32| {
        let state = signed_state(STATE_SECRET, "poolmall");
        http_api_get(
            "/oauth/callback",
            &[("code", &format!("code-{n}")), ("state", &state)],
        )
    };

    let (status, _) = function.get(callback(1)).await;
    assert_eq!(status, 200);
    // The warm process kept its connection open; the database now drops it.
    assert!(
        terminate_connections(&db).await >= 1,
        "no pooled connection"
    );

    let mut statuses = Vec::new();
    for n in 2..=4 {
        statuses.push(function.get(callback(n)).await.0);
    }
    // The first use of the dead connection fails (503, as for any database outage); the pool
    // drops it, and the next invocation connects afresh.
    assert_eq!(statuses, vec![503, 200, 200]);
    assert_eq!(
        count(&db, "SELECT count(*) FROM cafe24.authorization_codes").await,
        3
    );
}

#[tokio::test]
async fn a_scheduled_function_survives_dropped_connections_too() {
    let db = url(&migrated_postgres().await);
    let mut env = http_env(&db);
    env.retain(|(k, _)| *k != "CAFE24_LAMBDA_HANDLER");
    env.push(("CAFE24_LAMBDA_HANDLER", "exchange".into()));
    // One pass per invocation (the default listens for new codes until the deadline is near).
    env.push(("CAFE24_LAMBDA_EXCHANGE_LISTEN_SECS", "0".into()));
    env.push((
        "TOKEN_ENCRYPTION_KEYS",
        cafe24_core::settings::generate_key_entry("k1"),
    ));
    let function = Function::start(&env).await;
    let scheduled = crate::support::events::scheduled;

    assert_eq!(function.invoke(scheduled()).await.response()["claimed"], 0);
    assert!(
        terminate_connections(&db).await >= 1,
        "no pooled connection"
    );

    let mut outcomes = Vec::new();
    for _ in 0..3 {
        outcomes.push(match function.invoke(scheduled()).await {
            Outcome::Response(summary) => format!("ok claimed={}", summary["claimed"]),
            Outcome::Error { error_type, .. } => error_type,
        });
    }
    assert_eq!(
        outcomes,
        ["Cafe24.StoreError", "ok claimed=0", "ok claimed=0"]
    );
}
