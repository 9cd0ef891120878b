//! The scheduled functions: an exchange pass and a keep-alive pass against the sandbox, after a
//! code arrived through the callback function — the serverless spec's whole flow.

use cafe24_core::settings::generate_key_entry;
use cafe24_sandbox::{AppConfig, RunningSandbox, SandboxConfig};

use crate::support::events::{http_api_get, scheduled};
use crate::support::*;

async fn sandbox() -> RunningSandbox {
    let config = SandboxConfig {
        auto_approve: true,
        auto_create_malls: true,
        apps: vec![AppConfig {
            redirect_uris: vec![REDIRECT.into()],
            ..AppConfig::default()
        }],
        ..SandboxConfig::default()
    };
    cafe24_sandbox::start(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sandbox")
}

/// A code from the sandbox's (auto-approved) consent for `mall_id`.
async fn consent_code(sandbox: &RunningSandbox, mall_id: &str, state: &str) -> String {
    let base = sandbox.base_url_template().replace("{mall_id}", mall_id);
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", CLIENT_ID)
        .append_pair("state", state)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "mall.read_product,mall.read_store")
        .finish();
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("{base}/api/v2/oauth/authorize?{query}"))
        .send()
        .await
        .expect("authorize");
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().expect("ascii");
    url::Url::parse(location)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code")
}

/// The EMF records among a function's stdout lines, each checked for the format's shape.
fn emf_records(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r.get("_aws").is_some())
        .inspect(|r| {
            let directive = &r["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(directive["Namespace"], "Cafe24OAuth", "{r}");
            for m in directive["Metrics"].as_array().expect("metrics") {
                assert!(r[m["Name"].as_str().expect("name")].is_number(), "{r}");
            }
        })
        .collect()
}

fn job_env(
    handler: &str,
    db: &str,
    sandbox: &RunningSandbox,
    keys: &str,
) -> Vec<(&'static str, String)> {
    let mut env = http_env(db);
    env.retain(|(k, _)| *k != "CAFE24_LAMBDA_HANDLER");
    env.extend([
        ("CAFE24_LAMBDA_HANDLER", handler.to_owned()),
        ("CAFE24_BASE_URL", sandbox.base_url_template()),
        ("TOKEN_ENCRYPTION_KEYS", keys.to_owned()),
        // One pass per invocation unless a test says otherwise.
        ("CAFE24_LAMBDA_EXCHANGE_LISTEN_SECS", "0".to_owned()),
    ]);
    env
}

