//! Keep-alive: a refresh token unused for 14 days dies and the mall must install again. Every
//! active mall whose refresh token expires within the window is refreshed, with bounded
//! concurrency and a bounded rate, so a shop that is never used is never lost.

use std::sync::Arc;
use std::time::Duration;

use cafe24_core::MallId;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::manager::{span, TokenError, TokenManager};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KeepAliveSummary {
    pub due: usize,
    pub refreshed: usize,
    pub skipped: usize,
    pub failed: usize,
}

/// Refreshes `malls` (those due within `window`), reporting each finished mall to `progress`.
/// With a `deadline` (a Lambda invocation's end), no refresh is sent that could not finish
/// before it; those malls count as skipped and the next pass takes them.
pub async fn refresh_malls(
    manager: &Arc<TokenManager>,
    malls: Vec<MallId>,
    window: Duration,
    stop: &tokio::sync::watch::Receiver<bool>,
    deadline: Option<tokio::time::Instant>,
    progress: &(dyn Fn() + Send + Sync),
) -> KeepAliveSummary {
    let settings = manager.settings();
    let permits = Arc::new(Semaphore::new(settings.keepalive_concurrency));
    let interval = Duration::from_secs_f64(1.0 / settings.keepalive_rate);
    let mut pace = tokio::time::interval(interval);
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut summary = KeepAliveSummary {
        due: malls.len(),
        ..Default::default()
    };
    let mut tasks = JoinSet::new();
    for mall in malls {
        // On shutdown, start nothing new; refreshes already sent run to completion, because a
        // refresh cancelled after sending may have rotated the token without our knowing.
        if *stop.borrow() {
            break;
        }
        pace.tick().await;
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let manager = manager.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let result = manager.keep_alive_by(&mall, window, deadline).await;
            (mall, result)
        });
        while let Some(done) = tasks.try_join_next() {
            tally(&mut summary, done);
            progress();
        }
    }
    while let Some(done) = tasks.join_next().await {
        tally(&mut summary, done);
        progress();
    }
    summary
}

fn tally(
    summary: &mut KeepAliveSummary,
    done: Result<(MallId, Result<bool, TokenError>), tokio::task::JoinError>,
) {
    match done {
        Ok((_, Ok(true))) => summary.refreshed += 1,
        Ok((_, Ok(false) | Err(TokenError::NoTime))) => summary.skipped += 1,
        Ok((mall, Err(e))) => {
            tracing::warn!(mall_id = %mall, error = %e, "keep-alive refresh failed");
            summary.failed += 1;
        }
        Err(e) => {
            tracing::error!(error = %e, "a keep-alive task panicked");
            summary.failed += 1;
        }
    }
}

/// The malls due for keep-alive now: active, refresh token expiring within the window.
pub async fn due_malls(
    manager: &TokenManager,
    window: Duration,
) -> Result<Vec<MallId>, TokenError> {
    let before = manager.now() + span(window);
    Ok(manager.store().malls_due(before, u32::MAX).await?)
}
