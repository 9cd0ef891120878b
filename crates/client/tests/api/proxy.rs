//! The server's Admin API proxy: off unless configured, guarded by the admin bearer
//! credential, forwarding with the mall's token, pacing and retries.

use std::sync::Arc;

use cafe24_client::Client;
use cafe24_core::settings::{AdminToken, Settings, Source};
use cafe24_sandbox::FaultSpec;
use cafe24_server::{AppState, Application, Proxy};
use serde_json::{json, Value};

use crate::fake::{fake, json as answer};
use crate::support::{rig, Rig, Time};

const ADMIN: &str = "proxy-admin-credential-0123456789abcdef";

/// Serves the router on a free port, with the proxy when `with_proxy`; returns its base URL.
async fn serve(rig: &Rig, with_proxy: bool) -> String {
    serve_with(rig, with_proxy.then(|| rig.client.clone())).await
}

/// As [`serve`], the proxy (if any) calling Cafe24 through `client`.
async fn serve_with(rig: &Rig, client: Option<Client>) -> String {
    let mut pairs = rig.source.clone();
    pairs.push(("EXPECTED_STATE_SECRET", "s".repeat(40)));
    pairs.push(("LISTEN_ADDR", "127.0.0.1:0".into()));
    pairs.push(("HTTP_REQUEST_TIMEOUT_SECS", "60".into()));
    let settings = Settings::load(&Source::from_pairs(pairs)).expect("settings");
    let mut state = AppState::new(&settings, rig.store.clone());
    if let Some(client) = client {
        state.proxy = Some(Arc::new(Proxy::new(client, AdminToken::new(ADMIN))));
    }
    let app = Application::with_state(state, &settings.http)
        .await
        .expect("bind");
    let addr = app.local_addr().expect("addr");
    tokio::spawn(app.run(std::future::pending()));
    format!("http://{addr}/internal/malls")
}

async fn get(url: &str, bearer: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    let resp = req.send().await.expect("proxy answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_proxy_refuses_a_missing_or_wrong_credential() {
    let rig = rig(&[("shop", 20)], Time::Virtual, &[]).await;
    let base = serve(&rig, true).await;
    let url = format!("{base}/shop/api/v2/admin/products/count");

    let resp = reqwest::get(&url).await.expect("answer");
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    let (status, body) = get(&url, Some("not-the-credential")).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")));
    // Right length, wrong bytes.
    let (status, _) = get(&url, Some(&ADMIN.replace('0', "1"))).await;
    assert_eq!(status, 403);
    assert_eq!(rig.stats("shop").api_calls, 0, "nothing reached Cafe24");
}

#[tokio::test]
async fn the_proxy_forwards_with_the_right_credential() {
    let rig = rig(&[("shop", 20)], Time::Virtual, &[]).await;
    let base = serve(&rig, true).await;
    let admin = Some(ADMIN);

    let (status, body) = get(&format!("{base}/shop/api/v2/admin/products/count"), admin).await;
    assert_eq!((status, body), (200, json!({"count": 20})));
    let (status, body) = get(
        &format!("{base}/shop/api/v2/admin/products?limit=3&order=asc"),
        admin,
    )
    .await;
    assert_eq!(status, 200);
    let numbers: Vec<u64> = body["products"]
        .as_array()
        .expect("products")
        .iter()
        .filter_map(|p| p["product_no"].as_u64())
        .collect();
    assert_eq!(numbers, [1, 2, 3]);

    // Cafe24's refusals pass through with its envelope.
    let (status, body) = get(
        &format!("{base}/shop/api/v2/admin/products?limit=101"),
        admin,
    )
    .await;
    assert_eq!((status, body["error"]["code"].as_u64()), (422, Some(422)));
    // Retries apply behind the proxy.
    rig.sandbox
        .set_fault(
            "store",
            FaultSpec {
                error_next: 2,
                error_status: Some(503),
                ..FaultSpec::default()
            },
        )
        .expect("fault");
    let (status, body) = get(&format!("{base}/shop/api/v2/admin/store"), admin).await;
    assert_eq!(
        (status, body["store"]["mall_id"].as_str()),
        (200, Some("shop"))
    );

    // Only the Admin API is forwarded, and only for installed malls.
    let (status, _) = get(&format!("{base}/shop/api/v2/oauth/token"), admin).await;
    assert_eq!(status, 404);
    let (status, body) = get(&format!("{base}/other/api/v2/admin/store"), admin).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("not_installed"))
    );
    let (status, _) = get(&format!("{base}/Bad..Mall/api/v2/admin/store"), admin).await;
    assert_eq!(status, 400);

    let stats = rig.stats("shop");
    assert_eq!((stats.api_calls, stats.faults_injected), (4, 2));
}

#[tokio::test]
async fn without_the_setting_the_route_does_not_exist() {
    let rig = rig(&[("shop", 20)], Time::Virtual, &[]).await;
    let base = serve(&rig, false).await;
    let (status, _) = get(&format!("{base}/shop/api/v2/admin/store"), Some(ADMIN)).await;
    assert_eq!(status, 404);
    assert_eq!(rig.stats("shop").api_calls, 0);
}

#[tokio::test]
async fn percent_encoded_paths_are_refused_and_nothing_is_forwarded() {
    let rig = rig(&[("shop", 20)], Time::Virtual, &[]).await;
    // The proxy's client calls a recorder instead of the sandbox: any request that gets
    // through shows up there, wherever the path would have led.
    let upstream = fake(|_, _| answer(json!({"reached": true}))).await;
    let (client, _timer) = rig.client_for(&upstream.base_url, &[]);
    let base = serve_with(&rig, Some(client)).await;
    let http = reqwest::Client::new();
    for path in [
        "admin/%252e%252e/%252e%252e/oauth/token",
        "admin/%252E%252E/%252E%252E/oauth/token",
        "admin/%252e%252e/oauth/token",
        "admin/products/%252e%252e/store",
        "admin/products/.%252e/.%252e/.%252e/oauth/token",
        "admin/%25252e%25252e/%25252e%25252e/oauth/token",
        "admin/products%252f..%252f..%252foauth%252ftoken",
        "admin/products%2Fcount",
        "admin/products/%31",
        "admin/%",
    ] {
        for method in [reqwest::Method::GET, reqwest::Method::POST] {
            let response = http
                .request(method.clone(), format!("{base}/shop/api/v2/{path}"))
                .bearer_auth(ADMIN)
                .json(&json!({}))
                .send()
                .await
                .expect("proxy answers");
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert_eq!(status, 400, "{method} {path}: {body}");
            assert_eq!(body["ok"], false, "{method} {path}: {body}");
            assert_eq!(body["error"], "invalid_path", "{method} {path}: {body}");
            assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
    }
    assert_eq!(upstream.seen(), Vec::<String>::new(), "reached Cafe24");
    assert_eq!(rig.stats("shop").api_calls, 0);
}