/// The serverless deployment's prompt exchange: an exchange invocation stays, woken by NOTIFY,
/// and exchanges every code the callback function stores during it within a second — two
/// overlapping invocations share the queue (no code twice) and both return before their end.
#[tokio::test]
async fn overlapping_exchange_invocations_exchange_codes_stored_meanwhile_within_a_second() {
    let sandbox = sandbox().await;
    let db = url(&migrated_postgres().await);
    let keys = generate_key_entry("k1");
    let callback = Function::start(&http_env(&db)).await;
    let mut env = job_env("exchange", &db, &sandbox, &keys);
    env.retain(|(k, _)| *k != "CAFE24_LAMBDA_EXCHANGE_LISTEN_SECS");
    env.push(("CAFE24_LAMBDA_EXCHANGE_LISTEN_SECS", "6".to_owned()));
    let (a, b) = (Function::start(&env).await, Function::start(&env).await);
    let started = std::time::Instant::now();
    let malls: Vec<String> = (0..6).map(|i| format!("listenmall{i}")).collect();
    let callbacks = async {
        tokio::time::sleep(std::time::Duration::from_millis(800)).await;
        for mall in &malls {
            let state = signed_state(STATE_SECRET, mall);
            let code = consent_code(&sandbox, mall, &state).await;
            let (status, body) = callback
                .get(http_api_get(
                    "/oauth/callback",
                    &[("code", &code), ("state", &state)],
                ))
                .await;
            assert_eq!(status, 200, "{body}");
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
    };
    let (first, second, ()) = tokio::join!(a.invoke(scheduled()), b.invoke(scheduled()), callbacks);
    let took = started.elapsed();
    let (first, second) = (first.response(), second.response());
    let exchanged =
        first["exchanged"].as_u64().unwrap_or(0) + second["exchanged"].as_u64().unwrap_or(0);
    assert_eq!(
        exchanged, 6,
        "every code exchanged once between the two: {first} {second}"
    );
    assert!(
        took < std::time::Duration::from_secs(12),
        "both returned after their listening window: {took:?}"
    );
    let slowest = sqlx::query_scalar::<_, f64>(
        "SELECT max(EXTRACT(EPOCH FROM processed_at - created_at))::float8 FROM cafe24.authorization_codes",
    )
    .fetch_one(&mut connect(&db).await)
    .await
    .expect("latency");
    assert!(
        slowest < 1.0,
        "codes exchanged within a second of the callback (slowest {slowest:.3} s)"
    );
    for mall in &malls {
        let stats = sandbox.stats(mall).expect("stats");
        assert_eq!(
            (stats.authorization_code_grants, stats.codes_rejected),
            (1, 0),
            "{mall}"
        );
    }
}

#[tokio::test]
async fn callback_then_scheduled_exchange_then_keep_alive() {
    let sandbox = sandbox().await;
    let db = url(&migrated_postgres().await);
    let keys = generate_key_entry("k1");

    // The merchant comes back through API Gateway with a code.
    let state = signed_state(STATE_SECRET, "flowmall");
    let code = consent_code(&sandbox, "flowmall", &state).await;
    let callback = Function::start(&http_env(&db)).await;
    let (status, body) = callback
        .get(http_api_get(
            "/oauth/callback",
            &[("code", &code), ("state", &state)],
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let id = body["id"].as_i64().expect("id");

    // EventBridge fires the exchange function.
    let exchange = Function::start(&job_env("exchange", &db, &sandbox, &keys)).await;
    let summary = exchange.invoke(scheduled()).await.response();
    assert_eq!(summary["handler"], "exchange");
    assert_eq!(summary["exchanged"], 1, "{summary}");
    let (stored_code, _, mall, status) = code_row(&db, id).await.expect("row");
    assert_eq!(
        (stored_code.as_deref(), mall.as_deref(), status.as_str()),
        (Some(""), Some("flowmall"), "exchanged")
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM cafe24.tokens WHERE mall_id = 'flowmall' AND status = 'active' AND version = 1").await,
        1
    );
    // A second pass finds nothing to do.
    let again = exchange.invoke(scheduled()).await.response();
    assert_eq!(
        (again["claimed"].as_u64(), again["exchanged"].as_u64()),
        (Some(0), Some(0))
    );
    let logs = exchange.process.stderr();
    assert!(!logs.contains(&code), "the exchange log shows the code");

    // The spec's metrics, as CloudWatch Embedded Metric Format records on stdout.
    let callback_metrics = emf_records(&callback.process.stdout());
    let saved = callback_metrics
        .iter()
        .find(|r| r["Function"] == "callback" && r["Outcome"] == "saved")
        .expect("a callback record");
    assert_eq!(
        (
            saved["CodesSaved"].as_f64(),
            saved["CallbackErrors"].as_f64()
        ),
        (Some(1.0), Some(0.0))
    );
    assert!(saved["CallbackLatency"]
        .as_f64()
        .is_some_and(|ms| ms >= 0.0));
    let exchange_metrics = emf_records(&exchange.process.stdout());
    assert!(
        exchange_metrics
            .iter()
            .any(|r| r["Function"] == "exchange" && r["CodesExchanged"] == 1.0),
        "{exchange_metrics:?}"
    );
    for out in [callback.process.stdout(), exchange.process.stdout()] {
        assert!(
            !out.contains(&code) && !out.contains(&state),
            "a metric record carries the code or state"
        );
    }

    // The refresh token nears its end; the keep-alive function renews it.
    let mut conn = connect(&db).await;
    sqlx::query("UPDATE cafe24.tokens SET refresh_expires_at = now() + interval '1 day'")
        .execute(&mut conn)
        .await
        .expect("backdate");
    let refresh = Function::start(&job_env("refresh", &db, &sandbox, &keys)).await;
    let summary = refresh.invoke(scheduled()).await.response();
    assert_eq!(
        (
            summary["handler"].as_str(),
            summary["due"].as_u64(),
            summary["refreshed"].as_u64(),
            summary["failed"].as_u64()
        ),
        (Some("refresh"), Some(1), Some(1), Some(0)),
        "{summary}"
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM cafe24.tokens WHERE mall_id = 'flowmall' AND version = 2 AND refresh_expires_at > now() + interval '13 days'").await,
        1
    );
}

#[tokio::test]
async fn exchange_with_the_database_down_fails_the_invocation_not_the_process() {
    let sandbox = sandbox().await;
    let down = url(&cafe24_testkit::unreachable_postgres());
    let mut env = job_env("exchange", &down, &sandbox, &generate_key_entry("k1"));
    env.push(("DATABASE_ACQUIRE_TIMEOUT_SECS", "1".into()));
    let function = Function::start(&env).await;
    for _ in 0..2 {
        match function.invoke(scheduled()).await {
            Outcome::Error {
                error_type,
                message,
            } => {
                assert_eq!(error_type, "Cafe24.StoreError");
                assert!(message.contains("unreachable"), "{message}");
            }
            other => panic!("expected an invocation error, got {other:?}"),
        }
    }
}
