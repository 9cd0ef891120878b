//! The Lambda benchmark (run by `bench/lambda.sh`): the real `bootstrap` and the spec's Python
//! handler, each started by the same local Runtime API harness as the tests and fed the same
//! API Gateway events. Measures cold start (process start → first response), warm invocation
//! latency (p50/p99) and peak memory (VmHWM), and prints the ratios.
//!
//! Then the serverless deployment's prompt exchange: callbacks through the callback function
//! while the exchange function runs as EventBridge starts it (two invocations a minute apart,
//! overlapping, compressed here to a few seconds), callback → tokens stored p50/p99, against a
//! bare token round trip to the same (local) Cafe24 measured in the same run.
//!
//! Usage: lambda_bench BOOTSTRAP PYTHON RUNTIME_PY [COLD_RUNS] [WARM_INVOCATIONS] [CODES]
//! The database comes from the libpq variables (PGHOST, PGPORT, PGUSER, PGDATABASE).

#[path = "../tests/support/events.rs"]
mod events;
#[path = "../tests/support/runtime_api.rs"]
mod runtime_api;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cafe24_core::secret::StateKey;
use cafe24_core::settings::{DatabaseSettings, Source};
use cafe24_core::{MallId, StateSigner};
use runtime_api::{FunctionProcess, RuntimeApi};

const STATE_SECRET: &str = "bench-state-secret-0123456789abcdef0123456789";

struct Peer {
    name: &'static str,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
}

#[derive(Default)]
struct Figures {
    cold: Vec<Duration>,
    warm: Vec<Duration>,
    peak_kib: u64,
}

struct Events {
    signer: StateSigner,
    mall: MallId,
    n: u64,
}

impl Events {
    /// A fresh callback event: a new code and a new signed state (a state is single use), for a
    /// new mall.
    fn next(&mut self) -> serde_json::Value {
        self.n += 1;
        // A mall per install: one mall may have only a few codes waiting (the pending cap).
        let mall = MallId::parse(&format!("{}{}", self.mall.as_str(), self.n)).expect("mall id");
        let state = self.signer.issue(&mall, chrono::Utc::now());
        let code = format!("benchcode{:08}", self.n);
        events::rest_get(
            "/oauth/callback",
            &[("code", &code), ("state", state.as_str())],
        )
    }
}

async fn invoke_ok(api: &RuntimeApi, event: serde_json::Value) -> Duration {
    let started = Instant::now();
    let response = api.invoke(event).await.response();
    let elapsed = started.elapsed();
    let (status, body) = events::status_and_body(&response);
    assert_eq!(status, 200, "unexpected answer: {body}");
    elapsed
}

async fn cold_start(peer: &Peer, events: &mut Events) -> Duration {
    let api = RuntimeApi::start().await;
    let args: Vec<&str> = peer.args.iter().map(String::as_str).collect();
    let event = events.next();
    let started = Instant::now();
    let _process = FunctionProcess::spawn(&peer.program, &args, &api, &peer.env);
    let response = api.invoke(event).await.response();
    let elapsed = started.elapsed();
    assert_eq!(events::status_and_body(&response).0, 200, "{response}");
    elapsed
}

