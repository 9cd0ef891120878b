//! Load generator for `bench/client.sh`.
//!
//! `load sandbox --listen ADDR` runs a sandbox (real bucket: 40 deep, 2/s) until killed; malls
//! are created on first use. `load run --sandbox URL --mall M [--malls N] --tasks T --secs S`
//! calls `GET /products/count` through one paced client for S seconds with T tasks per mall
//! (mall M, or M-000 … M-{N-1}), and prints one JSON line: calls that succeeded, attempts
//! answered 429, per-mall counts. Without `DATABASE_URL` it installs its malls into a fresh
//! SQLite file (its own grant); with it (and a shared `TOKEN_ENCRYPTION_KEYS`), processes share
//! one PostgreSQL database — its malls installed once by `load install` — and so the malls'
//! fleet-wide budgets.

use std::collections::BTreeMap;
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
use cafe24_store::{NewAuthorizationCode, Store};
use cafe24_tokens::{Exchanger, OAuthClient, TokenManager};

const REDIRECT: &str = "https://app.example.com/oauth/callback";
const SCOPES: &str = "mall.read_product";

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

struct Plan {
    sandbox: String,
    malls: Vec<MallId>,
    tasks: u64,
    secs: u64,
}

fn plan(args: &[String]) -> anyhow::Result<Plan> {
    let number = |name: &str, default: u64| -> anyhow::Result<u64> {
        arg(args, name).map_or(Ok(default), |v| v.parse().context(name.to_owned()))
    };
    let mall = arg(args, "--mall").unwrap_or_else(|| "solo".into());
    let count = number("--malls", 1)?;
    let malls = if count <= 1 {
        vec![MallId::parse(&mall)?]
    } else {
        (0..count)
            .map(|i| MallId::parse(&format!("{mall}-{i:03}")))
            .collect::<Result<_, _>>()?
    };
    Ok(Plan {
        sandbox: arg(args, "--sandbox").context("--sandbox URL")?,
        malls,
        tasks: number("--tasks", 16)?,
        secs: number("--secs", 60)?,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("sandbox") => sandbox(&arg(&args, "--listen").context("--listen ADDR")?).await,
        Some("install") => {
            let plan = plan(&args)?;
            let rig = Rig::open(&plan.sandbox).await?;
            for mall in &plan.malls {
                install(&plan.sandbox, mall, &rig.store, &rig.manager).await?;
            }
            rig.close().await;
            Ok(())
        }
        Some("run") => run(plan(&args)?).await,
        _ => bail!(
            "usage: load sandbox --listen ADDR | load install|run --sandbox URL [--mall M] \
             [--malls N] [--tasks T] [--secs S]"
        ),
    }
}

async fn sandbox(listen: &str) -> anyhow::Result<()> {
    let config = SandboxConfig {
        auto_approve: true,
        auto_create_malls: true,
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

/// The app's side: settings, store and token manager, on `DATABASE_URL` or a fresh SQLite file.
struct Rig {
    source: Source,
    store: Arc<dyn Store>,
    manager: Arc<TokenManager>,
    /// The SQLite file's directory, removed at the end.
    scratch: Option<std::path::PathBuf>,
}

impl Rig {
    async fn open(sandbox: &str) -> anyhow::Result<Self> {
        let app_defaults = AppConfig::default();
        let mut pairs = vec![
            ("CAFE24_CLIENT_ID", app_defaults.client_id.clone()),
            (
                "CAFE24_CLIENT_SECRET",
                app_defaults.client_secret.expose_secret().to_owned(),
            ),
            ("CAFE24_REDIRECT_URI", REDIRECT.into()),
            ("CAFE24_SCOPES", SCOPES.into()),
            ("CAFE24_BASE_URL", format!("{sandbox}/malls/{{mall_id}}")),
        ];
        let mut scratch = None;
        match std::env::var("DATABASE_URL") {
            Ok(url) => {
                pairs.push(("DATABASE_URL", url));
                pairs.push((
                    "TOKEN_ENCRYPTION_KEYS",
                    std::env::var("TOKEN_ENCRYPTION_KEYS")
                        .context("TOKEN_ENCRYPTION_KEYS (shared by the processes)")?,
                ));
            }
            Err(_) => {
                let dir = std::env::temp_dir().join(format!("cafe24-load-{}", std::process::id()));
                std::fs::create_dir_all(&dir)?;
                pairs.push((
                    "CAFE24_SQLITE_PATH",
                    dir.join("load.sqlite3").display().to_string(),
                ));
                pairs.push(("TOKEN_ENCRYPTION_KEYS", generate_key_entry("k1")));
                scratch = Some(dir);
            }
        }
        let source = Source::from_pairs(pairs);
        let app = AppSettings::load(&source)?;
        let tokens = TokenSettings::load(&source)?;
        let store = cafe24_store::connect(&DatabaseSettings::load(&source)?).await?;
        store.migrate().await?;
        let oauth = OAuthClient::new(Arc::new(app), tokens.http_timeout)?;
        let manager = Arc::new(TokenManager::new(
            store.clone(),
            oauth,
            tokens,
            Arc::new(SystemClock),
        ));
        Ok(Self {
            source,
            store,
            manager,
            scratch,
        })
    }

    async fn close(self) {
        self.store.close().await;
        if let Some(dir) = self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

async fn run(plan: Plan) -> anyhow::Result<()> {
    let rig = Rig::open(&plan.sandbox).await?;
    if rig.scratch.is_some() {
        for mall in &plan.malls {
            install(&plan.sandbox, mall, &rig.store, &rig.manager).await?;
        }
    }
    let app = AppSettings::load(&rig.source)?;
    let client = Client::new(
        rig.manager.clone(),
        &app,
        ClientSettings::load(&rig.source)?,
    )?;
    let started = Instant::now();
    let end = tokio::time::Instant::now() + Duration::from_secs(plan.secs);
    let mut workers = Vec::new();
    for mall in &plan.malls {
        for _ in 0..plan.tasks {
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
                (shop.mall_id().as_str().to_owned(), ok, failed)
            }));
        }
    }
    let (mut ok, mut failed) = (0u64, 0u64);
    let mut per_mall = BTreeMap::<String, u64>::new();
    for w in workers {
        let (mall, o, f) = w.await?;
        ok += o;
        failed += f;
        *per_mall.entry(mall).or_default() += o;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let m = client.metrics();
    println!(
        "{}",
        serde_json::json!({
            "malls": plan.malls.len(),
            "tasks_per_mall": plan.tasks,
            "secs": (elapsed * 10.0).round() / 10.0,
            "calls_ok": ok,
            "calls_failed": failed,
            "attempts_200": m.attempts("200"),
            "attempts_429": m.attempts("429"),
            "paced_shared": m.paced("shared"),
            "paced_fallback": m.paced("fallback"),
            "calls_per_sec": (ok as f64 / elapsed * 100.0).round() / 100.0,
            "per_mall": per_mall,
        })
    );
    rig.close().await;
    Ok(())
}

/// Installs `mall` through the sandbox's auto-approved consent and the exchange queue.
async fn install(
    sandbox: &str,
    mall: &MallId,
    store: &Arc<dyn Store>,
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
            state: &format!("load-{}-{}", std::process::id(), mall.as_str()),
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
