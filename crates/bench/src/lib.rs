//! Shared set-up for the benchmark drivers: a sandbox playing Cafe24, a PostgreSQL store from
//! `DATABASE_URL`, and a token manager, all on loopback.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context};
use cafe24_core::secret::AuthorizationCode;
use cafe24_core::settings::{
    generate_key_entry, AppSettings, DatabaseSettings, Source, TokenSettings,
};
use cafe24_core::{MallId, SystemClock};
use cafe24_sandbox::{AppConfig, RateLimitConfig, RunningSandbox, SandboxConfig};
use cafe24_store::{CodeInsert, NewAuthorizationCode, Store};
use cafe24_tokens::{OAuthClient, TokenManager};

pub const REDIRECT: &str = "https://app.example.com/oauth/callback";

pub struct Bench {
    pub sandbox: RunningSandbox,
    pub store: Arc<dyn Store>,
    pub source: Source,
    http: reqwest::Client,
}

/// A sandbox that creates malls on first use, and the store named by `DATABASE_URL`.
pub async fn setup(redirect: &str, extra: &[(&str, String)]) -> anyhow::Result<Bench> {
    let app = AppConfig {
        redirect_uris: vec![redirect.to_owned()],
        ..AppConfig::default()
    };
    let config = SandboxConfig {
        auto_approve: true,
        auto_create_malls: true,
        auto_create_products: 1,
        apps: vec![app.clone()],
        rate_limit: RateLimitConfig {
            enabled: false,
            ..RateLimitConfig::default()
        },
        ..SandboxConfig::default()
    };
    let sandbox = cafe24_sandbox::start(config, "127.0.0.1:0".parse()?).await?;
    let mut pairs: Vec<(String, String)> = vec![
        ("CAFE24_CLIENT_ID".into(), app.client_id.clone()),
        (
            "CAFE24_CLIENT_SECRET".into(),
            app.client_secret.expose_secret().to_owned(),
        ),
        ("CAFE24_REDIRECT_URI".into(), redirect.to_owned()),
        ("CAFE24_SCOPES".into(), "mall.read_product".into()),
        ("CAFE24_BASE_URL".into(), sandbox.base_url_template()),
        ("TOKEN_ENCRYPTION_KEYS".into(), generate_key_entry("bench")),
        (
            "EXPECTED_STATE_SECRET".into(),
            "bench-state-secret-0123456789abcdef0123".into(),
        ),
        (
            "DATABASE_URL".into(),
            std::env::var("DATABASE_URL")
                .context("DATABASE_URL must name the PostgreSQL database")?,
        ),
        ("DATABASE_MAX_CONNECTIONS".into(), "40".into()),
    ];
    pairs.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    let source = Source::from_pairs(pairs);
    let store = cafe24_store::connect(&DatabaseSettings::load(&source)?).await?;
    store.migrate().await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    Ok(Bench {
        sandbox,
        store,
        source,
        http,
    })
}

impl Bench {
    pub fn manager(&self) -> anyhow::Result<TokenManager> {
        let tokens = TokenSettings::load(&self.source)?;
        let oauth = OAuthClient::new(
            Arc::new(AppSettings::load(&self.source)?),
            tokens.http_timeout,
        )?;
        Ok(TokenManager::new(
            self.store.clone(),
            oauth,
            tokens,
            Arc::new(SystemClock),
        ))
    }

    /// Follows a 302 to `url` and returns its Location.
    pub async fn redirect(&self, url: &str) -> anyhow::Result<String> {
        let response = self.http.get(url).send().await?;
        ensure!(
            response.status() == 302,
            "{url} answered {}",
            response.status()
        );
        Ok(response
            .headers()
            .get("location")
            .context("no Location")?
            .to_str()?
            .to_owned())
    }

    pub async fn get(&self, url: &str) -> anyhow::Result<reqwest::Response> {
        Ok(self.http.get(url).send().await?)
    }

    /// A fresh code for `mall` from the sandbox's auto-approved consent.
    pub async fn code(&self, mall: &MallId, redirect: &str) -> anyhow::Result<String> {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &AppConfig::default().client_id)
            .append_pair("state", "bench")
            .append_pair("redirect_uri", redirect)
            .append_pair("scope", "mall.read_product")
            .finish();
        let base = self
            .sandbox
            .base_url_template()
            .replace("{mall_id}", mall.as_str());
        let location = url::Url::parse(
            &self
                .redirect(&format!("{base}/api/v2/oauth/authorize?{query}"))
                .await?,
        )?;
        location
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .context("no code")
    }

    /// Stores a code for `mall` as the callback would.
    pub async fn store_code(&self, mall: &MallId, code: &str) -> anyhow::Result<()> {
        let code = AuthorizationCode::new(code);
        let state = format!("bench-{mall}");
        let stored = self
            .store
            .insert_authorization_code(NewAuthorizationCode {
                code: &code,
                state: &state,
                mall_id: mall,
            })
            .await?;
        ensure!(matches!(stored, CodeInsert::Stored { .. }), "state reused");
        Ok(())
    }
}

/// Percentile (0–100) of sorted durations, in milliseconds.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

pub fn mall(i: usize) -> MallId {
    MallId::parse(&format!("bench{i}"))
        .unwrap_or_else(|e| unreachable!("bench{i} is a valid mall id: {e}"))
}
