//! Load generator for `bench/sandbox/run.sh`: starts a sandbox in-process on loopback and
//! measures, with the same client and concurrency, three endpoints of the same server stack:
//!
//! 1. `GET /_sandbox/health` — the peer: what this machine's HTTP stack can do at all;
//! 2. `POST /oauth/token` with `grant_type=refresh_token` — one rotation chain per mall;
//! 3. `GET /api/v2/admin/products` — bearer check, bucket, seeded catalog, JSON.
//!
//! Every phase is bounded by time and by count. At the end the sandbox's own counters are
//! checked against the client's: refresh grants must match exactly, with zero rejections.
//!
//! Usage: `loadgen [--secs N] [--concurrency N] [--max N]`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use cafe24_sandbox::{start, SandboxConfig};
use serde_json::Value;

struct Opts {
    /// Serve for this many seconds with one logged-in mall, for external tools (wrk, curl).
    serve: Option<u64>,
    secs: u64,
    concurrency: usize,
    max: u64,
}

fn opts() -> anyhow::Result<Opts> {
    let mut o = Opts {
        serve: None,
        secs: 5,
        concurrency: 32,
        max: 500_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().context("flag needs a value")?;
        match a.as_str() {
            "--secs" => o.secs = v.parse()?,
            "--concurrency" => o.concurrency = v.parse()?,
            "--max" => o.max = v.parse()?,
            "--serve" => o.serve = Some(v.parse()?),
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    Ok(o)
}

const REDIRECT: &str = "http://127.0.0.1:8080/oauth/callback";

/// One worker's session on its own mall.
struct Session {
    base: String,
    refresh_token: String,
    access_token: String,
}

async fn login(http: &reqwest::Client, base: &str, basic: &str) -> anyhow::Result<Session> {
    let redirect: String = form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect();
    let url = format!(
        "{base}/api/v2/oauth/authorize?response_type=code&client_id=sandbox-client-id&state=b&redirect_uri={redirect}&scope=mall.read_product"
    );
    let resp = http.get(url).send().await?;
    let loc = resp
        .headers()
        .get("location")
        .context("no redirect")?
        .to_str()?;
    let code = url::Url::parse(loc)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .context("no code")?;
    let body: Value = http
        .post(format!("{base}/api/v2/oauth/token"))
        .header("authorization", basic)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await?
        .json()
        .await?;
    Ok(Session {
        base: base.to_string(),
        refresh_token: body["refresh_token"]
            .as_str()
            .context("no refresh token")?
            .to_string(),
        access_token: body["access_token"]
            .as_str()
            .context("no access token")?
            .to_string(),
    })
}

/// Reads the whole body (so the connection is reused) and reports success.
async fn consumed(resp: reqwest::Result<reqwest::Response>) -> bool {
    match resp {
        Ok(r) => {
            let ok = r.status().is_success();
            r.bytes().await.is_ok() && ok
        }
        Err(_) => false,
    }
}

#[derive(Clone, Copy)]
enum Phase {
    Health,
    Refresh,
    Products,
}

struct Outcome {
    ok: u64,
    errors: u64,
    rps: f64,
}

async fn run_phase(
    phase: Phase,
    http: &reqwest::Client,
    sessions: Vec<Session>,
    health_url: &str,
    basic: &str,
    o: &Opts,
) -> (Outcome, Vec<Session>) {
    let deadline = Instant::now() + Duration::from_secs(o.secs);
    let issued = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for mut s in sessions {
        let (http, issued, ok, errors) = (http.clone(), issued.clone(), ok.clone(), errors.clone());
        let (health_url, basic, max) = (health_url.to_string(), basic.to_string(), o.max);
        set.spawn(async move {
            while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < max {
                let good = match phase {
                    Phase::Health => http
                        .get(&health_url)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success()),
                    Phase::Refresh => {
                        let resp = http
                            .post(format!("{}/api/v2/oauth/token", s.base))
                            .header("authorization", &basic)
                            .form(&[
                                ("grant_type", "refresh_token"),
                                ("refresh_token", s.refresh_token.as_str()),
                            ])
                            .send()
                            .await;
                        match resp {
                            Ok(r) if r.status().is_success() => match r.json::<Value>().await {
                                Ok(v) => match v["refresh_token"].as_str() {
                                    Some(rt) => {
                                        s.refresh_token = rt.to_string();
                                        true
                                    }
                                    None => false,
                                },
                                Err(_) => false,
                            },
                            _ => false,
                        }
                    }
                    Phase::Products => {
                        let resp = http
                            .get(format!("{}/api/v2/admin/products?limit=10", s.base))
                            .bearer_auth(&s.access_token)
                            .send()
                            .await;
                        consumed(resp).await
                    }
                };
                if good { &ok } else { &errors }.fetch_add(1, Ordering::Relaxed);
            }
            s
        });
    }
    let sessions = set.join_all().await;
    let elapsed = started.elapsed().as_secs_f64();
    let ok = ok.load(Ordering::Relaxed);
    let outcome = Outcome {
        ok,
        errors: errors.load(Ordering::Relaxed),
        rps: ok as f64 / elapsed,
    };
    (outcome, sessions)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = opts()?;
    let mut cfg = SandboxConfig {
        auto_approve: true,
        auto_create_malls: true,
        auto_create_products: 200,
        ..SandboxConfig::default()
    };
    // Measure the server, not Cafe24's 2 calls/s.
    cfg.rate_limit.enabled = false;
    let sandbox = start(cfg, "127.0.0.1:0".parse()?).await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(o.concurrency)
        .build()?;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("sandbox-client-id:sandbox-client-secret")
    );
    let mut sessions = Vec::new();
    for i in 0..o.concurrency {
        sessions.push(login(&http, &sandbox.mall_base_url(&format!("bench-{i}")), &basic).await?);
    }
    if let Some(secs) = o.serve {
        let s = &sessions[0];
        println!("products URL: {}/api/v2/admin/products", s.base);
        println!("bearer: {}", s.access_token);
        tokio::time::sleep(Duration::from_secs(secs)).await;
        return Ok(());
    }
    let health = sandbox.url("/_sandbox/health");
    println!(
        "sandbox load test: {} workers, {} s per phase (max {} requests), loopback, one process",
        o.concurrency, o.secs, o.max
    );

    let (peer, sessions) = run_phase(Phase::Health, &http, sessions, &health, &basic, &o).await;
    sandbox.reset_stats();
    let (token, sessions) = run_phase(Phase::Refresh, &http, sessions, &health, &basic, &o).await;
    let (_, totals) = sandbox.all_stats();
    let (products, _) = run_phase(Phase::Products, &http, sessions, &health, &basic, &o).await;

    let line = |name: &str, r: &Outcome| {
        println!(
            "{name:<40} {:>9.0} req/s  ({} ok, {} errors)  {:.2} of peer",
            r.rps,
            r.ok,
            r.errors,
            r.rps / peer.rps.max(1.0)
        );
    };
    line("peer: GET /_sandbox/health", &peer);
    line("token: POST /oauth/token (refresh grant)", &token);
    line("admin: GET /api/v2/admin/products", &products);
    println!(
        "sandbox counters during the token phase: refresh_grants={} refresh_tokens_rejected={} (client saw {} ok)",
        totals.refresh_grants, totals.refresh_tokens_rejected, token.ok
    );
    if totals.refresh_grants != token.ok || totals.refresh_tokens_rejected != 0 {
        anyhow::bail!("sandbox counters disagree with the client");
    }
    sandbox.shutdown().await;
    Ok(())
}