async fn warm(peer: &Peer, events: &mut Events, invocations: usize, figures: &mut Figures) {
    let api = RuntimeApi::start().await;
    let args: Vec<&str> = peer.args.iter().map(String::as_str).collect();
    let process = FunctionProcess::spawn(&peer.program, &args, &api, &peer.env);
    for _ in 0..invocations.min(200) {
        invoke_ok(&api, events.next()).await; // warm-up
    }
    for _ in 0..invocations {
        figures.warm.push(invoke_ok(&api, events.next()).await);
    }
    figures.peak_kib = process.peak_rss_kib().unwrap_or(0);
    if std::env::var_os("LAMBDA_BENCH_RUST_LOG").is_some() {
        let log = process.stderr();
        let tail: Vec<&str> = log.lines().rev().take(6).collect();
        eprintln!("{}: last log lines:\n{}", peer.name, tail.join("\n"));
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, bootstrap, python, runtime_py, rest @ ..] = args.as_slice() else {
        eprintln!("usage: lambda_bench BOOTSTRAP PYTHON RUNTIME_PY [COLD_RUNS] [WARM_INVOCATIONS] [CODES]");
        std::process::exit(2);
    };
    let cold_runs: usize = rest.first().and_then(|s| s.parse().ok()).unwrap_or(10);
    let invocations: usize = rest.get(1).and_then(|s| s.parse().ok()).unwrap_or(2000);

    let source = Source::load(None).expect("environment");
    let database = DatabaseSettings::load(&source).expect("PG* variables");
    let store = cafe24_store::connect(&database).await.expect("database");
    store.migrate().await.expect("migrate");
    store.close().await;

    let pg: Vec<(&'static str, String)> = ["PGHOST", "PGPORT", "PGUSER", "PGDATABASE"]
        .into_iter()
        .map(|k| (k, source.get(k).unwrap_or_default().to_owned()))
        .collect();
    let mut rust_env = pg.clone();
    rust_env.extend([
        ("CAFE24_CLIENT_ID", "bench".to_owned()),
        ("CAFE24_CLIENT_SECRET", "bench-secret".to_owned()),
        (
            "CAFE24_REDIRECT_URI",
            "https://app.example.com/oauth/callback".to_owned(),
        ),
        ("CAFE24_SCOPES", "mall.read_product".to_owned()),
        ("EXPECTED_STATE_SECRET", STATE_SECRET.to_owned()),
        (
            "RUST_LOG",
            std::env::var("LAMBDA_BENCH_RUST_LOG").unwrap_or_else(|_| "warn".into()),
        ),
    ]);
    let mut python_env = pg;
    python_env.push(("_HANDLER", "handler.handler".to_owned()));
    // Lambda's task directory is read-only: no bytecode cache is written for the handler.
    python_env.push(("PYTHONDONTWRITEBYTECODE", "1".to_owned()));
    let peers = [
        Peer {
            name: "rust (cafe24-lambda bootstrap)",
            program: PathBuf::from(bootstrap),
            args: vec![],
            env: rust_env,
        },
        Peer {
            name: "python (psycopg 3, spec handler)",
            program: PathBuf::from(python),
            args: vec![runtime_py.clone()],
            env: python_env,
        },
    ];

    let mut events = Events {
        signer: StateSigner::new(StateKey::new(STATE_SECRET), Duration::from_secs(3600)),
        mall: MallId::parse("benchmall").expect("mall id"),
        n: 0,
    };
    let mut figures: [Figures; 2] = Default::default();
    // Cold starts alternate between the two, so neither gets a warmer page cache.
    for _ in 0..cold_runs {
        for (peer, f) in peers.iter().zip(figures.iter_mut()) {
            f.cold.push(cold_start(peer, &mut events).await);
        }
    }
    for (peer, f) in peers.iter().zip(figures.iter_mut()) {
        warm(peer, &mut events, invocations, f).await;
    }

    println!("cold runs: {cold_runs}, warm invocations: {invocations} (after warm-up), loopback, one PostgreSQL");
    println!(
        "{:<34} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "function", "cold p50 ms", "cold max ms", "warm p50 ms", "warm p99 ms", "peak RSS MiB"
    );
    let mut summary = Vec::new();
    for (peer, f) in peers.iter().zip(figures.iter_mut()) {
        f.cold.sort();
        f.warm.sort();
        let row = (
            percentile(&f.cold, 50.0),
            f.cold.last().copied().unwrap_or_default(),
            percentile(&f.warm, 50.0),
            percentile(&f.warm, 99.0),
            f.peak_kib as f64 / 1024.0,
        );
        println!(
            "{:<34} {:>12.2} {:>12.2} {:>12.3} {:>12.3} {:>12.1}",
            peer.name,
            ms(row.0),
            ms(row.1),
            ms(row.2),
            ms(row.3),
            row.4
        );
        summary.push(row);
    }
    let (r, p) = (summary[0], summary[1]);
    println!(
        "RESULT cold_start_speedup={:.1}x warm_p50_ratio={:.2}x warm_p99_ratio={:.2}x peak_memory_ratio={:.2}x (python / rust)",
        ms(p.0) / ms(r.0),
        ms(p.2) / ms(r.2),
        ms(p.3) / ms(r.3),
        p.4 / r.4
    );

    let codes: usize = rest.get(2).and_then(|s| s.parse().ok()).unwrap_or(100);
    prompt_exchange(&peers[0], &database, codes).await;
}

/// Callback → tokens stored on the Lambda path, with the exchange function invoked as the
/// scheduler would: one invocation listening, a second one overlapping it (started 3 s later
/// instead of a minute: the timing is compressed, the mechanism is the one deployed).
async fn prompt_exchange(rust: &Peer, database: &DatabaseSettings, codes: usize) {
    let mut config = cafe24_sandbox::SandboxConfig {
        auto_approve: true,
        auto_create_malls: true,
        ..Default::default()
    };
    config.apps = vec![cafe24_sandbox::AppConfig {
        redirect_uris: vec!["https://app.example.com/oauth/callback".into()],
        ..Default::default()
    }];
    let sandbox = cafe24_sandbox::start(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sandbox");
    let app = cafe24_sandbox::AppConfig::default();
    let mut env: Vec<(&'static str, String)> = rust
        .env
        .iter()
        .filter(|(k, _)| !matches!(*k, "CAFE24_CLIENT_ID" | "CAFE24_CLIENT_SECRET"))
        .cloned()
        .collect();
    env.extend([
        ("CAFE24_CLIENT_ID", app.client_id.clone()),
        (
            "CAFE24_CLIENT_SECRET",
            app.client_secret.expose_secret().to_owned(),
        ),
        ("CAFE24_BASE_URL", sandbox.base_url_template()),
        (
            "TOKEN_ENCRYPTION_KEYS",
            cafe24_core::settings::generate_key_entry("k1"),
        ),
    ]);
    let callback_api = RuntimeApi::start().await;
    let _callback = FunctionProcess::spawn(&rust.program, &[], &callback_api, &env);
    let mut exchange_env = env.clone();
    exchange_env.retain(|(k, _)| *k != "CAFE24_LAMBDA_HANDLER");
    exchange_env.push(("CAFE24_LAMBDA_HANDLER", "exchange".to_owned()));
    exchange_env.push(("CAFE24_LAMBDA_EXCHANGE_LISTEN_SECS", "20".to_owned()));
    let (first_api, second_api) = (RuntimeApi::start().await, RuntimeApi::start().await);
    let _first = FunctionProcess::spawn(&rust.program, &[], &first_api, &exchange_env);
    let _second = FunctionProcess::spawn(&rust.program, &[], &second_api, &exchange_env);

    // The floor: a bare token round trip (consent → code → POST /oauth/token) to the sandbox.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut floor = Vec::new();
    for i in 0..codes.min(50) {
        let mall = format!("floormall{i}");
        let code = consent_code(&http, &sandbox, &mall, "floor").await;
        let started = Instant::now();
        let answer = http
            .post(sandbox.mall_base_url(&mall) + "/api/v2/oauth/token")
            .basic_auth(&app.client_id, Some(app.client_secret.expose_secret()))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", "https://app.example.com/oauth/callback"),
            ])
            .send()
            .await
            .expect("token");
        assert_eq!(answer.status(), 200);
        floor.push(started.elapsed());
    }

    let signer = StateSigner::new(StateKey::new(STATE_SECRET), Duration::from_secs(3600));
    let first = first_api.invoke(events::scheduled());
    let second = async {
        // EventBridge's next tick, while the first invocation still listens.
        tokio::time::sleep(Duration::from_secs(3)).await;
        second_api.invoke(events::scheduled()).await
    };
    let callbacks = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        for i in 0..codes {
            let mall = MallId::parse(&format!("lambdamall{i}")).expect("mall");
            let state = signer.issue(&mall, chrono::Utc::now());
            let code = consent_code(&http, &sandbox, mall.as_str(), state.as_str()).await;
            let event = events::rest_get(
                "/oauth/callback",
                &[("code", &code), ("state", state.as_str())],
            );
            invoke_ok(&callback_api, event).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let (a, b, ()) = tokio::join!(first, second, callbacks);
    let exchanged = a.response()["exchanged"].as_u64().unwrap_or(0)
        + b.response()["exchanged"].as_u64().unwrap_or(0);
    let url = database_url(database);
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("connect");
    let mut latencies: Vec<f64> = sqlx::query_scalar(
        "SELECT (EXTRACT(EPOCH FROM processed_at - created_at) * 1000)::float8 FROM cafe24.authorization_codes
         WHERE status = 'exchanged' AND mall_id LIKE 'lambdamall%'",
    )
    .fetch_all(&mut conn)
    .await
    .expect("latencies");
    latencies.sort_by(f64::total_cmp);
    floor.sort();
    let pick = |p: f64| {
        latencies
            [((p / 100.0 * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    println!(
        "prompt exchange on the Lambda path: {codes} callbacks, {exchanged} exchanged by two overlapping invocations"
    );
    println!(
        "callback → tokens stored: p50 {:.1} ms, p99 {:.1} ms; bare token round trip: p50 {:.2} ms, p99 {:.2} ms",
        pick(50.0),
        pick(99.0),
        ms(percentile(&floor, 50.0)),
        ms(percentile(&floor, 99.0))
    );
    println!(
        "RESULT lambda_exchange_p99_ms={:.1} floor_p99_ms={:.2} ratio={:.1}x (a pass per one-minute schedule: ≈30 000 ms mean)",
        pick(99.0),
        ms(percentile(&floor, 99.0)),
        pick(99.0) / ms(percentile(&floor, 99.0)).max(0.001)
    );
}

/// A code from the sandbox's auto-approved consent.
async fn consent_code(
    http: &reqwest::Client,
    sandbox: &cafe24_sandbox::RunningSandbox,
    mall: &str,
    state: &str,
) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &cafe24_sandbox::AppConfig::default().client_id)
        .append_pair("state", state)
        .append_pair("redirect_uri", "https://app.example.com/oauth/callback")
        .append_pair("scope", "mall.read_product")
        .finish();
    let response = http
        .get(format!(
            "{}/api/v2/oauth/authorize?{query}",
            sandbox.mall_base_url(mall)
        ))
        .send()
        .await
        .expect("authorize");
    let location = response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    url::Url::parse(&location)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code")
}

/// A postgres:// URL for the libpq settings the benchmark runs with.
fn database_url(database: &DatabaseSettings) -> String {
    match &database.kind {
        cafe24_core::settings::DatabaseKind::PostgresParams {
            host,
            port,
            user,
            dbname,
            ..
        } => {
            format!("postgres://{user}@{host}:{port}/{dbname}")
        }
        cafe24_core::settings::DatabaseKind::PostgresUrl(url) => url.expose_secret().to_owned(),
        cafe24_core::settings::DatabaseKind::Sqlite(_) => panic!("the benchmark needs PostgreSQL"),
    }
}
