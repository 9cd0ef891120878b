//! The lifecycle across OS processes, on PostgreSQL: several processes with many tasks each ask
//! for tokens of the same malls across rotations; a worker is killed mid-refresh and restarted.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cafe24_core::settings::{DatabaseKind, Source};
use cafe24_core::MallId;
use cafe24_sandbox::{FaultSpec, RunningSandbox, SandboxConfig};
use cafe24_store::{MallStatus, Store};
use cafe24_testrig::REDIRECT;
use cafe24_tokens::TokenManager;

const CHILD: &str = "CAFE24_TEST_HAMMER_CHILD";
const SCOPES: &str = "mall.read_product";

fn manager_from(env: &[(String, String)], store: Arc<dyn Store>) -> Arc<TokenManager> {
    Arc::new(cafe24_testrig::manager(
        &Source::from_pairs(env.iter().cloned()),
        store,
    ))
}

/// A sandbox, a fresh PostgreSQL database, and the settings every process shares.
struct World {
    sandbox: RunningSandbox,
    env: Vec<(String, String)>,
    store: Arc<dyn Store>,
    manager: Arc<TokenManager>,
}

async fn world(tune: impl FnOnce(&mut SandboxConfig), extra: &[(&str, &str)]) -> World {
    let mut config = cafe24_testrig::sandbox_config(REDIRECT);
    tune(&mut config);
    let sandbox = cafe24_testrig::start(config).await;
    let db = cafe24_testkit::fresh_postgres().await;
    let DatabaseKind::PostgresUrl(url) = &db.kind else {
        panic!("a URL")
    };
    let mut env = cafe24_testrig::runtime_env(&sandbox, REDIRECT, SCOPES);
    env.push(("DATABASE_URL".into(), url.expose_secret().to_owned()));
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let store = cafe24_store::connect(&db).await.expect("connect");
    store.migrate().await.expect("migrate");
    let manager = manager_from(&env, store.clone());
    World {
        sandbox,
        env,
        store,
        manager,
    }
}

impl World {
    async fn install(&self, mall: &MallId) {
        cafe24_testrig::install(&self.sandbox, &self.manager, mall, REDIRECT, SCOPES).await;
    }
}

fn malls(n: usize) -> Vec<MallId> {
    (1..=n)
        .map(|i| MallId::parse(&format!("shop{i}")).expect("mall"))
        .collect()
}

