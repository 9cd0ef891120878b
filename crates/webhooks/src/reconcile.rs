//! Reconciliation with Cafe24's own record of deliveries (`GET /api/v2/admin/webhooks/logs`,
//! scope `mall.read_application`): each logged delivery either confirms the event we stored
//! or, if it never reached us, is stored now and dispatched like any other.

use std::sync::Arc;
use std::time::Duration;

use cafe24_core::MallId;
use cafe24_store::{LoggedDelivery, MallStatus, NewWebhookEvent, StoreError};
use cafe24_tokens::{TokenError, TokenManager};
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
    Token(#[from] TokenError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("Cafe24's webhook logs: {0}")]
    Api(String),
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
}

pub struct Reconciler {
    manager: Arc<TokenManager>,
    /// Whether deliveries are keyed by trace id (the receiver's trace header is configured).
    keyed_by_trace: bool,
    window: Duration,
    http: reqwest::Client,
}

impl Reconciler {
    pub fn new(manager: Arc<TokenManager>, keyed_by_trace: bool, window: Duration) -> Self {
        Self {
            manager,
            keyed_by_trace,
            window,
            http: reqwest::Client::new(),
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
        loop {
            let page = self.page(mall, &since, after.as_deref()).await?;
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
            match page.last() {
                Some(last) if page.len() == PAGE => after = Some(last.log_id.clone()),
                _ => return Ok(summary),
            }
        }
    }

    async fn page(
        &self,
        mall: &MallId,
        since: &str,
        after: Option<&str>,
    ) -> Result<Vec<LogEntry>, ReconcileError> {
        let url = self
            .manager
            .oauth()
            .app()
            .base_url
            .endpoint(mall, "/api/v2/admin/webhooks/logs");
        let limit = PAGE.to_string();
        let mut query = vec![("requested_start_date", since), ("limit", limit.as_str())];
        if let Some(after) = after {
            query.push(("since_log_id", after));
        }
        let mut token = self.manager.access_token(mall).await?;
        for attempt in 0..2 {
            let mut request = self
                .http
                .get(&url)
                .query(&query)
                .bearer_auth(token.expose_secret());
            if let Some(version) = &self.manager.oauth().app().api_version {
                request = request.header("X-Cafe24-Api-Version", version);
            }
            let response = request
                .send()
                .await
                .map_err(|e| ReconcileError::Api(e.without_url().to_string()))?;
            let status = response.status().as_u16();
            if status == 401 && attempt == 0 {
                token = self.manager.refresh_rejected(mall, &token).await?;
                continue;
            }
            if status != 200 {
                let text: String = response
                    .text()
                    .await
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect();
                return Err(ReconcileError::Api(format!("answered {status}: {text}")));
            }
            let logs: Logs = response.json().await.map_err(|e| {
                ReconcileError::Api(format!("unreadable answer: {}", e.without_url()))
            })?;
            return Ok(logs.logs);
        }
        Err(ReconcileError::Api(
            "the access token was refused twice".into(),
        ))
    }
}
