//! Shared setup: a fresh sandbox per test on a free loopback port, and a client that does
//! not follow redirects so tests see Cafe24's 302s.

use std::collections::HashMap;

use base64::Engine;
use cafe24_sandbox::{start, AppConfig, RunningSandbox, SandboxConfig};
use reqwest::{Client, Response, StatusCode};
use serde_json::Value;

pub const MALL: &str = "sandboxmall";
pub const CLIENT_ID: &str = "sandbox-client-id";
pub const SECRET: &str = "sandbox-client-secret";
pub const REDIRECT: &str = "http://127.0.0.1:8080/oauth/callback";
pub const SCOPES: &str = "mall.read_product,mall.write_product,mall.read_store,mall.read_application,mall.write_application";

pub struct TestSandbox {
    pub sb: RunningSandbox,
    pub http: Client,
}

pub async fn spawn() -> TestSandbox {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(f: impl FnOnce(&mut SandboxConfig)) -> TestSandbox {
    let mut cfg = SandboxConfig::default();
    f(&mut cfg);
    let sb = start(cfg, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sandbox starts");
    let http = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    TestSandbox { sb, http }
}

/// The default app with another client id, secret and redirect URI.
pub fn second_app() -> AppConfig {
    AppConfig {
        client_id: "other-client".into(),
        client_secret: cafe24_sandbox::Secret::new("other-secret"),
        redirect_uris: vec!["http://127.0.0.1:9999/cb".into()],
        ..AppConfig::default()
    }
}

pub fn basic(id: &str, secret: &str) -> String {
    let raw = format!("{id}:{secret}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// Query parameters of a `Location` header.
pub fn location_query(resp: &Response) -> HashMap<String, String> {
    let loc = resp
        .headers()
        .get("location")
        .expect("location header")
        .to_str()
        .expect("ascii location");
    let url = url::Url::parse(loc).expect("absolute location");
    url.query_pairs().into_owned().collect()
}

impl TestSandbox {
    /// `/malls/{MALL}{path}` as an absolute URL.
    pub fn mall_url(&self, path: &str) -> String {
        self.sb.url(&format!("/malls/{MALL}{path}"))
    }

    pub fn authorize_url(&self, state: &str, scope: &str, redirect: &str) -> String {
        let q: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", CLIENT_ID)
            .append_pair("state", state)
            .append_pair("redirect_uri", redirect)
            .append_pair("scope", scope)
            .finish();
        self.mall_url(&format!("/api/v2/oauth/authorize?{q}"))
    }

    /// Clicks "Approve" the way the consent form does.
    pub async fn approve(&self, state: &str, scope: &str) -> Response {
        let form = [
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("state", state),
            ("redirect_uri", REDIRECT),
            ("scope", scope),
            ("decision", "approve"),
        ];
        self.http
            .post(self.mall_url("/api/v2/oauth/authorize"))
            .form(&form)
            .send()
            .await
            .expect("approve")
    }

    pub async fn code(&self) -> String {
        let resp = self.approve("st", SCOPES).await;
        assert_eq!(resp.status(), StatusCode::FOUND);
        location_query(&resp).remove("code").expect("code")
    }

    pub async fn exchange(&self, code: &str) -> Response {
        self.http
            .post(self.mall_url("/api/v2/oauth/token"))
            .header("authorization", basic(CLIENT_ID, SECRET))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
            ])
            .send()
            .await
            .expect("token")
    }

    /// Full flow: consent, code, exchange. Returns the token body.
    pub async fn tokens(&self) -> Value {
        let code = self.code().await;
        let resp = self.exchange(&code).await;
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.expect("json")
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.http
            .post(self.mall_url("/api/v2/oauth/token"))
            .header("authorization", basic(CLIENT_ID, SECRET))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ])
            .send()
            .await
            .expect("refresh")
    }

    /// A fresh refresh token at another mall (the sandbox must auto-approve).
    pub async fn refresh_token_at(&self, mall: &str) -> String {
        let q: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", CLIENT_ID)
            .append_pair("state", "st")
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("scope", SCOPES)
            .finish();
        let base = self.sb.mall_base_url(mall);
        let consent = self
            .http
            .get(format!("{base}/api/v2/oauth/authorize?{q}"))
            .send()
            .await
            .expect("authorize");
        assert_eq!(consent.status(), StatusCode::FOUND);
        let code = location_query(&consent).remove("code").expect("code");
        let body: Value = self
            .http
            .post(format!("{base}/api/v2/oauth/token"))
            .header("authorization", basic(CLIENT_ID, SECRET))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
            ])
            .send()
            .await
            .expect("exchange")
            .json()
            .await
            .expect("json");
        body["refresh_token"].as_str().expect("rt").to_string()
    }

    pub async fn access_token(&self) -> String {
        self.tokens().await["access_token"]
            .as_str()
            .expect("token")
            .to_string()
    }

    pub async fn admin_get(&self, token: &str, path: &str) -> Response {
        self.http
            .get(self.mall_url(&format!("/api/v2/admin{path}")))
            .bearer_auth(token)
            .send()
            .await
            .expect("admin get")
    }

    /// GET an Admin path and return (status, body).
    pub async fn admin_json(&self, token: &str, path: &str) -> (StatusCode, Value) {
        let resp = self.admin_get(token, path).await;
        let status = resp.status();
        (status, resp.json().await.expect("json body"))
    }
}

/// The Admin error envelope's message, asserting the shape.
pub fn envelope_message(body: &Value, status: u16) -> String {
    assert_eq!(body["error"]["code"], status, "envelope: {body}");
    assert!(body["error"]["more_info"].is_object(), "envelope: {body}");
    body["error"]["message"]
        .as_str()
        .expect("message")
        .to_string()
}
