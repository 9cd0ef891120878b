//! Pacing against the sandbox's real bucket (40 deep, 2 per second).

use std::time::Duration;

use crate::support::{rig, Time};

#[tokio::test]
async fn concurrent_tasks_never_overflow_the_bucket() {
    let rig = rig(&[("shop", 20)], Time::Virtual, &[]).await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let shop = rig.mall("shop");
        tasks.push(tokio::spawn(async move {
            for _ in 0..20 {
                shop.products_count(&[]).await.expect("call");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let stats = rig.stats("shop");
    assert_eq!((stats.api_calls, stats.rate_limited), (320, 0));
    // 40 at once, then 2 per (virtual) second.
    assert!(rig.virtual_now() >= Duration::from_secs(140));
    assert!(rig.virtual_now() <= Duration::from_secs(145));
}

#[tokio::test]
async fn a_short_wall_clock_run_past_the_bucket_sees_no_429() {
    let rig = rig(&[("shop", 20)], Time::Real, &[]).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let shop = rig.mall("shop");
        tasks.push(tokio::spawn(async move {
            for _ in 0..6 {
                shop.products_count(&[]).await.expect("call");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let stats = rig.stats("shop");
    assert_eq!((stats.api_calls, stats.rate_limited), (48, 0));
    assert!(rig.mall("shop").pacer().stats().delayed >= 8);
}

#[tokio::test]
async fn calls_made_elsewhere_are_noticed_through_the_call_limit_header() {
    let rig = rig(&[("shop", 20)], Time::Virtual, &[]).await;
    // Another process has used 30 of the 40.
    rig.outside_calls("shop", 30).await;
    let shop = rig.mall("shop");
    for _ in 0..20 {
        shop.products_count(&[]).await.expect("call");
    }
    let stats = rig.stats("shop");
    assert_eq!((stats.api_calls, stats.rate_limited), (50, 0));
    let pace = shop.pacer().stats();
    assert!(pace.corrections >= 1, "{pace:?}");
    // 10 calls past the shared bucket at 2/s: about 5 s of waiting.
    assert!(pace.waited_ms >= 4_500, "{pace:?}");
}

#[tokio::test]
async fn two_malls_in_parallel_do_not_slow_each_other() {
    let rig = rig(&[("busy", 20), ("quiet", 20)], Time::Virtual, &[]).await;
    let busy = rig.mall("busy");
    let hammer = tokio::spawn(async move {
        let mut calls = Vec::new();
        for _ in 0..8 {
            let busy = busy.clone();
            calls.push(tokio::spawn(async move {
                for _ in 0..15 {
                    busy.products_count(&[]).await.expect("busy call");
                }
            }));
        }
        for c in calls {
            c.await.expect("task");
        }
    });
    let quiet = rig.mall("quiet");
    for _ in 0..40 {
        quiet.products_count(&[]).await.expect("quiet call");
    }
    hammer.await.expect("hammer");

    let (busy, quiet) = (rig.mall("busy").pacer().stats(), quiet.pacer().stats());
    assert_eq!(busy.granted, 120);
    assert!(busy.waited_ms >= 39_000, "the busy mall waited: {busy:?}");
    assert_eq!(quiet.granted, 40);
    assert_eq!(
        (quiet.delayed, quiet.waited_ms),
        (0, 0),
        "the quiet mall never waited: {quiet:?}"
    );
    assert_eq!(rig.stats("busy").rate_limited, 0);
    assert_eq!(rig.stats("quiet").rate_limited, 0);
}
