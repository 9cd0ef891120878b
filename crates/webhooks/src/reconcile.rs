//! Reconciliation with Cafe24's own record of deliveries (`GET /api/v2/admin/webhooks/logs`,
//! scope `mall.read_application`): each logged delivery either confirms the event we stored
//! or, if it never reached us, is stored now and dispatched like any other.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use cafe24_client::{ApiError, Client};
use cafe24_core::MallId;
use cafe24_store::{LoggedDelivery, MallStatus, NewWebhookEvent, StoreError};
use cafe24_tokens::TokenManager;
use serde::Deserialize;

use crate::payload::dedupe_key;

const PAGE: usize = 1000;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileSummary {
    pub logged: usize,
    pub confirmed: usize,
    pub recovered: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("Cafe24's webhook logs: {0}")]
    Api(#[from] ApiError),
    #[error("Cafe24's webhook logs: unreadable answer: {0}")]
    Malformed(String),
    /// A full page ended on a log id already paged past: the cursor did not advance, and
    /// reading on would repeat the same pages for ever.
    #[error("Cafe24's webhook logs: the log id did not advance (a full page ended again at {0}); stopped")]
    NoProgress(String),
}

#[derive(Deserialize)]
struct Logs {
    logs: Vec<LogEntry>,
}

#[derive(Deserialize)]
struct LogEntry {
    log_id: String,
    event_no: i32,
    #[serde(default)]
    trace_id: Option<String>,
    request_body: String,
    /// When Cafe24 sent it (`2020-08-03T10:10:10+09:00`): the event's time, which decides
    /// whether an uninstall belongs to the grant now stored.
    #[serde(default)]
    requested_time: Option<String>,
}

/// Reads the logs through the Admin API client, so those calls are paced, retried and get a
/// refreshed token after a 401 like every other call.
pub struct Reconciler {
    manager: Arc<TokenManager>,
    client: Client,
    /// Whether deliveries are keyed by trace id (the receiver's trace header is configured).
    keyed_by_trace: bool,
    window: Duration,
}

impl Reconciler {
    pub fn new(client: Client, keyed_by_trace: bool, window: Duration) -> Self {
        Self {
            manager: client.tokens().clone(),
            client,
            keyed_by_trace,
            window,
        }
    }

    /// Every active mall.
    pub async fn reconcile_all(&self) -> Result<ReconcileSummary, ReconcileError> {
        let mut total = ReconcileSummary::default();
        for row in self.manager.store().all_tokens().await? {
            if row.status != MallStatus::Active {
                continue;
            }
            match self.reconcile_mall(&row.mall_id).await {
                Ok(s) => {
                    total.logged += s.logged;
                    total.confirmed += s.confirmed;
                    total.recovered += s.recovered;
                }
                Err(e) => {
                    tracing::warn!(mall_id = %row.mall_id, error = %e, "webhook reconciliation failed for a mall")
                }
            }
        }
        Ok(total)
    }

    pub async fn reconcile_mall(&self, mall: &MallId) -> Result<ReconcileSummary, ReconcileError> {
        let start = self.manager.now()
            - chrono::Duration::from_std(self.window).unwrap_or(chrono::Duration::days(1));
        // ISO 8601 in Korea time with its offset, whole seconds.
        let since = start
            .with_timezone(&cafe24_core::oauth::kst())
            .format("%Y-%m-%dT%H:%M:%S%:z")
            .to_string();
        let mut summary = ReconcileSummary::default();
        let mut after: Option<String> = None;
        // Log ids are opaque, so "advanced" means: never paged past before in this pass.
        let mut cursors = HashSet::new();
        loop {
            let page = self.page(mall, &since, after.as_deref()).await?;
            let next = match page.last() {
                Some(last) if page.len() == PAGE => Some(last.log_id.clone()),
                _ => None,
            };
            if let Some(next) = &next {
                if !cursors.insert(next.clone()) {
                    return Err(ReconcileError::NoProgress(next.clone()));
                }
            }
            for entry in &page {
                let key = dedupe_key(
                    entry.trace_id.as_deref().filter(|_| self.keyed_by_trace),
                    entry.event_no,
                    entry.request_body.as_bytes(),
                );
                let new = NewWebhookEvent {
                    dedupe_key: &key,
                    mall_id: mall,
                    event_no: entry.event_no,
                    trace_id: entry.trace_id.as_deref(),
                    body: &entry.request_body,
                    occurred_at: entry
                        .requested_time
                        .as_deref()
                        .and_then(|t| cafe24_core::oauth::parse_cafe24_instant(t).ok()),
                };
                match self.manager.store().record_logged_delivery(new).await? {
                    LoggedDelivery::Recovered { id } => {
                        tracing::warn!(mall_id = %mall, event_id = id, event_no = entry.event_no, "recovered a webhook delivery that never arrived");
                        summary.recovered += 1;
                    }
                    LoggedDelivery::Confirmed { .. } => summary.confirmed += 1,
                }
            }
            summary.logged += page.len();
            match next {
                Some(next) => after = Some(next),
                None => return Ok(summary),
            }
        }
    }

    async fn page(
        &self,
        mall: &MallId,
        since: &str,
        after: Option<&str>,
    ) -> Result<Vec<LogEntry>, ReconcileError> {
        let limit = PAGE.to_string();
        let mut query = vec![("requested_start_date", since), ("limit", limit.as_str())];
        if let Some(after) = after {
            query.push(("since_log_id", after));
        }
        let body = self
            .client
            .mall(mall.clone())
            .call(reqwest::Method::GET, "/webhooks/logs", &query, None)
            .await?;
        let logs: Logs =
            serde_json::from_value(body).map_err(|e| ReconcileError::Malformed(e.to_string()))?;
        Ok(logs.logs)
    }
}
