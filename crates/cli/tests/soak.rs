//! The fault soak: several `serve` processes on one PostgreSQL database, many clients calling
//! the Admin API through the proxy for several malls with short-lived tokens, and merchants
//! installing meanwhile — while callers are cancelled at random, token responses are delayed
//! past the request timeout, rotated responses are lost, and database backends are killed.
//!
//! Afterwards, for every mall: its stored grant still refreshes, unless the sandbox itself lost
//! a rotated response for it — exactly those malls are `needs_reauth`; Cafe24 never refused a
//! refresh token anywhere else; and no code of a genuine install expired unexchanged.
//!
//! Bounded and loopback only. CI size by default; larger with `CAFE24_SOAK_SECS`,
//! `CAFE24_SOAK_PROCESSES` and `CAFE24_SOAK_MALLS`, e.g.
//! `CAFE24_SOAK_SECS=300 CAFE24_SOAK_PROCESSES=4 cargo test -p cafe24-cli --test soak -- --nocapture`.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cafe24_core::settings::{DatabaseKind, Source};
use cafe24_core::MallId;
use cafe24_sandbox::{FaultSpec, RunningSandbox};
use cafe24_store::MallStatus;
use cafe24_testkit::execute;
use cafe24_testrig::REDIRECT;
use rand::{Rng, SeedableRng};

const SCOPES: &str = "mall.read_product";
const ADMIN_TOKEN: &str = "soak-admin-token-0123456789abcdef0123456789";

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A `serve` process; killed if the test panics. Its stderr goes to `log`.
struct Server {
    child: Child,
    base: String,
    log: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn serve(env: &[(String, String)]) -> Server {
    let port = free_port();
    let log = std::env::temp_dir().join(format!("cafe24-soak-serve-{port}.log"));
    let stderr = std::fs::File::create(&log).expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_cafe24-oauth"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().cloned())
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn serve");
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        log,
    }
}

async fn wait_healthy(http: &reqwest::Client, server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if http
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{} never became healthy:\n{}",
        server.base,
        std::fs::read_to_string(&server.log).unwrap_or_default()
    );
}

