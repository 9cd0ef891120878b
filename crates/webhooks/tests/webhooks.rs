//! Real deliveries from the sandbox to `POST /webhooks/cafe24` over HTTP, then dispatch,
//! forwarding and reconciliation.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cafe24_core::secret::ClientSecret;
use cafe24_core::settings::{generate_key_entry, Settings, Source, TokenSettings};
use cafe24_core::{MallId, SystemClock};
use cafe24_sandbox::{
    AppConfig, FireOptions, RunningSandbox, SandboxConfig, Secret, WebhookAuth, WebhookAuthScheme,
};
use cafe24_server::{AppState, Application};
use cafe24_store::{MallStatus, Store};
use cafe24_testkit::{fresh_database, on_both_backends, TestBackend};
use cafe24_tokens::{OAuthClient, TokenManager};
use cafe24_webhooks::verify::sign_hex;
use cafe24_webhooks::{Dispatcher, Forwarder, Reconciler};
use serde_json::json;

const KEY: &str = "shared-webhook-key-0123";
const REDIRECT: &str = "https://app.example.com/oauth/callback";

struct Env {
    sandbox: RunningSandbox,
    store: Arc<dyn Store>,
    manager: Arc<TokenManager>,
    url: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Our server (webhook settings from `ours`) and a sandbox delivering with `theirs`.
async fn env(backend: TestBackend, ours: &[(&'static str, &str)], theirs: WebhookAuth) -> Env {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/webhooks/cafe24",
        listener.local_addr().expect("addr")
    );
    let app = AppConfig {
        redirect_uris: vec![REDIRECT.into()],
        scopes: vec!["mall.read_product".into(), "mall.read_application".into()],
        webhook_url: Some(url.clone()),
        webhook_auth: theirs,
        ..AppConfig::default()
    };
    let config = SandboxConfig {
        auto_approve: true,
        auto_create_malls: true,
        apps: vec![app.clone()],
        ..SandboxConfig::default()
    };
    let sandbox = cafe24_sandbox::start(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sandbox");
    let mut pairs: Vec<(&str, String)> = vec![
        ("CAFE24_CLIENT_ID", app.client_id.clone()),
        (
            "CAFE24_CLIENT_SECRET",
            app.client_secret.expose_secret().to_owned(),
        ),
        ("CAFE24_REDIRECT_URI", REDIRECT.into()),
        (
            "CAFE24_SCOPES",
            "mall.read_product,mall.read_application".into(),
        ),
        ("CAFE24_BASE_URL", sandbox.base_url_template()),
        (
            "EXPECTED_STATE_SECRET",
            "webhook-test-state-secret-0123456789".into(),
        ),
        ("TOKEN_ENCRYPTION_KEYS", generate_key_entry("k1")),
        ("HTTP_MAX_BODY_BYTES", "4096".into()),
    ];
    pairs.extend(ours.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let source = Source::from_pairs(pairs);
    let mut settings = Settings::load(&source).expect("settings");
    settings.database = fresh_database(backend).await;
    let store = cafe24_store::connect(&settings.database)
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    let tokens = TokenSettings::load(&source).expect("tokens");
    let oauth =
        OAuthClient::new(Arc::new(settings.app.clone()), tokens.http_timeout).expect("client");
    let manager = Arc::new(TokenManager::new(
        store.clone(),
        oauth,
        tokens,
        Arc::new(SystemClock),
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = Application::with_listener(
        listener,
        AppState::new(&settings, store.clone()),
        &settings.http,
    );
    tokio::spawn(app.run(async move {
        let _ = stopped.await;
    }));
    Env {
        sandbox,
        store,
        manager,
        url,
        _stop: stop,
    }
}

fn sends(scheme: WebhookAuthScheme, header: &str, key: &str) -> WebhookAuth {
    WebhookAuth {
        header: header.into(),
        key: Secret::new(key),
        scheme,
    }
}

fn api_key() -> [(&'static str, &'static str); 3] {
    [
        ("CAFE24_WEBHOOK_AUTH", "api-key"),
        ("CAFE24_WEBHOOK_KEY", KEY),
        ("CAFE24_WEBHOOK_TRACE_HEADER", "X-Trace-Id"),
    ]
}

impl Env {
    async fn fire(&self, mall: &str, event_no: u32, lose: bool) -> cafe24_sandbox::FireReport {
        let opts = FireOptions {
            wait: true,
            lose,
            ..FireOptions::default()
        };
        self.sandbox
            .fire_webhook(mall, event_no, json!({"product_no": 7}), opts)
            .await
            .expect("fire")
    }

    async fn stored(&self) -> Vec<cafe24_store::WebhookEventRecord> {
        self.store.webhook_events(0, 100).await.expect("events")
    }

    async fn post(
        &self,
        body: impl Into<reqwest::Body>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .post(&self.url)
            .header("content-type", "application/json");
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request.body(body).send().await.expect("post")
    }

    async fn install(&self, mall: &MallId) {
        let scopes = "mall.read_product,mall.read_application";
        cafe24_testrig::install(&self.sandbox, &self.manager, mall, REDIRECT, scopes).await;
    }
}

on_both_backends!(
    a_verified_delivery_is_stored_once_and_dispatched,
    the_uninstall_event_revokes_the_mall,
    reconciliation_recovers_a_lost_delivery_and_confirms_the_rest
);

async fn a_verified_delivery_is_stored_once_and_dispatched(backend: TestBackend) {
    let env = env(
        backend,
        &api_key(),
        sends(WebhookAuthScheme::ApiKey, "X-Api-Key", KEY),
    )
    .await;
    let report = env.fire("shop1", 90001, false).await;
    assert_eq!(report.deliveries[0].status, "delivered", "{report:?}");
    let events = env.stored().await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        (
            events[0].event_no,
            events[0].mall_id.as_str(),
            events[0].status.as_str()
        ),
        (90001, "shop1", "received")
    );
    assert_eq!(
        events[0].dedupe_key,
        format!("trace:{}", report.deliveries[0].trace_id)
    );
    // Cafe24 retries the same delivery (same trace id): answered 200, stored once.
    let body = serde_json::to_string(&report.body).expect("body");
    let again = env
        .post(
            body,
            &[
                ("X-Api-Key", KEY),
                ("X-Trace-Id", &report.deliveries[0].trace_id),
            ],
        )
        .await;
    assert_eq!(again.status(), 200);
    assert_eq!(
        again.json::<serde_json::Value>().await.expect("json")["duplicate"],
        true
    );
    assert_eq!(env.stored().await.len(), 1);
    let summary = Dispatcher::new(env.store.clone(), 5)
        .run_once()
        .await
        .expect("dispatch");
    assert_eq!(summary.dispatched, 1);
    assert_eq!(env.stored().await[0].status, "dispatched");
}

#[tokio::test]
async fn forged_keys_and_hmacs_are_refused_with_403_and_nothing_is_stored() {
    let env = env(
        TestBackend::Sqlite,
        &api_key(),
        sends(WebhookAuthScheme::ApiKey, "X-Api-Key", "not-the-shared-key"),
    )
    .await;
    let report = env.fire("shop1", 90001, false).await;
    assert_eq!(report.deliveries[0].status, "failed");
    let logs = env.sandbox.webhook_logs("shop1");
    assert!(
        logs.iter().all(|l| l.response_http_code == Some(403)),
        "Cafe24 saw 403s"
    );
    assert!(env.stored().await.is_empty());

    let hmac = [
        ("CAFE24_WEBHOOK_AUTH", "hmac-hex"),
        ("CAFE24_WEBHOOK_KEY", KEY),
        ("CAFE24_WEBHOOK_HEADER", "X-Signature"),
    ];
    let env = env_with(
        &hmac,
        sends(
            WebhookAuthScheme::HmacSha256Hex,
            "X-Signature",
            "another-hmac-key-xyz",
        ),
    )
    .await;
    assert_eq!(
        env.fire("shop1", 90001, false).await.deliveries[0].status,
        "failed"
    );
    assert!(env.stored().await.is_empty());
    // The right key verifies; the same signature over a tampered body does not.
    let body = r#"{"event_no":90002,"resource":{"mall_id":"shop1","event_shop_no":"1"}}"#;
    let signature = sign_hex(&ClientSecret::new(KEY), body.as_bytes());
    assert_eq!(
        env.post(body, &[("X-Signature", &signature)])
            .await
            .status(),
        200
    );
    let tampered = body.replace("90002", "90003");
    assert_eq!(
        env.post(tampered, &[("X-Signature", &signature)])
            .await
            .status(),
        403
    );
    assert_eq!(env.post(body, &[]).await.status(), 403, "missing signature");
    assert_eq!(env.stored().await.len(), 1);
}

async fn env_with(ours: &[(&'static str, &str)], theirs: WebhookAuth) -> Env {
    env(TestBackend::Sqlite, ours, theirs).await
}

#[tokio::test]
async fn hmac_base64_deliveries_from_the_sandbox_verify() {
    let ours = [
        ("CAFE24_WEBHOOK_AUTH", "hmac-base64"),
        ("CAFE24_WEBHOOK_KEY", KEY),
        ("CAFE24_WEBHOOK_HEADER", "X-Cafe24-Hmac-Sha256"),
    ];
    let env = env_with(
        &ours,
        sends(
            WebhookAuthScheme::HmacSha256Base64,
            "X-Cafe24-Hmac-Sha256",
            KEY,
        ),
    )
    .await;
    assert_eq!(
        env.fire("shop1", 90002, false).await.deliveries[0].status,
        "delivered"
    );
    assert_eq!(env.stored().await.len(), 1);
}

#[tokio::test]
async fn a_sender_outside_the_allowlist_is_refused() {
    let mut ours = api_key().to_vec();
    ours.push((
        "CAFE24_WEBHOOK_ALLOWED_SENDERS",
        "119.205.223.208/31,203.245.45.182",
    ));
    let env = env_with(&ours, sends(WebhookAuthScheme::ApiKey, "X-Api-Key", KEY)).await;
    assert_eq!(
        env.fire("shop1", 90001, false).await.deliveries[0].status,
        "failed"
    );
    // A forged X-Forwarded-For is ignored: no trusted proxy is configured.
    let body = r#"{"event_no":90001,"resource":{"mall_id":"shop1"}}"#;
    assert_eq!(
        env.post(
            body,
            &[("X-Api-Key", KEY), ("X-Forwarded-For", "119.205.223.208")]
        )
        .await
        .status(),
        403
    );
    assert!(env.stored().await.is_empty());
}

/// Our server behind a proxy on loopback that only Cafe24's senders may pass.
async fn behind_a_trusted_proxy() -> Env {
    let mut ours = api_key().to_vec();
    ours.push(("CAFE24_WEBHOOK_ALLOWED_SENDERS", "119.205.223.208/31"));
    ours.push(("CAFE24_TRUSTED_PROXIES", "127.0.0.1/32"));
    env_with(&ours, sends(WebhookAuthScheme::ApiKey, "X-Api-Key", KEY)).await
}

#[tokio::test]
async fn appended_forwarded_for_line_is_read() {
    let env = behind_a_trusted_proxy().await;
    let body = r#"{"event_no":90001,"resource":{"mall_id":"shop1"}}"#;
    // The client forged a Cafe24 address; the proxy appended the real one on a line of its own.
    let forged = env
        .post(
            body,
            &[
                ("X-Api-Key", KEY),
                ("X-Forwarded-For", "119.205.223.208"),
                ("X-Forwarded-For", "198.51.100.7"),
            ],
        )
        .await;
    assert_eq!(forged.status(), 403);
    assert!(env.stored().await.is_empty());
    // Cafe24 itself, with whatever came before it on an earlier line, is let in.
    let genuine = env
        .post(
            body,
            &[
                ("X-Api-Key", KEY),
                ("X-Forwarded-For", "198.51.100.7"),
                ("X-Forwarded-For", "119.205.223.209"),
            ],
        )
        .await;
    assert_eq!(genuine.status(), 200);
    assert_eq!(env.stored().await.len(), 1);
}

#[tokio::test]
async fn an_unparseable_forwarded_hop_before_an_allowed_address_is_refused() {
    let env = behind_a_trusted_proxy().await;
    let body = r#"{"event_no":90001,"resource":{"mall_id":"shop1"}}"#;
    for lines in [
        &["119.205.223.208, garbage"][..],
        &["119.205.223.208", "unknown"][..],
        &["119.205.223.208, 127.0.0.1:8080"][..],
    ] {
        let mut headers = vec![("X-Api-Key", KEY)];
        headers.extend(lines.iter().map(|l| ("X-Forwarded-For", *l)));
        assert_eq!(env.post(body, &headers).await.status(), 403, "{lines:?}");
    }
    assert!(env.stored().await.is_empty());
}

#[tokio::test]
async fn without_configured_verification_every_delivery_is_refused() {
    let env = env_with(&[], sends(WebhookAuthScheme::ApiKey, "X-Api-Key", KEY)).await;
    assert_eq!(
        env.fire("shop1", 90001, false).await.deliveries[0].status,
        "failed"
    );
    let body = r#"{"event_no":90001,"resource":{"mall_id":"shop1"}}"#;
    assert_eq!(env.post(body, &[("X-Api-Key", KEY)]).await.status(), 403);
    assert!(env.stored().await.is_empty());
}

#[tokio::test]
async fn oversized_and_malformed_bodies_are_refused_and_nothing_is_stored() {
    let env = env_with(
        &api_key(),
        sends(WebhookAuthScheme::ApiKey, "X-Api-Key", KEY),
    )
    .await;
    let big = format!(
        r#"{{"event_no":90001,"resource":{{"mall_id":"shop1","pad":"{}"}}}}"#,
        "x".repeat(5000)
    );
    assert_eq!(env.post(big, &[("X-Api-Key", KEY)]).await.status(), 413);
    for body in [
        "not json",
        r#"{"resource":{"mall_id":"shop1"}}"#,
        r#"{"event_no":90001,"resource":{"mall_id":"evil.com"}}"#,
        r#"{"event_no":90001}"#,
    ] {
        let response = env.post(body, &[("X-Api-Key", KEY)]).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(
            response.json::<serde_json::Value>().await.expect("json")["error"],
            "invalid_event"
        );
    }
    assert!(env.stored().await.is_empty());
}

async fn the_uninstall_event_revokes_the_mall(backend: TestBackend) {
    let env = env(
        backend,
        &api_key(),
        sends(WebhookAuthScheme::ApiKey, "X-Api-Key", KEY),
    )
    .await;
    let mall = MallId::parse("shop1").expect("mall");
    env.install(&mall).await;
    assert_eq!(
        env.fire("shop1", 90077, false).await.deliveries[0].status,
        "delivered"
    );
    let dispatcher = Dispatcher::new(env.store.clone(), 5).with_manager(env.manager.clone());
    assert_eq!(dispatcher.run_once().await.expect("dispatch").dispatched, 1);
    let row = env.store.tokens(&mall).await.expect("read").expect("row");
    assert_eq!(row.status, MallStatus::Revoked);
    assert_eq!(row.last_error.as_deref(), Some("app deleted (event 90077)"));
    assert_eq!(
        env.sandbox.stats("shop1").expect("stats").revokes,
        0,
        "no call to Cafe24 for an uninstall"
    );
}

/// A forward target that answers 503 until `fail_first` calls have been made, checking every
/// signature it is sent.
async fn forward_target(
    fail_first: usize,
    secret: &'static str,
) -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let good_signatures = Arc::new(AtomicUsize::new(0));
    let (c, g) = (calls.clone(), good_signatures.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let (c, g) = (c.clone(), g.clone());
                async move {
                    let expected =
                        format!("sha256={}", sign_hex(&ClientSecret::new(secret), &body));
                    if headers
                        .get("x-cafe24-oauth-signature")
                        .and_then(|v| v.to_str().ok())
                        == Some(expected.as_str())
                    {
                        g.fetch_add(1, Ordering::SeqCst);
                    }
                    if c.fetch_add(1, Ordering::SeqCst) < fail_first {
                        axum::http::StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        axum::http::StatusCode::OK
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls, good_signatures)
}

#[tokio::test]
async fn a_forward_target_that_is_down_gets_the_event_once_it_recovers() {
    let env = env_with(
        &api_key(),
        sends(WebhookAuthScheme::ApiKey, "X-Api-Key", KEY),
    )
    .await;
    let (url, calls, good) = forward_target(2, "forward-secret-123456").await;
    env.fire("shop1", 90002, false).await;
    let forward =
        Forwarder::new(url, ClientSecret::new("forward-secret-123456")).expect("forwarder");
    let dispatcher = Dispatcher::new(env.store.clone(), 5)
        .with_forward(forward)
        .with_backoff(Duration::from_millis(20));
    let mut dispatched = 0;
    for _ in 0..100 {
        dispatched += dispatcher.run_once().await.expect("dispatch").dispatched;
        if dispatched == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(dispatched, 1);
    let event = &env.stored().await[0];
    assert_eq!((event.status.as_str(), event.attempts), ("dispatched", 3));
    assert_eq!(
        (calls.load(Ordering::SeqCst), good.load(Ordering::SeqCst)),
        (3, 3),
        "every attempt was signed"
    );
}

#[tokio::test]
async fn a_forward_that_keeps_failing_is_dead_lettered() {
    let env = env_with(
        &api_key(),
        sends(WebhookAuthScheme::ApiKey, "X-Api-Key", KEY),
    )
    .await;
    let (url, calls, _) = forward_target(usize::MAX, "forward-secret-123456").await;
    env.fire("shop1", 90002, false).await;
    let forward =
        Forwarder::new(url, ClientSecret::new("forward-secret-123456")).expect("forwarder");
    let dispatcher = Dispatcher::new(env.store.clone(), 3)
        .with_forward(forward)
        .with_backoff(Duration::from_millis(10));
    for _ in 0..100 {
        if dispatcher.run_once().await.expect("dispatch").dead_lettered == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let event = &env.stored().await[0];
    assert_eq!((event.status.as_str(), event.attempts), ("dead_letter", 3));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(event
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("503")));
}

async fn reconciliation_recovers_a_lost_delivery_and_confirms_the_rest(backend: TestBackend) {
    let env = env(
        backend,
        &api_key(),
        sends(WebhookAuthScheme::ApiKey, "X-Api-Key", KEY),
    )
    .await;
    let mall = MallId::parse("shop1").expect("mall");
    env.install(&mall).await;
    assert_eq!(
        env.fire("shop1", 90001, false).await.deliveries[0].status,
        "delivered"
    );
    let lost = env.fire("shop1", 90002, true).await;
    assert_eq!(lost.deliveries[0].status, "lost");
    assert_eq!(
        env.stored().await.len(),
        1,
        "the lost delivery never arrived"
    );

    let app = env.manager.oauth().app().clone();
    let client =
        cafe24_client::Client::new(env.manager.clone(), &app, Default::default()).expect("client");
    let reconciler = Reconciler::new(client, true, Duration::from_secs(3600));
    let summary = reconciler.reconcile_mall(&mall).await.expect("reconcile");
    assert_eq!(
        (summary.logged, summary.confirmed, summary.recovered),
        (2, 1, 1)
    );
    let events = env.stored().await;
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.confirmed_at.is_some()));
    let recovered = events
        .iter()
        .find(|e| e.source == "reconciled")
        .expect("recovered event");
    assert_eq!(
        (recovered.event_no, recovered.trace_id.as_deref()),
        (90002, Some(lost.deliveries[0].trace_id.as_str()))
    );
    // Idempotent: a second pass recovers nothing new.
    let again = reconciler.reconcile_mall(&mall).await.expect("reconcile");
    assert_eq!((again.recovered, again.confirmed), (0, 2));
    assert_eq!(
        Dispatcher::new(env.store.clone(), 5)
            .run_once()
            .await
            .expect("dispatch")
            .dispatched,
        2
    );
}

#[tokio::test]
async fn reconciliation_stops_with_an_error_when_the_log_cursor_does_not_advance() {
    let env = env_with(
        &api_key(),
        sends(WebhookAuthScheme::ApiKey, "X-Api-Key", KEY),
    )
    .await;
    let mall = MallId::parse("shop1").expect("mall");
    env.install(&mall).await;
    // A Cafe24 that ignores `since_log_id`: the same full page of logs, for ever.
    let logs: Vec<serde_json::Value> = (0..1000)
        .map(|i| {
            json!({
                "log_id": format!("log{i:05}"),
                "log_type": "G",
                "event_no": 90001,
                "mall_id": "shop1",
                "trace_id": format!("trace{i:05}"),
                "request_body": format!(r#"{{"event_no":90001,"resource":{{"mall_id":"shop1","product_no":{i}}}}}"#),
                "success": "T",
                "response_http_code": 200,
            })
        })
        .collect();
    let page = json!({ "logs": logs });
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    let fake = axum::Router::new().fallback(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        let page = page.clone();
        async move { axum::Json(page) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, fake).await });

    let mut app = env.manager.oauth().app().clone();
    app.base_url = cafe24_core::BaseUrlTemplate::parse(&format!("http://{addr}/malls/{{mall_id}}"))
        .expect("base url");
    let client =
        cafe24_client::Client::new(env.manager.clone(), &app, Default::default()).expect("client");
    let reconciler = Reconciler::new(client, true, Duration::from_secs(3600));
    let outcome = tokio::time::timeout(Duration::from_secs(60), reconciler.reconcile_mall(&mall))
        .await
        .expect("reconciliation never ended: it asked for the same page again and again");
    let err = outcome.expect_err("a cursor that does not advance is an error");
    assert!(err.to_string().contains("did not advance"), "{err}");
    assert_eq!(requests.load(Ordering::SeqCst), 2);
}

/// An embedding app's handler: fails its first `fail_first` calls, then records event numbers.
struct AppHandler {
    calls: AtomicUsize,
    fail_first: usize,
    seen: std::sync::Mutex<Vec<i32>>,
}

#[async_trait::async_trait]
impl cafe24_webhooks::WebhookHandler for AppHandler {
    async fn handle(&self, event: &cafe24_store::WebhookEventRecord) -> Result<(), String> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.fail_first {
            return Err("the app's database is busy".into());
        }
        self.seen.lock().expect("lock").push(event.event_no);
        Ok(())
    }
}

#[tokio::test]
async fn events_reach_the_apps_handler_and_a_handler_error_is_retried() {
    let env = env_with(
        &api_key(),
        sends(WebhookAuthScheme::ApiKey, "X-Api-Key", KEY),
    )
    .await;
    env.fire("shop1", 90001, false).await;
    env.fire("shop1", 90002, false).await;
    let handler = Arc::new(AppHandler {
        calls: AtomicUsize::new(0),
        fail_first: 1,
        seen: Default::default(),
    });
    let dispatcher = Dispatcher::new(env.store.clone(), 5)
        .with_handler(handler.clone())
        .with_backoff(Duration::from_millis(10));
    let mut dispatched = 0;
    for _ in 0..100 {
        dispatched += dispatcher.run_once().await.expect("dispatch").dispatched;
        if dispatched == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(dispatched, 2);
    let mut seen = handler.seen.lock().expect("lock").clone();
    seen.sort_unstable();
    assert_eq!(
        seen,
        vec![90001, 90002],
        "each event handled once it succeeded"
    );
    let attempts: Vec<i32> = env.stored().await.iter().map(|e| e.attempts).collect();
    assert_eq!(
        attempts,
        vec![2, 1],
        "the event whose handler failed was retried"
    );
}
