//! The exchange queue: every stored code is swapped for tokens while it is still valid. Codes
//! are claimed in batches (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so any number of workers
//! share the queue), exchanged concurrently, retried on transport errors while time remains,
//! and never sent once older than the code lifetime.
//!
//! A claim is a lease long enough for everything one attempt can take (the token call, the
//! retry backoff, the writes); every later update is fenced by the claim, so a worker that
//! outlived its lease cannot reset another worker's claim or undo an exchange. Each exchange
//! runs on a task of its own: a pass that is dropped (shutdown, a Lambda deadline) stops
//! waiting, but a code already sent to Cafe24 is still exchanged and its tokens stored.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cafe24_core::settings::TokenSettings;
use cafe24_store::{ClaimedCode, CodeStatus, StoreError};

use crate::events::LifecycleEvent;
use crate::manager::{Core, TokenManager, JOURNAL_SLACK};

/// A code this close to its lifetime is not sent: Cafe24 could not accept it in time.
const SEND_MARGIN: Duration = Duration::from_secs(2);
/// The longest wait before a retried code is put back.
const MAX_BACKOFF: Duration = Duration::from_secs(4);
/// Time for the writes around an attempt (a pool wait, the claim's updates).
const LEASE_SLACK: Duration = Duration::from_secs(10);

