//! Keep-alive sweep of many malls on PostgreSQL against the sandbox: refreshes per second,
//! with the sandbox counting exactly one refresh grant per mall. The peer, measured in the same
//! run: the same number of concurrent bare refresh calls (no lock, no database) on other malls.
//! Usage: `keepalive_sweep [MALLS] [PEER_MALLS] [CONCURRENCY]` (see bench/keepalive.sh).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::ensure;
use cafe24_bench::{mall, setup, REDIRECT};
use cafe24_core::secret::RefreshToken;
use cafe24_core::settings::TokenSettings;
use cafe24_tokens::keepalive::refresh_malls;
use cafe24_tokens::{Exchanger, Sealer, TokenKind};
use tokio::task::JoinSet;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (malls, peers, concurrency) = (
        *args.first().unwrap_or(&10_000),
        *args.get(1).unwrap_or(&2_000),
        *args.get(2).unwrap_or(&32),
    );
    let bench = Arc::new(
        setup(
            REDIRECT,
            &[
                ("CAFE24_KEEPALIVE_CONCURRENCY", concurrency.to_string()),
                ("CAFE24_KEEPALIVE_RATE", "10000".into()),
            ],
        )
        .await?,
    );
    let manager = Arc::new(bench.manager()?);

    // Install every mall through the exchange queue, a chunk at a time (codes live 60 s).
    let started = Instant::now();
    let total = malls + peers;
    for chunk in (0..total).collect::<Vec<_>>().chunks(1000) {
        let mut tasks = JoinSet::new();
        for part in chunk.chunks(chunk.len().div_ceil(concurrency)) {
            let (bench, part) = (bench.clone(), part.to_vec());
            tasks.spawn(async move {
                for i in part {
                    let m = mall(i);
                    let code = bench.code(&m, REDIRECT).await?;
                    bench.store_code(&m, &code).await?;
                }
                anyhow::Ok(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done??;
        }
        let s = Exchanger::new(manager.clone()).drain().await?;
        ensure!(s.exchanged == chunk.len(), "exchange of a chunk: {s:?}");
    }
    let installed = bench.store.all_tokens().await?.len();
    ensure!(installed == total, "{installed} malls installed of {total}");
    eprintln!(
        "installed {total} malls in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Peer: bare refresh calls, same concurrency, no lock and no database write.
    let sealer = Sealer::new(TokenSettings::load(&bench.source)?.keys);
    let mut refresh_tokens = Vec::new();
    for i in malls..total {
        let m = mall(i);
        let row = bench
            .store
            .tokens(&m)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no row for {m}"))?;
        refresh_tokens.push((
            m.clone(),
            RefreshToken::new(sealer.open(
                &m,
                TokenKind::Refresh,
                &row.key_id,
                &row.refresh_ciphertext,
            )?),
        ));
    }
    let queue = Arc::new(std::sync::Mutex::new(refresh_tokens));
    let t = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..concurrency {
        let (queue, manager) = (queue.clone(), manager.clone());
        tasks.spawn(async move {
            loop {
                let next = queue
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .pop();
                let Some((m, token)) = next else {
                    return anyhow::Ok(());
                };
                manager.oauth().refresh(&m, &token).await?;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let peer_rate = peers as f64 / t.elapsed().as_secs_f64();

    // The sweep: every mall due (a window longer than any refresh token's life).
    let due: Vec<_> = (0..malls).map(mall).collect();
    let (_keep, stop) = tokio::sync::watch::channel(false);
    let t = Instant::now();
    let summary = refresh_malls(
        &manager,
        due,
        Duration::from_secs(400 * 86_400),
        &stop,
        None,
        &|| {},
    )
    .await;
    let elapsed = t.elapsed();
    let (mut grants, mut rejected) = (0, 0);
    for i in 0..malls {
        let s = bench.sandbox.stats(mall(i).as_str()).unwrap_or_default();
        grants += s.refresh_grants;
        rejected += s.refresh_tokens_rejected;
    }
    let rate = malls as f64 / elapsed.as_secs_f64();
    println!("== keep-alive sweep on PostgreSQL, {concurrency} at a time ({} cores shared by sandbox, runtime and database)", std::thread::available_parallelism().map_or(0, |n| n.get()));
    println!(
        "sweep: {malls} malls in {:.2} s = {rate:.0} refreshes/s (refreshed {}, failed {})",
        elapsed.as_secs_f64(),
        summary.refreshed,
        summary.failed
    );
    println!("peer:  {peers} bare refresh calls = {peer_rate:.0} refreshes/s (no lock, no journal, no database write)");
    println!("ratio sweep/peer: {:.2}", rate / peer_rate);
    println!("sandbox counted {grants} refresh grants for {malls} malls, {rejected} rejected refresh tokens");
    ensure!(
        grants == malls as u64 && rejected == 0 && summary.refreshed == malls,
        "the sweep was not exact"
    );
    Ok(())
}
