//! Shared set-up for the benchmark drivers: a sandbox playing Cafe24, a PostgreSQL store from
//! `DATABASE_URL`, and a token manager, all on loopback.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context};
use cafe24_core::settings::{DatabaseSettings, Source};
use cafe24_core::MallId;
use cafe24_sandbox::{RateLimitConfig, RunningSandbox, SandboxConfig};
use cafe24_store::Store;
use cafe24_tokens::TokenManager;

pub const REDIRECT: &str = "https://app.example.com/oauth/callback";

pub struct Bench {
    pub sandbox: RunningSandbox,
    pub store: Arc<dyn Store>,
    pub source: Source,
    http: reqwest::Client,
}

/// A sandbox that creates malls on first use, and the store named by `DATABASE_URL`.
pub async fn setup(redirect: &str, extra: &[(&str, String)]) -> anyhow::Result<Bench> {
    let config = SandboxConfig {
        auto_create_products: 1,
        rate_limit: RateLimitConfig {
            enabled: false,
            ..RateLimitConfig::default()
        },
        ..cafe24_testrig::sandbox_config(redirect)
    };
    let sandbox = cafe24_testrig::start(config).await;
    let mut pairs = cafe24_testrig::runtime_env(&sandbox, redirect, "mall.read_product");
    pairs.push((
        "EXPECTED_STATE_SECRET".into(),
        "bench-state-secret-0123456789abcdef0123".into(),
    ));
    pairs.push((
        "DATABASE_URL".into(),
        std::env::var("DATABASE_URL").context("DATABASE_URL must name the PostgreSQL database")?,
    ));
    pairs.push(("DATABASE_MAX_CONNECTIONS".into(), "40".into()));
    pairs.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    let source = Source::from_pairs(pairs);
    let mut database = DatabaseSettings::load(&source)?;
    // `BENCH_CODE_NOTIFY=trigger`: every insert notifies from the trigger, within its commit
    // (as before migration 0005, and as the Lambda callback does), for comparison.
    if std::env::var("BENCH_CODE_NOTIFY").is_ok_and(|n| n == "trigger") {
        database.coalesce_code_notifications = false;
    }
    let store = cafe24_store::connect(&database).await?;
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
        Ok(cafe24_testrig::manager(&self.source, self.store.clone()))
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
        cafe24_testrig::code(&self.sandbox, mall, redirect, "mall.read_product")
            .await
            .map_err(anyhow::Error::msg)
    }

    /// Stores a code for `mall` as the callback would.
    pub async fn store_code(&self, mall: &MallId, code: &str) -> anyhow::Result<()> {
        cafe24_testrig::store_code(self.store.as_ref(), mall, code)
            .await
            .map(drop)
            .map_err(anyhow::Error::msg)
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