/// How long a claim is held before another worker may take the code over: everything one
/// attempt can take, so a live worker is never overtaken.
pub fn claim_lease(settings: &TokenSettings) -> Duration {
    settings.http_timeout + MAX_BACKOFF + LEASE_SLACK
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExchangeSummary {
    pub expired: u64,
    pub claimed: usize,
    pub exchanged: usize,
    pub failed: usize,
    pub retried: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Exchanged,
    Failed,
    Retried,
    Expired,
}

#[derive(Clone)]
pub struct Exchanger {
    manager: Arc<TokenManager>,
    batch: u32,
}

impl Exchanger {
    pub fn new(manager: Arc<TokenManager>) -> Self {
        Self { manager, batch: 32 }
    }

    /// One pass: expire what is too old, claim a batch, exchange it.
    pub async fn run_once(&self) -> Result<ExchangeSummary, StoreError> {
        self.run_once_by(None).await
    }

    /// [`Exchanger::run_once`] that claims nothing unless an exchange started now can finish
    /// before `deadline` (a Lambda invocation's end).
    pub async fn run_once_by(
        &self,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<ExchangeSummary, StoreError> {
        let store = self.manager.store();
        let settings = self.manager.settings();
        let lifetime = settings.code_lifetime;
        let mut summary = ExchangeSummary {
            expired: store.expire_codes(lifetime).await?,
            ..Default::default()
        };
        let needed = settings.http_timeout + JOURNAL_SLACK + JOURNAL_SLACK;
        if deadline.is_some_and(|d| tokio::time::Instant::now() + needed > d) {
            return Ok(summary);
        }
        let claimed = store
            .claim_codes(lifetime, claim_lease(settings), self.batch)
            .await?;
        summary.claimed = claimed.len();
        let started = Instant::now();
        let tasks: Vec<_> = claimed
            .into_iter()
            .map(|code| {
                let core = self.manager.core().clone();
                self.manager
                    .spawn(async move { exchange_one(&core, code, started).await })
            })
            .collect();
        for task in tasks {
            match task.await {
                Ok(Ok(Outcome::Exchanged)) => summary.exchanged += 1,
                Ok(Ok(Outcome::Retried)) => summary.retried += 1,
                Ok(Ok(Outcome::Expired)) => summary.expired += 1,
                Ok(Ok(Outcome::Failed)) => summary.failed += 1,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "recording an exchange failed; the claim will be retried");
                    summary.failed += 1;
                }
                Err(e) => {
                    tracing::error!(error = %e, "an exchange task panicked");
                    summary.failed += 1;
                }
            }
        }
        Ok(summary)
    }

    /// Passes until the queue is empty (retries included).
    pub async fn drain(&self) -> Result<ExchangeSummary, StoreError> {
        self.drain_by(None).await
    }

    /// [`Exchanger::drain`] within a deadline (see [`Exchanger::run_once_by`]).
    pub async fn drain_by(
        &self,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<ExchangeSummary, StoreError> {
        let mut total = ExchangeSummary::default();
        loop {
            let s = self.run_once_by(deadline).await?;
            total.expired += s.expired;
            total.claimed += s.claimed;
            total.exchanged += s.exchanged;
            total.failed += s.failed;
            total.retried += s.retried;
            if s.claimed == 0 {
                return Ok(total);
            }
        }
    }
}

async fn exchange_one(
    manager: &Core,
    code: ClaimedCode,
    claimed_at: Instant,
) -> Result<Outcome, StoreError> {
    let store = manager.store();
    let claim = code.claim();
    let lifetime = manager.settings().code_lifetime;
    let age = || code.age + claimed_at.elapsed();
    let finish = |status, error: String| async move {
        if !store.finish_code(claim, status, &error).await? {
            tracing::warn!(
                code_id = claim.id,
                "the code's claim was taken over; its outcome is the new holder's"
            );
        }
        Ok::<_, StoreError>(())
    };
    if age() + SEND_MARGIN >= lifetime {
        manager.metrics.exchange("expired");
        finish(
            CodeStatus::Expired,
            "not exchanged within the code lifetime".into(),
        )
        .await?;
        return Ok(Outcome::Expired);
    }
    match manager.oauth.exchange(&code.mall_id, &code.code).await {
        Ok(set) => {
            if set
                .mall_id
                .as_deref()
                .is_some_and(|m| m != code.mall_id.as_str())
            {
                manager.metrics.exchange("failed");
                finish(
                    CodeStatus::Failed,
                    "Cafe24 issued tokens for a different mall".into(),
                )
                .await?;
                return Ok(Outcome::Failed);
            }
            let tokens = manager.seal(&code.mall_id, &set, &manager.oauth.app().client_id);
            // Cafe24 has consumed the code: these tokens are the only copy of the grant.
            let version = manager
                .persist(&code.mall_id, "the exchanged grant", || {
                    store.complete_exchange(claim, &tokens)
                })
                .await?;
            manager.metrics.exchange("ok");
            manager.flag_incomplete(&code.mall_id, &set).await;
            tracing::info!(mall_id = %code.mall_id, code_id = code.id, version, age_ms = age().as_millis() as u64, "code exchanged");
            manager.emit(&LifecycleEvent::Installed {
                mall: code.mall_id.clone(),
            });
            Ok(Outcome::Exchanged)
        }
        Err(e) if e.is_retryable() => {
            let backoff =
                Duration::from_millis(250u64 << code.attempts.clamp(1, 5).saturating_sub(1))
                    .min(MAX_BACKOFF);
            if age() + backoff + SEND_MARGIN < lifetime {
                tracing::warn!(mall_id = %code.mall_id, code_id = code.id, error = %e, "exchange failed; retrying");
                tokio::time::sleep(backoff).await;
                manager.metrics.exchange("retried");
                if !store.retry_code(claim, &e.to_string()).await? {
                    tracing::warn!(
                        code_id = claim.id,
                        "the code's claim was taken over before it was put back"
                    );
                }
                Ok(Outcome::Retried)
            } else {
                manager.metrics.exchange("expired");
                finish(
                    CodeStatus::Expired,
                    format!("Cafe24 unreachable within the code lifetime: {e}"),
                )
                .await?;
                Ok(Outcome::Expired)
            }
        }
        Err(e) => {
            tracing::warn!(mall_id = %code.mall_id, code_id = code.id, error = %e, "exchange refused");
            manager.metrics.exchange("failed");
            finish(CodeStatus::Failed, e.to_string()).await?;
            Ok(Outcome::Failed)
        }
    }
}