/// A merchant installs `mall` through one of the servers: /install → consent → callback.
/// Retries while the callback answers 503 (a backend was just killed): nothing was stored.
async fn install(
    http: &reqwest::Client,
    sandbox: &RunningSandbox,
    server: &Server,
    mall: &MallId,
) -> i64 {
    for _ in 0..50 {
        let Ok(r) = http
            .get(format!("{}/install?mall_id={mall}", server.base))
            .send()
            .await
        else {
            continue;
        };
        let Some(authorize) = location(&r) else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let consent = http.get(authorize).send().await.expect("authorize");
        let back = url::Url::parse(&location(&consent).expect("consent redirects")).expect("url");
        let param = |name: &str| {
            back.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
                .expect("param")
        };
        let callback = http
            .get(format!("{}/oauth/callback", server.base))
            .query(&[("code", param("code")), ("state", param("state"))])
            .header("accept", "application/json")
            .send()
            .await;
        match callback {
            Ok(r) if r.status() == 200 => {
                let body: serde_json::Value = r.json().await.expect("json");
                return body["id"].as_i64().expect("id");
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let _ = sandbox;
    panic!("{mall}: the install never went through");
}

fn location(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[derive(Default)]
struct Counts {
    calls: AtomicU64,
    ok: AtomicU64,
    cancelled: AtomicU64,
    errors: AtomicU64,
    kills: AtomicU64,
    lost_faults: AtomicU64,
    delay_faults: AtomicU64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_soak_loses_no_mall() {
    let secs = knob("CAFE24_SOAK_SECS", 20);
    let processes = knob("CAFE24_SOAK_PROCESSES", 3) as usize;
    let initial = knob("CAFE24_SOAK_MALLS", 6) as usize;
    // Access tokens live 6 s and are refreshed 3 s ahead: a rotation every ~3 s per mall.
    let mut config = cafe24_testrig::sandbox_config(REDIRECT);
    config.access_token_ttl_secs = 6;
    config.fault_seed = 20261130;
    let sandbox = cafe24_testrig::start(config).await;
    let db = cafe24_testkit::fresh_postgres().await;
    let DatabaseKind::PostgresUrl(url) = &db.kind else {
        panic!("a URL")
    };
    let mut env = cafe24_testrig::runtime_env(&sandbox, REDIRECT, SCOPES);
    env.extend(
        [
            ("DATABASE_URL", url.expose_secret()),
            ("CAFE24_ADMIN_TOKEN", ADMIN_TOKEN),
            (
                "EXPECTED_STATE_SECRET",
                "soak-state-secret-0123456789abcdef0123456789",
            ),
            ("CAFE24_REFRESH_MARGIN_SECS", "3"),
            // Proxied calls time out after 1 s; token calls after 4 s (the journal's fence: 6 s).
            ("HTTP_REQUEST_TIMEOUT_SECS", "1"),
            ("CAFE24_HTTP_TIMEOUT_SECS", "4"),
            ("DATABASE_MAX_CONNECTIONS", "6"),
            ("DATABASE_ACQUIRE_TIMEOUT_SECS", "2"),
            ("CAFE24_API_DEADLINE_SECS", "3"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let store = cafe24_store::connect(&db).await.expect("connect");
    store.migrate().await.expect("migrate");
    let servers: Vec<Server> = (0..processes).map(|_| serve(&env)).collect();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for s in &servers {
        wait_healthy(&http, s).await;
    }
    let mut malls: Vec<MallId> = (0..initial)
        .map(|i| MallId::parse(&format!("soak{i}")).expect("mall"))
        .collect();
    let mut codes = Vec::new();
    for (i, mall) in malls.iter().enumerate() {
        codes.push(install(&http, &sandbox, &servers[i % servers.len()], mall).await);
    }

    let counts = Arc::new(Counts::default());
    let stop_at = Instant::now() + Duration::from_secs(secs);
    let bases: Arc<Vec<String>> = Arc::new(servers.iter().map(|s| s.base.clone()).collect());
    let shared_malls = Arc::new(std::sync::Mutex::new(malls.clone()));

    // Callers: proxied Admin API calls with random client timeouts (cancelled at random).
    let mut load = tokio::task::JoinSet::new();
    for task in 0..(processes * 8) {
        let (http, counts, bases, malls) = (
            http.clone(),
            counts.clone(),
            bases.clone(),
            shared_malls.clone(),
        );
        load.spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(task as u64);
            while Instant::now() < stop_at {
                let mall = {
                    let malls = malls.lock().expect("malls");
                    malls[rng.gen_range(0..malls.len())].clone()
                };
                let base = &bases[rng.gen_range(0..bases.len())];
                let timeout = Duration::from_millis(rng.gen_range(50..2000));
                counts.calls.fetch_add(1, Ordering::Relaxed);
                let r = http
                    .get(format!(
                        "{base}/internal/malls/{mall}/api/v2/admin/products/count"
                    ))
                    .bearer_auth(ADMIN_TOKEN)
                    .timeout(timeout)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => counts.ok.fetch_add(1, Ordering::Relaxed),
                    Ok(_) => counts.errors.fetch_add(1, Ordering::Relaxed),
                    Err(_) => counts.cancelled.fetch_add(1, Ordering::Relaxed),
                };
                tokio::time::sleep(Duration::from_millis(rng.gen_range(5..60))).await;
            }
        });
    }

    // Chaos: token responses delayed past the request timeout, rotated responses lost, and
    // every runtime backend killed, in turns.
    let chaos = {
        let (counts, malls) = (counts.clone(), shared_malls.clone());
        let (db, faults) = (db.clone(), Faults::new(&sandbox, http.clone()));
        tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(7);
            let mut turn = 0u64;
            while Instant::now() < stop_at {
                tokio::time::sleep(Duration::from_millis(rng.gen_range(400..1200))).await;
                turn += 1;
                match turn % 3 {
                    0 => {
                        execute(
                            &db,
                            // This soak's database only: other tests share the cluster.
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                             WHERE application_name = 'cafe24-oauth' AND pid <> pg_backend_pid()
                               AND datname = current_database()",
                        )
                        .await;
                        counts.kills.fetch_add(1, Ordering::Relaxed);
                    }
                    1 => {
                        let victim = {
                            let malls = malls.lock().expect("malls");
                            malls[rng.gen_range(0..malls.len())].to_string()
                        };
                        faults
                            .set(FaultSpec {
                                mall_id: Some(victim),
                                lose_response_next: 1,
                                ..Default::default()
                            })
                            .await;
                        counts.lost_faults.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        faults
                            .set(FaultSpec {
                                response_delay_ms: rng.gen_range(1100..2500),
                                ..Default::default()
                            })
                            .await;
                        counts.delay_faults.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };

    // Merchants keep installing during the chaos.
    let mut n = initial;
    while Instant::now() < stop_at {
        let mall = MallId::parse(&format!("soak{n}")).expect("mall");
        codes.push(install(&http, &sandbox, &servers[n % servers.len()], &mall).await);
        shared_malls.lock().expect("malls").push(mall.clone());
        malls.push(mall);
        n += 1;
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    while load.join_next().await.is_some() {}
    chaos.await.expect("chaos");
    sandbox.clear_faults();

    // Let the processes finish what they started, then stop them as an orchestrator does.
    for s in &servers {
        let _ = Command::new("kill")
            .args(["-TERM", &s.child.id().to_string()])
            .status();
    }
    for mut s in servers {
        let stopped = tokio::task::spawn_blocking(move || {
            let status = s.child.wait();
            (s, status)
        })
        .await
        .expect("wait");
        assert!(stopped.1.is_ok_and(|st| st.success()), "serve exits 0");
    }

    // Every mall: its stored grant refreshes, or it is flagged — and flagged exactly when the
    // sandbox lost a rotated response for it.
    let source = Source::from_pairs(env.iter().cloned());
    let manager = Arc::new(cafe24_testrig::manager(&source, store.clone()));
    let mut flagged = 0;
    let mut rotations = 0;
    let mut lost_total = 0;
    let mut report = BTreeMap::new();
    for mall in &malls {
        let result = manager
            .keep_alive(mall, Duration::from_secs(400 * 86_400))
            .await;
        let stats = sandbox.stats(mall.as_str()).unwrap_or_default();
        let row = store.tokens(mall).await.expect("read").expect("installed");
        let lost = stats.responses_lost > 0;
        rotations += stats.refresh_grants;
        lost_total += stats.responses_lost;
        report.insert(
            mall.to_string(),
            (
                stats.refresh_grants,
                stats.responses_lost,
                stats.refresh_tokens_rejected,
            ),
        );
        if lost {
            flagged += 1;
            assert_eq!(
                row.status,
                MallStatus::NeedsReauth,
                "{mall}: its rotated response was lost, so it must be flagged ({result:?})"
            );
            // Sent at least once to find out (again if the flagging write met a killed backend).
            assert!(stats.refresh_tokens_rejected >= 1, "{mall}: {stats:?}");
        } else {
            assert!(
                matches!(result, Ok(true)),
                "{mall}: the stored grant still refreshes: {result:?}; {stats:?}"
            );
            assert_eq!(row.status, MallStatus::Active);
            assert_eq!(
                stats.refresh_tokens_rejected, 0,
                "{mall}: a refresh token was sent after it had been rotated; {stats:?}"
            );
        }
    }
    let expired = code_count(&db, "expired").await;
    let exchanged = code_count(&db, "exchanged").await;
    assert_eq!(expired, 0, "a genuine install's code expired unexchanged");
    assert_eq!(
        exchanged,
        codes.len() as i64,
        "every install's code was exchanged"
    );
    println!(
        "soak: {processes} processes, {secs} s, {} malls ({} installed during the chaos); \
         {} proxied calls ({} ok, {} cancelled by their client, {} errors); {rotations} rotations; \
         {} backend kills, {} delay faults, {} lose-response faults ({lost_total} responses lost); \
         {flagged} malls needs_reauth, exactly those; codes {exchanged} exchanged, {expired} expired",
        malls.len(),
        malls.len() - initial,
        counts.calls.load(Ordering::Relaxed),
        counts.ok.load(Ordering::Relaxed),
        counts.cancelled.load(Ordering::Relaxed),
        counts.errors.load(Ordering::Relaxed),
        counts.kills.load(Ordering::Relaxed),
        counts.delay_faults.load(Ordering::Relaxed),
        counts.lost_faults.load(Ordering::Relaxed),
    );
    println!("soak per mall (rotations, responses lost, refresh tokens refused): {report:?}");
    assert!(rotations > malls.len() as u64, "the soak rotated tokens");
}

/// The sandbox's fault on the token endpoint, set through its control API (from any task).
struct Faults {
    url: String,
    http: reqwest::Client,
}

impl Faults {
    fn new(sandbox: &RunningSandbox, http: reqwest::Client) -> Self {
        Self {
            url: sandbox.url("/_sandbox/faults/token"),
            http,
        }
    }

    async fn set(&self, spec: FaultSpec) {
        let r = self.http.put(&self.url).json(&spec).send().await;
        assert!(r.is_ok_and(|r| r.status().is_success()), "fault set");
    }
}

async fn code_count(db: &cafe24_core::settings::DatabaseSettings, status: &str) -> i64 {
    let DatabaseKind::PostgresUrl(url) = &db.kind else {
        panic!("a URL")
    };
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url.expose_secret())
        .await
        .expect("connect");
    sqlx::query_scalar("SELECT count(*) FROM cafe24.authorization_codes WHERE status = $1")
        .bind(status)
        .fetch_one(&mut conn)
        .await
        .expect("count")
}
