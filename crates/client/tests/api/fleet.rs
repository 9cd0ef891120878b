//! Fleet-wide pacing on PostgreSQL (contract §6.8): processes sharing a mall draw from one
//! budget; a budget that does not answer leaves each process its conservative share.

use std::time::{Duration, Instant};

use cafe24_client::Client;
use cafe24_sandbox::{RateLimitConfig, SandboxConfig};
use cafe24_testkit::fresh_postgres;
use sqlx::{Connection, Executor};

use crate::support::{mall, rig_on, Rig, Time};

/// A small, fast bucket on both sides, so a test run takes seconds: 10 deep, 10 per second.
const FAST: &[(&str, &str)] = &[
    ("CAFE24_API_BUCKET_SIZE", "10"),
    ("CAFE24_API_DRAIN_PER_SEC", "10"),
];

async fn fleet_rig() -> Rig {
    let sandbox = SandboxConfig {
        rate_limit: RateLimitConfig {
            bucket_size: 10.0,
            drain_per_sec: 10.0,
            ..RateLimitConfig::default()
        },
        ..SandboxConfig::default()
    };
    rig_on(
        fresh_postgres().await,
        sandbox,
        &[("shop", 5)],
        Time::Real,
        FAST,
    )
    .await
}

async fn hammer(clients: &[Client], tasks_each: usize, calls_each: usize) {
    let mut tasks = Vec::new();
    for client in clients {
        for _ in 0..tasks_each {
            let shop = client.mall(mall("shop"));
            tasks.push(tokio::spawn(async move {
                for _ in 0..calls_each {
                    shop.products_count(&[]).await.expect("call");
                }
            }));
        }
    }
    for t in tasks {
        t.await.expect("task");
    }
}

async fn sql(rig: &Rig, statement: &str) {
    let cafe24_core::settings::DatabaseKind::PostgresUrl(url) = &rig.db.kind else {
        panic!("postgres")
    };
    let mut conn = sqlx::PgConnection::connect(url.expose_secret())
        .await
        .expect("connect");
    conn.execute(statement).await.expect(statement);
}

#[tokio::test]
async fn processes_sharing_a_mall_draw_from_one_budget() {
    let rig = fleet_rig().await;
    let fleet = vec![
        rig.client.clone(),
        rig.another_process().await,
        rig.another_process().await,
    ];
    let started = Instant::now();
    hammer(&fleet, 4, 5).await;
    let elapsed = started.elapsed();
    let stats = rig.stats("shop");
    assert_eq!((stats.api_calls, stats.rate_limited), (60, 0));
    // 9 at once (one call of headroom), then 10 per second: three separate buckets would have
    // let 27 go at once and the rest three times as fast, into 429s.
    assert!(elapsed >= Duration::from_millis(4800), "{elapsed:?}");
    let shared: u64 = fleet.iter().map(|c| c.metrics().paced("shared")).sum();
    let fallback: u64 = fleet.iter().map(|c| c.metrics().paced("fallback")).sum();
    assert_eq!((shared, fallback), (60, 0));
}

#[tokio::test]
async fn calls_made_outside_the_fleet_correct_the_budget() {
    let rig = fleet_rig().await;
    // Another app on the same mall has used 8 of the 10.
    rig.outside_calls("shop", 8).await;
    let shop = rig.mall("shop");
    for _ in 0..12 {
        shop.products_count(&[]).await.expect("call");
    }
    let stats = rig.stats("shop");
    assert_eq!((stats.api_calls, stats.rate_limited), (20, 0));
}

#[tokio::test]
async fn a_budget_that_does_not_answer_leaves_each_process_its_share() {
    let rig = fleet_rig().await;
    let other = rig.another_process().await;
    sql(
        &rig,
        "ALTER FUNCTION cafe24.take_api_call(text, double precision, double precision, \
         double precision) RENAME TO take_api_call_away",
    )
    .await;
    let started = Instant::now();
    hammer(&[rig.client.clone(), other.clone()], 3, 3).await;
    let elapsed = started.elapsed();
    let stats = rig.stats("shop");
    // Two processes on a quarter each (2 deep + 2.5/s): 18 calls, none refused, paced well
    // below the bucket — (18 − 4) / 5 per second ≈ 2.8 s.
    assert_eq!((stats.api_calls, stats.rate_limited), (18, 0));
    assert!(elapsed >= Duration::from_millis(2500), "{elapsed:?}");
    let fallback = rig.client.metrics().paced("fallback") + other.metrics().paced("fallback");
    assert_eq!(fallback, 18);
    // Once it answers again, the shared budget paces.
    sql(
        &rig,
        "ALTER FUNCTION cafe24.take_api_call_away(text, double precision, double precision, \
         double precision) RENAME TO take_api_call",
    )
    .await;
    rig.mall("shop").products_count(&[]).await.expect("call");
    assert_eq!(rig.client.metrics().paced("shared"), 1);
}
