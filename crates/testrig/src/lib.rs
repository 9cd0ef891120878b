//! Scaffolding shared by the tests and benchmarks that sit above the token lifecycle (CLI,
//! webhooks, client, bench): a sandbox playing Cafe24 with its default app, the runtime's
//! settings for it, a token manager, and malls installed through the real exchange queue.
//! (The tokens crate's own tests keep a copy: a crate cannot dev-depend on one built on it.)

use std::sync::Arc;

use cafe24_core::secret::AuthorizationCode;
use cafe24_core::settings::{generate_key_entry, AppSettings, Source, TokenSettings};
use cafe24_core::{MallId, SystemClock};
use cafe24_sandbox::{AppConfig, RunningSandbox, SandboxConfig};
use cafe24_store::{CodeInsert, NewAuthorizationCode, Store};
use cafe24_tokens::{Exchanger, OAuthClient, TokenManager};
use rand::Rng;

/// The redirect URI registered for the sandbox's app unless a test needs its own.
pub const REDIRECT: &str = "https://app.example.com/oauth/callback";

/// A sandbox config that approves consent by itself, creates malls on first use, and knows the
/// default app with `redirect` registered.
pub fn sandbox_config(redirect: &str) -> SandboxConfig {
    SandboxConfig {
        auto_approve: true,
        auto_create_malls: true,
        apps: vec![AppConfig {
            redirect_uris: vec![redirect.to_owned()],
            ..AppConfig::default()
        }],
        ..SandboxConfig::default()
    }
}

pub async fn start(config: SandboxConfig) -> RunningSandbox {
    cafe24_sandbox::start(
        config,
        "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!()),
    )
    .await
    .unwrap_or_else(|e| panic!("sandbox: {e}"))
}

/// The runtime's settings for the sandbox's default app, with a fresh encryption key.
pub fn runtime_env(
    sandbox: &RunningSandbox,
    redirect: &str,
    scopes: &str,
) -> Vec<(String, String)> {
    let app = AppConfig::default();
    vec![
        ("CAFE24_CLIENT_ID".into(), app.client_id.clone()),
        (
            "CAFE24_CLIENT_SECRET".into(),
            app.client_secret.expose_secret().to_owned(),
        ),
        ("CAFE24_REDIRECT_URI".into(), redirect.to_owned()),
        ("CAFE24_SCOPES".into(), scopes.to_owned()),
        ("CAFE24_BASE_URL".into(), sandbox.base_url_template()),
        ("TOKEN_ENCRYPTION_KEYS".into(), generate_key_entry("k1")),
        // Tests open /install directly, as a developer does locally.
        ("CAFE24_LAUNCH_HMAC_REQUIRED".into(), "false".into()),
    ]
}

/// A token manager over `store`, configured from `source` (app and token settings).
pub fn manager(source: &Source, store: Arc<dyn Store>) -> TokenManager {
    let tokens = TokenSettings::load(source).unwrap_or_else(|e| panic!("token settings: {e}"));
    let app = AppSettings::load(source).unwrap_or_else(|e| panic!("app settings: {e}"));
    let oauth = OAuthClient::new(Arc::new(app), tokens.http_timeout)
        .unwrap_or_else(|e| panic!("client: {e}"));
    TokenManager::new(store, oauth, tokens, Arc::new(SystemClock))
}

/// A fresh authorization code for `mall` from the sandbox's auto-approved consent.
pub async fn code(
    sandbox: &RunningSandbox,
    mall: &MallId,
    redirect: &str,
    scopes: &str,
) -> Result<String, String> {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &AppConfig::default().client_id)
        .append_pair("state", "testrig")
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", scopes)
        .finish();
    let base = sandbox
        .base_url_template()
        .replace("{mall_id}", mall.as_str());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let response = http
        .get(format!("{base}/api/v2/oauth/authorize?{query}"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or("no redirect from authorize")?;
    let location = url::Url::parse(location).map_err(|e| e.to_string())?;
    location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| "no code".to_owned())
}

/// Stores `code` for `mall` as the callback does (a fresh state each time).
pub async fn store_code(store: &dyn Store, mall: &MallId, code: &str) -> Result<i64, String> {
    let state = format!("testrig-{:016x}", rand::thread_rng().gen::<u64>());
    let code = AuthorizationCode::new(code);
    match store
        .insert_authorization_code(NewAuthorizationCode {
            code: &code,
            state: &state,
            mall_id: mall,
            max_pending: u32::MAX,
        })
        .await
    {
        Ok(CodeInsert::Stored { id }) => Ok(id),
        other => Err(format!("code not stored: {other:?}")),
    }
}

/// Installs `mall`: a code from the sandbox, stored, exchanged through the queue.
pub async fn install(
    sandbox: &RunningSandbox,
    manager: &Arc<TokenManager>,
    mall: &MallId,
    redirect: &str,
    scopes: &str,
) {
    let code = code(sandbox, mall, redirect, scopes)
        .await
        .unwrap_or_else(|e| panic!("{mall}: {e}"));
    store_code(manager.store().as_ref(), mall, &code)
        .await
        .unwrap_or_else(|e| panic!("{mall}: {e}"));
    let summary = Exchanger::new(manager.clone())
        .drain()
        .await
        .unwrap_or_else(|e| panic!("exchange: {e}"));
    assert_eq!(summary.exchanged, 1, "{mall}: {summary:?}");
}
