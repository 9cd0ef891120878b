//! The exchange queue: every stored code is swapped for tokens while it is still valid. Codes
//! are claimed in batches (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so any number of workers
//! share the queue), exchanged concurrently, retried on transport errors while time remains,
//! and never sent once older than the code lifetime.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cafe24_store::{ClaimedCode, CodeStatus, StoreError};
use tokio::task::JoinSet;

use crate::events::LifecycleEvent;
use crate::manager::TokenManager;

/// A code this close to its lifetime is not sent: Cafe24 could not accept it in time.
const SEND_MARGIN: Duration = Duration::from_secs(2);
/// A claim older than this is considered abandoned (its worker died) and is taken over.
const CLAIM_LEASE: Duration = Duration::from_secs(20);

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
        let store = self.manager.store();
        let lifetime = self.manager.settings().code_lifetime;
        let mut summary = ExchangeSummary {
            expired: store.expire_codes(lifetime).await?,
            ..Default::default()
        };
        let claimed = store.claim_codes(lifetime, CLAIM_LEASE, self.batch).await?;
        summary.claimed = claimed.len();
        let started = Instant::now();
        let mut tasks = JoinSet::new();
        for code in claimed {
            let manager = self.manager.clone();
            tasks.spawn(async move { exchange_one(&manager, code, started).await });
        }
        while let Some(done) = tasks.join_next().await {
            match done {
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
        let mut total = ExchangeSummary::default();
        loop {
            let s = self.run_once().await?;
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
    manager: &TokenManager,
    code: ClaimedCode,
    claimed_at: Instant,
) -> Result<Outcome, StoreError> {
    let store = manager.store();
    let lifetime = manager.settings().code_lifetime;
    let age = || code.age + claimed_at.elapsed();
    if age() + SEND_MARGIN >= lifetime {
        manager.metrics.exchange("expired");
        store
            .finish_code(
                code.id,
                CodeStatus::Expired,
                "not exchanged within the code lifetime",
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
                store
                    .finish_code(
                        code.id,
                        CodeStatus::Failed,
                        "Cafe24 issued tokens for a different mall",
                    )
                    .await?;
                return Ok(Outcome::Failed);
            }
            let tokens = manager.seal(&code.mall_id, &set, &manager.oauth.app().client_id);
            let version = store.complete_exchange(code.id, &tokens).await?;
            manager.metrics.exchange("ok");
            tracing::info!(mall_id = %code.mall_id, code_id = code.id, version, age_ms = age().as_millis() as u64, "code exchanged");
            manager.emit(&LifecycleEvent::Installed {
                mall: code.mall_id.clone(),
            });
            Ok(Outcome::Exchanged)
        }
        Err(e) if e.is_retryable() => {
            let backoff =
                Duration::from_millis(250u64 << code.attempts.clamp(1, 5).saturating_sub(1))
                    .min(Duration::from_secs(4));
            if age() + backoff + SEND_MARGIN < lifetime {
                tracing::warn!(mall_id = %code.mall_id, code_id = code.id, error = %e, "exchange failed; retrying");
                tokio::time::sleep(backoff).await;
                manager.metrics.exchange("retried");
                store.retry_code(code.id, &e.to_string()).await?;
                Ok(Outcome::Retried)
            } else {
                manager.metrics.exchange("expired");
                store
                    .finish_code(
                        code.id,
                        CodeStatus::Expired,
                        &format!("Cafe24 unreachable within the code lifetime: {e}"),
                    )
                    .await?;
                Ok(Outcome::Expired)
            }
        }
        Err(e) => {
            tracing::warn!(mall_id = %code.mall_id, code_id = code.id, error = %e, "exchange refused");
            manager.metrics.exchange("failed");
            store
                .finish_code(code.id, CodeStatus::Failed, &e.to_string())
                .await?;
            Ok(Outcome::Failed)
        }
    }
}
