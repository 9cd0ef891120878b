//! The refresh protocol seen from outside: every process and caller asking at once across an
//! expiry makes exactly one refresh; a rotation whose answer is lost is flagged, never silent;
//! keep-alive renews a refresh token before it dies.

use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::Method;

use crate::check::{Context, Failure, Outcome};
use crate::db;
use crate::env::{KEEPALIVE_WINDOW_SECS, REFRESH_MARGIN_SECS};
use crate::flow::all_at_once;
use crate::world::World;

/// Seconds between a refresh and the moment its token enters the refresh margin.
const PERIOD_SECS: i64 = 4;
const WAVES: u64 = 3;
const CALLERS_PER_PROCESS: usize = 5;
/// At most this many callers per wave: three waves stay under Cafe24's bucket (40, 2/s), so
/// no 429 pause can stretch a wave into the next rotation.
const MAX_CALLERS: usize = 16;

fn lifetimes(w: &World<'_>, access: i64, refresh: i64) -> Result<(), Failure> {
    w.sandbox
        .set_token_lifetimes(access, refresh)
        .map_err(|e| Failure::new(e.to_string()))
}

pub async fn one_refresh_per_rotation_across_processes(w: &World<'_>) -> Outcome {
    let mall = w.mall("rotate");
    let defaults = w.sandbox.token_lifetimes();
    // Every token issued now enters the refresh margin PERIOD_SECS after it is issued.
    lifetimes(w, REFRESH_MARGIN_SECS + PERIOD_SECS, defaults.1)?;
    w.install(&mall, 0).await?;
    let callers = (CALLERS_PER_PROCESS * w.servers.len()).min(MAX_CALLERS);
    for wave in 1..=WAVES {
        let row = db::token_row(w.db, &mall).await?.context("no token row")?;
        let due = row.access_expires_at - chrono::Duration::seconds(REFRESH_MARGIN_SECS);
        let wait = (due - Utc::now()).to_std().unwrap_or_default();
        crate::ensure!(
            wait <= Duration::from_secs(PERIOD_SECS as u64 + 1),
            "the stored access token is due in {} ms, expected within {PERIOD_SECS} s",
            wait.as_millis()
        );
        tokio::time::sleep(wait + Duration::from_millis(200)).await;
        let requests = (0..callers)
            .map(|i| w.proxy_request(w.server(i), &mall, "/products/count"))
            .collect();
        for answer in all_at_once(requests).await {
            let answer = answer?;
            crate::ensure!(
                answer.status == 200,
                "wave {wave}: a proxied call answered {}",
                answer.summary()
            );
        }
        let stats = w.stats(&mall);
        crate::ensure!(
            stats.refresh_grants == wave && stats.refresh_tokens_rejected == 0,
            "after wave {wave} of {callers} callers on {} process(es) Cafe24 saw {} refresh grants and {} rejected refresh tokens; expected {wave} and 0 (one refresh per rotation)",
            w.servers.len(),
            stats.refresh_grants,
            stats.refresh_tokens_rejected
        );
    }
    lifetimes(w, defaults.0, defaults.1)?;
    let status = db::token_row(w.db, &mall).await?.map(|r| r.status);
    crate::ensure!(
        status.as_deref() == Some("active"),
        "the mall's status is {status:?}"
    );
    Ok(format!(
        "{WAVES} expiries × {callers} concurrent callers on {} process(es): {WAVES} refreshes, 0 rejected",
        w.servers.len()
    ))
}

pub async fn lost_rotation_flags_needs_reauth(w: &World<'_>) -> Outcome {
    let mall = w.mall("lost");
    let defaults = w.sandbox.token_lifetimes();
    lifetimes(w, 120, defaults.1)?;
    let installed = w.install(&mall, 0).await;
    lifetimes(w, defaults.0, defaults.1)?;
    installed?;
    // Cafe24 rotates the pair, then the answer is lost: the stored refresh token is now dead.
    w.sandbox
        .set_fault(
            "token",
            cafe24_sandbox::FaultSpec {
                lose_response_next: 1,
                mall_id: Some(mall.clone()),
                ..Default::default()
            },
        )
        .map_err(|e| Failure::new(e.to_string()))?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(20);
    let mut i = 0;
    let status = loop {
        // Each call needs a refresh (the token is inside the margin), so each drives a retry.
        let _ = w
            .proxy(w.server(i), Method::GET, &mall, "/products/count", None)
            .await;
        i += 1;
        let status = db::token_row(w.db, &mall).await?.map(|r| r.status);
        if status.as_deref() == Some("needs_reauth") || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let lost = w.stats(&mall).responses_lost;
    crate::ensure!(
        lost == 1,
        "the sandbox lost {lost} rotated answers, expected 1"
    );
    crate::ensure!(
        status.as_deref() == Some("needs_reauth"),
        "after Cafe24 rotated the pair and the answer was lost, the mall's status is {status:?} after 20 s; expected \"needs_reauth\""
    );
    let answer = w
        .proxy(w.server(0), Method::GET, &mall, "/products/count", None)
        .await?;
    crate::ensure!(
        answer.status >= 400,
        "a proxied call for a mall that needs a new install answered {}",
        answer.summary()
    );
    Ok(format!(
        "needs_reauth {} ms after the lost answer; proxied calls answer {}",
        started.elapsed().as_millis(),
        answer.status
    ))
}

pub async fn keepalive_renews_a_refresh_token_near_its_end(w: &World<'_>) -> Outcome {
    let mall = w.mall("keepalive");
    let defaults = w.sandbox.token_lifetimes();
    // A refresh token that dies in 2 days: inside the 3-day keep-alive window.
    lifetimes(w, defaults.0, KEEPALIVE_WINDOW_SECS - 86_400)?;
    let installed = w.install(&mall, 0).await;
    lifetimes(w, defaults.0, defaults.1)?;
    installed?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(10);
    loop {
        let renewed = db::token_row(w.db, &mall).await?.is_some_and(|r| {
            r.refresh_expires_at - Utc::now() > chrono::Duration::seconds(KEEPALIVE_WINDOW_SECS)
        });
        if renewed && w.stats(&mall).refresh_grants >= 1 {
            break;
        }
        crate::ensure!(
            Instant::now() < deadline,
            "a mall whose refresh token expires in 2 days (window {KEEPALIVE_WINDOW_SECS} s, interval 1 s) was not refreshed within 10 s (refresh grants: {})",
            w.stats(&mall).refresh_grants
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let renewed_after = started.elapsed();
    let renewals = w.stats(&mall).refresh_grants;
    // A keep-alive pass may land between the exchange and the lifetimes' reset: that refresh is
    // still issued a 2-day token, due again, so it is renewed twice — rightly. What must never
    // happen is a refresh of a token already outside the window (several passes, processes or
    // implementations each renewing it).
    crate::ensure!(
        renewals <= 2,
        "keep-alive refreshed the mall {renewals} times before its token left the window"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let grants = w.stats(&mall).refresh_grants;
    crate::ensure!(
        grants == renewals,
        "keep-alive refreshed the mall again ({renewals} → {grants} grants) after its refresh token was renewed outside the window"
    );
    Ok(format!(
        "renewed {} ms after the install ({renewals} grant{}), then left alone",
        renewed_after.as_millis(),
        if renewals == 1 { "" } else { "s" }
    ))
}
