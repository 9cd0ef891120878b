//! The Lambda benchmark (run by `bench/lambda.sh`): the real `bootstrap` and the spec's Python
//! handler, each started by the same local Runtime API harness as the tests and fed the same
//! API Gateway events. Measures cold start (process start → first response), warm invocation
//! latency (p50/p99) and peak memory (VmHWM), and prints the ratios.
//!
//! Usage: lambda_bench BOOTSTRAP PYTHON RUNTIME_PY [COLD_RUNS] [WARM_INVOCATIONS]
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
    /// A fresh callback event: a new code and a new signed state (a state is single use).
    fn next(&mut self) -> serde_json::Value {
        self.n += 1;
        let state = self.signer.issue(&self.mall, chrono::Utc::now());
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
        eprintln!("usage: lambda_bench BOOTSTRAP PYTHON RUNTIME_PY [COLD_RUNS] [WARM_INVOCATIONS]");
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
}