/// Run by the parent test in child processes: many tasks asking for tokens until the deadline.
/// Prints one `TOKEN <mall> <token>` line per distinct token it was given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a child process of several_processes_refresh_each_rotation_exactly_once"]
async fn hammer_child() {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let seconds: u64 = std::env::var(CHILD)
        .expect("child marker")
        .parse()
        .expect("seconds");
    let source = Source::from_pairs(env.iter().cloned());
    let db = cafe24_core::settings::DatabaseSettings::load(&source).expect("db");
    let store = cafe24_store::connect(&db).await.expect("connect");
    let manager = manager_from(&env, store);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..8 {
        let manager = manager.clone();
        tasks.spawn(async move {
            let mut seen = BTreeSet::new();
            let malls = malls(3);
            let mut i = task;
            while Instant::now() < deadline {
                let mall = &malls[i % malls.len()];
                let token = manager.access_token(mall).await.expect("a token, always");
                seen.insert((mall.to_string(), token.expose_secret().to_owned()));
                i += 1;
                tokio::time::sleep(Duration::from_millis(3 + (i as u64 % 7))).await;
            }
            seen
        });
    }
    let mut all = BTreeSet::new();
    while let Some(done) = tasks.join_next().await {
        all.extend(done.expect("task"));
    }
    for (mall, token) in all {
        println!("TOKEN {mall} {token}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_processes_refresh_each_rotation_exactly_once() {
    // Access tokens live 4 s and are refreshed 2 s before expiry: a rotation every ~2 s.
    let w = world(
        |c| c.access_token_ttl_secs = 4,
        &[("CAFE24_REFRESH_MARGIN_SECS", "2")],
    )
    .await;
    let malls = malls(3);
    let mut observed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for mall in &malls {
        w.install(mall).await;
        // The installed token, read as stored: asking the manager could already refresh it.
        let row = w.store.tokens(mall).await.expect("read").expect("row");
        let keys = w
            .env
            .iter()
            .find(|(k, _)| k == "TOKEN_ENCRYPTION_KEYS")
            .map(|(_, v)| v.clone())
            .expect("keys");
        let sealer = cafe24_tokens::Sealer::new(
            cafe24_core::settings::EncryptionKeys::parse(&keys).expect("keys"),
        );
        let first = sealer
            .open(
                mall,
                cafe24_tokens::TokenKind::Access,
                &row.key_id,
                &row.access_ciphertext,
            )
            .expect("open");
        observed.entry(mall.to_string()).or_default().insert(first);
    }
    let exe = std::env::current_exe().expect("test binary");
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "hammer_child",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .envs(w.env.iter().cloned())
                .env(CHILD, "9")
                .env("RUST_LOG", "warn")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn child")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("child");
        assert!(
            out.status.success(),
            "a child failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // libtest may print "test hammer_child ... " on the same line before the first one.
            if let Some(rest) = line.find("TOKEN ").map(|at| &line[at + "TOKEN ".len()..]) {
                let (mall, token) = rest.split_once(' ').expect("token line");
                observed
                    .entry(mall.to_owned())
                    .or_default()
                    .insert(token.to_owned());
            }
        }
    }
    for mall in &malls {
        let stats = w.sandbox.stats(mall.as_str()).expect("stats");
        let distinct = observed[mall.as_str()].len() as u64;
        assert!(
            stats.refresh_grants >= 3,
            "{mall}: rotations happened ({})",
            stats.refresh_grants
        );
        assert_eq!(
            stats.refresh_tokens_rejected, 0,
            "{mall}: a refresh used a dead refresh token"
        );
        // Every refresh produced exactly one token that somebody used: one refresh per rotation.
        assert_eq!(
            distinct,
            stats.refresh_grants + 1,
            "{mall}: tokens seen vs refreshes; stats {stats:?}; seen {:?}",
            observed[mall.as_str()]
                .iter()
                .map(|t| t.chars().take(6).collect::<String>())
                .collect::<Vec<_>>()
        );
        let row = w.store.tokens(mall).await.expect("read").expect("row");
        assert_eq!(row.status, MallStatus::Active, "{mall}");
    }
    for mall in &malls {
        // Never silently broken: the stored refresh token still refreshes.
        w.manager
            .force_refresh(mall)
            .await
            .unwrap_or_else(|e| panic!("{mall}: the stored grant is dead: {e}"));
    }
    let events = w.store.events(0, 100).await.expect("events");
    assert!(events.iter().all(|e| e.kind != "needs_reauth"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_refresh_leaves_every_mall_flagged_never_silently_broken() {
    let w = world(
        |_| {},
        &[
            ("CAFE24_KEEPALIVE_CONCURRENCY", "6"),
            ("CAFE24_KEEPALIVE_RATE", "1000"),
            ("DATABASE_LOCK_CONNECTIONS", "6"),
            // The journal's fence is the token call's timeout plus 2 s.
            ("CAFE24_HTTP_TIMEOUT_SECS", "3"),
        ],
    )
    .await;
    let malls = malls(6);
    for mall in &malls {
        w.install(mall).await;
    }
    // Refreshes now take 1.5 s at Cafe24; the process is killed while they are in flight.
    w.sandbox
        .set_fault(
            "token",
            FaultSpec {
                latency_ms: 1500,
                ..Default::default()
            },
        )
        .expect("fault");
    let run = || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cafe24-oauth"));
        cmd.args(["refresh", "--all"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(w.env.iter().cloned())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    };
    let mut victim = run().spawn().expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    // Wait until every mall's refresh is journaled as in flight, then kill.
    loop {
        let in_flight = w
            .store
            .all_tokens()
            .await
            .expect("rows")
            .iter()
            .filter(|r| r.refresh_started_at.is_some())
            .count();
        if in_flight == malls.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "refreshes never started ({in_flight} in flight)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Command::new("kill")
        .args(["-KILL", &victim.id().to_string()])
        .status()
        .expect("kill");
    assert!(!victim.wait().expect("wait").success());
    // Cafe24 finishes what it was sent: the killed process's refreshes rotate every grant, and
    // the rotated pairs died with the process.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    w.sandbox.clear_faults();
    let rotated: Vec<bool> = malls
        .iter()
        .map(|m| {
            w.sandbox
                .stats(m.as_str())
                .is_some_and(|s| s.refresh_grants == 1)
        })
        .collect();
    assert!(
        rotated.iter().all(|r| *r),
        "every refresh in flight was rotated"
    );
    // The restart finds the journals: it waits out the fence instead of racing, then finds out.
    let restarted = Instant::now();
    let _ = run().status().expect("restart");
    assert!(
        restarted.elapsed() >= Duration::from_secs(2),
        "the journal fenced the restart"
    );

    for mall in &malls {
        let row = w.store.tokens(mall).await.expect("read").expect("row");
        let stats = w.sandbox.stats(mall.as_str()).expect("stats");
        // Never silently broken: the mall whose rotation died with the process is flagged,
        // after sending the dead token once to find out.
        assert_eq!(row.status, MallStatus::NeedsReauth, "{mall}: {stats:?}");
        assert_eq!(stats.refresh_tokens_rejected, 1, "{mall}");
    }
}
