//! Acting on stored events, off the request path: uninstall events (90077/90078) revoke the
//! mall, in-process handlers run, and the optional forward is sent. Any failure is retried with
//! exponential backoff; after `max_attempts` the event is dead-lettered. Delivery is
//! at-least-once: handlers and the forward target must be idempotent (the event id and dedupe
//! key are provided for that).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use cafe24_store::{DispatchOutcome, Store, StoreError, WebhookEventRecord};
use cafe24_tokens::TokenManager;
use tokio::sync::Notify;

use crate::forward::Forwarder;
use crate::{EVENT_APP_DELETED, EVENT_APP_EXPIRED};

/// Code of the embedding app that acts on events. Return an error to have the event retried.
#[async_trait::async_trait]
pub trait WebhookHandler: Send + Sync + 'static {
    async fn handle(&self, event: &WebhookEventRecord) -> Result<(), String>;
}

/// A claim older than this is taken over (its worker died).
const CLAIM_LEASE: Duration = Duration::from_secs(60);

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DispatchSummary {
    pub dispatched: usize,
    pub retried: usize,
    pub dead_lettered: usize,
}

pub struct Dispatcher {
    store: Arc<dyn Store>,
    manager: Option<Arc<TokenManager>>,
    handlers: Vec<Arc<dyn WebhookHandler>>,
    forward: Option<Forwarder>,
    max_attempts: u32,
    backoff: Duration,
}

impl Dispatcher {
    pub fn new(store: Arc<dyn Store>, max_attempts: u32) -> Self {
        Self {
            store,
            manager: None,
            handlers: Vec::new(),
            forward: None,
            max_attempts,
            backoff: Duration::from_secs(1),
        }
    }

    /// Uninstall events revoke the mall through the token lifecycle.
    pub fn with_manager(mut self, manager: Arc<TokenManager>) -> Self {
        self.manager = Some(manager);
        self
    }

    pub fn with_handler(mut self, handler: Arc<dyn WebhookHandler>) -> Self {
        self.handlers.push(handler);
        self
    }

    pub fn with_forward(mut self, forward: Forwarder) -> Self {
        self.forward = Some(forward);
        self
    }

    /// The first retry waits this long, doubling each time (capped at five minutes).
    pub fn with_backoff(mut self, first: Duration) -> Self {
        self.backoff = first;
        self
    }

    /// Dispatches every event that is due now.
    pub async fn run_once(&self) -> Result<DispatchSummary, StoreError> {
        let mut summary = DispatchSummary::default();
        loop {
            let events = self.store.claim_webhook_events(32, CLAIM_LEASE).await?;
            if events.is_empty() {
                return Ok(summary);
            }
            for event in events {
                let outcome = match self.act(&event).await {
                    Ok(()) => {
                        summary.dispatched += 1;
                        DispatchOutcome::Dispatched
                    }
                    Err(error)
                        if u32::try_from(event.attempts).unwrap_or(u32::MAX)
                            >= self.max_attempts =>
                    {
                        tracing::error!(event_id = event.id, event_no = event.event_no, mall_id = %event.mall_id, %error, "webhook event dead-lettered");
                        summary.dead_lettered += 1;
                        DispatchOutcome::DeadLetter { error }
                    }
                    Err(error) => {
                        let exponent = u32::try_from(event.attempts.saturating_sub(1))
                            .unwrap_or(0)
                            .min(16);
                        let wait = self
                            .backoff
                            .saturating_mul(1 << exponent)
                            .min(Duration::from_secs(300));
                        tracing::warn!(event_id = event.id, attempts = event.attempts, %error, "webhook dispatch failed; retrying");
                        summary.retried += 1;
                        let at = chrono::Utc::now()
                            + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::zero());
                        DispatchOutcome::Retry { error, at }
                    }
                };
                self.store.finish_webhook_event(event.id, &outcome).await?;
            }
        }
    }

    async fn act(&self, event: &WebhookEventRecord) -> Result<(), String> {
        if matches!(event.event_no, EVENT_APP_DELETED | EVENT_APP_EXPIRED) {
            if let Some(manager) = &self.manager {
                let reason = if event.event_no == EVENT_APP_DELETED {
                    "app deleted (event 90077)"
                } else {
                    "app expired (event 90078)"
                };
                manager
                    .uninstalled(&event.mall_id, reason, event.occurred_at)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        for handler in &self.handlers {
            handler.handle(event).await?;
        }
        if let Some(forward) = &self.forward {
            forward.send(event).await?;
        }
        Ok(())
    }

    /// Dispatches as events arrive (`wake`) and as retries fall due, until `shutdown`.
    pub async fn run(self, wake: Arc<Notify>, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.run_once().await {
                tracing::warn!(error = %e, "webhook dispatch pass failed");
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = wake.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }
}
