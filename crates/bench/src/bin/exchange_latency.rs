//! Callback → tokens stored, on PostgreSQL: the time from the browser's `GET /oauth/callback`
//! to the exchanged tokens being committed, through the real router, worker and store, with the
//! sandbox as Cafe24. The floor, measured in the same run: one bare token-endpoint round trip.
//! Usage: `exchange_latency [SEQUENTIAL] [CONCURRENT_TOTAL] [CONCURRENCY]` (see bench/exchange.sh).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::ensure;
use cafe24_bench::{mall, percentile_ms, setup};
use cafe24_core::secret::AuthorizationCode;
use cafe24_core::settings::Settings;
use cafe24_core::MallId;
use cafe24_server::{AppState, Application};
use cafe24_tokens::{LifecycleEvent, LifecycleHook, Worker};
use tokio::sync::oneshot;

/// Hands each flow the instant its mall's tokens were committed.
#[derive(Default)]
struct Recorder(Mutex<HashMap<MallId, oneshot::Sender<Instant>>>);

impl Recorder {
    fn expect(&self, mall: &MallId) -> oneshot::Receiver<Instant> {
        let (tx, rx) = oneshot::channel();
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(mall.clone(), tx);
        rx
    }
}

impl LifecycleHook for Recorder {
    fn on_event(&self, event: &LifecycleEvent) {
        if let LifecycleEvent::Installed { mall } = event {
            let now = Instant::now();
            if let Some(tx) = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(mall)
            {
                let _ = tx.send(now);
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (sequential, total, concurrency) = (
        *args.first().unwrap_or(&300),
        *args.get(1).unwrap_or(&2000),
        *args.get(2).unwrap_or(&16),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = format!("http://{}", listener.local_addr()?);
    let bench = Arc::new(setup(&format!("{server}/oauth/callback"), &[]).await?);
    let settings = Settings::load(&bench.source)?;
    let recorder = Arc::new(Recorder::default());
    let manager = Arc::new(bench.manager()?.with_hook(recorder.clone()));
    let state = AppState::new(&settings, bench.store.clone());
    // `EXCHANGE_WAKE=notify`: the worker hears of codes only through PostgreSQL's NOTIFY, as a
    // worker in another process does; otherwise the server also wakes it in process.
    let notify_only = std::env::var("EXCHANGE_WAKE").is_ok_and(|w| w == "notify");
    let worker = if notify_only {
        Worker::new(manager.clone())
    } else {
        Worker::new(manager.clone()).woken_by(state.code_stored.clone())
    };
    tokio::spawn(worker.run(std::future::pending()));
    tokio::spawn(
        Application::with_listener(listener, state, &settings.http).run(std::future::pending()),
    );

    // The floor: a bare authorization_code round trip to the sandbox, no database.
    let mut floor = Vec::new();
    for i in 0..200 {
        let m = mall(1_000_000 + i);
        let code =
            AuthorizationCode::new(bench.code(&m, &format!("{server}/oauth/callback")).await?);
        let t = Instant::now();
        manager.oauth().exchange(&m, &code).await?;
        floor.push(t.elapsed());
    }
    floor.sort();

    let flow = {
        let (bench, recorder, server) = (bench.clone(), recorder.clone(), server.clone());
        move |i: usize| {
            let (bench, recorder, server) = (bench.clone(), recorder.clone(), server.clone());
            async move {
                let m = mall(i);
                let authorize = bench
                    .redirect(&format!("{server}/install?mall_id={m}"))
                    .await?;
                let callback = bench.redirect(&authorize).await?;
                let stored = recorder.expect(&m);
                let t0 = Instant::now();
                let response = bench.get(&callback).await?;
                ensure!(
                    response.status() == 200,
                    "callback answered {}",
                    response.status()
                );
                let t1 = tokio::time::timeout(Duration::from_secs(60), stored).await??;
                anyhow::Ok(t1 - t0)
            }
        }
    };

    let mut seq = Vec::new();
    for i in 0..sequential {
        seq.push(flow(i).await?);
    }
    seq.sort();

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(sequential));
    for _ in 0..concurrency {
        let (flow, next) = (flow.clone(), next.clone());
        let end = sequential + total;
        tasks.spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= end {
                    return anyhow::Ok(out);
                }
                out.push(flow(i).await?);
            }
        });
    }
    let mut conc = Vec::new();
    while let Some(done) = tasks.join_next().await {
        conc.extend(done??);
    }
    let elapsed = started.elapsed();
    conc.sort();
    let grants: u64 = (0..sequential + total)
        .filter_map(|i| bench.sandbox.stats(mall(i).as_str()))
        .map(|s| s.authorization_code_grants)
        .sum();
    ensure!(
        grants as usize == sequential + total,
        "sandbox counted {grants} exchanges"
    );

    println!(
        "== callback -> tokens stored, PostgreSQL (server, worker, sandbox and database on {} cores; worker woken {})",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        match (notify_only, std::env::var("BENCH_CODE_NOTIFY").as_deref()) {
            (false, _) => "in process",
            (true, Ok("trigger")) => "by NOTIFY only, sent by the insert trigger in each commit",
            (true, _) => "by NOTIFY only (coalesced, one per millisecond at most), as in another process",
        }
    );
    println!(
        "floor: bare token round trip      p50 {:>7.2} ms  p99 {:>7.2} ms  (n={})",
        percentile_ms(&floor, 50.0),
        percentile_ms(&floor, 99.0),
        floor.len()
    );
    println!(
        "sequential (one install at a time) p50 {:>7.2} ms  p99 {:>7.2} ms  (n={})",
        percentile_ms(&seq, 50.0),
        percentile_ms(&seq, 99.0),
        seq.len()
    );
    println!("concurrent ({concurrency} installs at once)   p50 {:>7.2} ms  p99 {:>7.2} ms  (n={}, {:.0} installs/s)", percentile_ms(&conc, 50.0), percentile_ms(&conc, 99.0), conc.len(), conc.len() as f64 / elapsed.as_secs_f64());
    println!(
        "p99 vs Cafe24's 60 s code lifetime: {:.4} % of the window (aim: p99 < 1 s)",
        percentile_ms(&conc, 99.0) / 600.0
    );
    println!(
        "sequential p50 / floor p50: {:.1}x",
        percentile_ms(&seq, 50.0) / percentile_ms(&floor, 50.0)
    );
    println!(
        "every code exchanged exactly once: {grants} grants for {} installs",
        sequential + total
    );
    Ok(())
}
