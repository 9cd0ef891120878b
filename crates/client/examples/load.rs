//! Load generator for `bench/client.sh`.
//!
//! `load sandbox --listen ADDR` runs a sandbox (real bucket: 40 deep, 2/s) with the malls
//! `solo` and `shared` until killed. `load run --sandbox URL --mall M --tasks N --secs S`
//! installs the mall into a fresh SQLite file (its own grant), then N tasks call
//! `GET /products/count` through one paced client for S seconds, and prints one JSON line:
//! calls that succeeded, attempts answered 429, and rates.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use cafe24_client::Client;
use cafe24_core::secret::AuthorizationCode;
use cafe24_core::settings::{
    generate_key_entry, AppSettings, ClientSettings, DatabaseSettings, Source, TokenSettings,
};
use cafe24_core::{MallId, SystemClock};
use cafe24_sandbox::{AppConfig, MallConfig, SandboxConfig};
use cafe24_store::NewAuthorizationCode;
use cafe24_tokens::{Exchanger, OAuthClient, TokenManager};

const REDIRECT: &str = "https://app.example.com/oauth/callback";
const SCOPES: &str = "mall.read_product";

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("sandbox") => sandbox(&arg(&args, "--listen").context("--listen ADDR")?).await,
        Some("run") => {
            let number = |name: &str, default: u64| -> anyhow::Result<u64> {
                arg(&args, name).map_or(Ok(default), |v| v.parse().context(name.to_owned()))
            };
            run(
                &arg(&args, "--sandbox").context("--sandbox URL")?,
                &arg(&args, "--mall").unwrap_or_else(|| "solo".into()),
                number("--tasks", 16)?,
                number("--secs", 60)?,
            )
            .await
        }
        _ => bail!("usage: load sandbox --listen ADDR | load run --sandbox URL [--mall M] [--tasks N] [--secs S]"),
    }
}

async fn sandbox(listen: &str) -> anyhow::Result<()> {
    let config = SandboxConfig {
        auto_approve: true,
        apps: vec![AppConfig {
            redirect_uris: vec![REDIRECT.into()],
            ..AppConfig::default()
        }],
        malls: ["solo", "shared"]
            .iter()
            .map(|m| MallConfig {
                mall_id: (*m).into(),
                ..MallConfig::default()
            })
            .collect(),
        ..SandboxConfig::default()
    };
    let sandbox = cafe24_sandbox::start(config, listen.parse()?).await?;
    println!("sandbox ready on {}", sandbox.addr());
    tokio::signal::ctrl_c().await?;
    Ok(())
}

async fn run(sandbox: &str, mall_id: &str, tasks: u64, secs: u64) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("cafe24-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let app_defaults = AppConfig::default();
    let source = Source::from_pairs([
        ("CAFE24_CLIENT_ID", app_defaults.client_id.clone()),
        (
            "CAFE24_CLIENT_SECRET",
            app_defaults.client_secret.expose_secret().to_owned(),
        ),
        ("CAFE24_REDIRECT_URI", REDIRECT.into()),
        ("CAFE24_SCOPES", SCOPES.into()),
        ("CAFE24_BASE_URL", format!("{sandbox}/malls/{{mall_id}}")),
        ("TOKEN_ENCRYPTION_KEYS", generate_key_entry("k1")),
        (
            "CAFE24_SQLITE_PATH",
            dir.join("load.sqlite3").display().to_string(),
        ),
    ]);
    let app = AppSettings::load(&source)?;
    let tokens = TokenSettings::load(&source)?;
    let store = cafe24_store::connect(&DatabaseSettings::load(&source)?).await?;
    store.migrate().await?;
    let oauth = OAuthClient::new(Arc::new(app.clone()), tokens.http_timeout)?;
    let manager = Arc::new(TokenManager::new(
        store.clone(),
        oauth,
        tokens,
        Arc::new(SystemClock),
    ));
    let mall = MallId::parse(mall_id)?;
    install(sandbox, &mall, &store, &manager).await?;

    let client = Client::new(manager, &app, ClientSettings::load(&source)?)?;
    let started = Instant::now();
    let end = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut workers = Vec::new();
    for _ in 0..tasks {
        let shop = client.mall(mall.clone());
        workers.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0u64, 0u64);
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(end) => break,
                    result = shop.products_count(&[]) => match result {
                        Ok(_) => ok += 1,
                        Err(_) => failed += 1,
                    },
                }
            }
            (ok, failed)
        }));
    }
    let (mut ok, mut failed) = (0u64, 0u64);
    for w in workers {
        let (o, f) = w.await?;
        ok += o;
        failed += f;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let m = client.metrics();
    let answered_429 = m.attempts("429");
    let answered_200 = m.attempts("200");
    println!(
        "{}",
        serde_json::json!({
            "mall": mall_id,
            "tasks": tasks,
            "secs": (elapsed * 10.0).round() / 10.0,
            "calls_ok": ok,
            "calls_failed": failed,
            "attempts_200": answered_200,
            "attempts_429": answered_429,
            "calls_per_sec": (ok as f64 / elapsed * 100.0).round() / 100.0,
            // The first 40 ride the full bucket; the steady state is what 2/s bounds.
            "steady_calls_per_sec": ((ok.saturating_sub(40)) as f64 / elapsed * 1000.0).round() / 1000.0,
            "pacer": format!("{:?}", client.mall(mall.clone()).pacer().stats()),
        })
    );
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Installs `mall` through the sandbox's auto-approved consent and the exchange queue.
async fn install(
    sandbox: &str,
    mall: &MallId,
    store: &Arc<dyn cafe24_store::Store>,
    manager: &Arc<TokenManager>,
) -> anyhow::Result<()> {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &AppConfig::default().client_id)
        .append_pair("state", "load")
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", SCOPES)
        .finish();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let response = http
        .get(format!(
            "{sandbox}/malls/{}/api/v2/oauth/authorize?{query}",
            mall.as_str()
        ))
        .send()
        .await?;
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .context("no redirect from authorize")?;
    let code = url::Url::parse(location)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .context("no code")?;
    store
        .insert_authorization_code(NewAuthorizationCode {
            code: &AuthorizationCode::new(code),
            state: &format!("load-{}", std::process::id()),
            mall_id: mall,
            max_pending: u32::MAX,
        })
        .await?;
    let summary = Exchanger::new(manager.clone()).drain().await?;
    if summary.exchanged != 1 {
        bail!("exchange failed: {summary:?}");
    }
    Ok(())
}
