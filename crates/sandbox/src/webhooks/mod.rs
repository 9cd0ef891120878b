//! Webhook deliveries: POST `{"event_no":…,"resource":{…}}` to each app's webhook URL with the
//! configured authentication and trace headers, retries with backoff, and a log entry for
//! every attempt. A fault on the `webhook` endpoint (`drop_next`/`drop_rate`) "loses" a
//! delivery: it is logged as sent but never reaches the app.

pub mod log;
pub mod sign;

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::clock::resource_time;
use crate::config::AppConfig;
use crate::faults::Outcome;
use crate::state::{lock, Mall, SandboxState};
use crate::stats::Counter;
use log::LogEntry;

/// How to fire an event.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FireOptions {
    /// Deliver only to this app (default: every app with a webhook URL).
    pub client_id: Option<String>,
    /// Log the delivery as sent but never send it.
    pub lose: bool,
    /// `T` to mark it as a test send (default `G`).
    pub log_type: Option<String>,
    /// Wait for every attempt to finish before answering.
    pub wait: bool,
}

/// What happened to one app's delivery.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeliveryReport {
    pub client_id: String,
    pub trace_id: String,
    pub endpoint: String,
    /// `queued` (not awaited), `delivered`, `failed`, `lost`.
    pub status: String,
    pub attempts: u32,
}

/// The result of firing one event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FireReport {
    pub event_no: u32,
    pub body: Value,
    pub deliveries: Vec<DeliveryReport>,
    /// False when the mall's reception is off (nothing sent).
    pub reception: bool,
}

fn log_id() -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::thread_rng();
    (0..20)
        .map(|_| ABC[rng.gen_range(0..ABC.len())] as char)
        .collect()
}

/// Fires one event for a mall to the targeted apps.
pub async fn fire(
    state: &SandboxState,
    mall: &Arc<Mall>,
    event_no: u32,
    extra: Value,
    opts: FireOptions,
) -> FireReport {
    let mut resource = serde_json::Map::new();
    resource.insert("mall_id".into(), json!(mall.id));
    resource.insert("event_shop_no".into(), json!(mall.shop_no.to_string()));
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            if k != "mall_id" {
                resource.insert(k, v);
            }
        }
    }
    let body = json!({"event_no": event_no, "resource": Value::Object(resource)});
    let reception = lock(&mall.webhook).reception;
    let mut report = FireReport {
        event_no,
        body: body.clone(),
        deliveries: Vec::new(),
        reception,
    };
    if !reception {
        return report;
    }
    let apps: Vec<Arc<AppConfig>> = state
        .apps()
        .into_iter()
        .filter(|a| a.webhook_url.is_some())
        .filter(|a| opts.client_id.as_ref().is_none_or(|c| *c == a.client_id))
        .collect();
    let body_text = body.to_string();
    let mut handles = Vec::new();
    for app in apps {
        let trace_id = crate::html::random_uuid();
        let endpoint = app.webhook_url.clone().unwrap_or_default();
        let client_id = app.client_id.clone();
        let job = Job {
            state: state.clone(),
            mall: mall.clone(),
            app,
            event_no,
            body: body_text.clone(),
            trace_id: trace_id.clone(),
            lose: opts.lose,
            first_type: opts
                .log_type
                .clone()
                .filter(|t| t == "T")
                .unwrap_or_else(|| "G".into()),
        };
        let handle = tokio::spawn(job.run());
        report.deliveries.push(DeliveryReport {
            client_id,
            trace_id,
            endpoint,
            status: "queued".into(),
            attempts: 0,
        });
        handles.push(handle);
    }
    if opts.wait {
        for (d, h) in report.deliveries.iter_mut().zip(handles) {
            if let Ok(done) = h.await {
                *d = done;
            }
        }
    }
    report
}

struct Job {
    state: SandboxState,
    mall: Arc<Mall>,
    app: Arc<AppConfig>,
    event_no: u32,
    body: String,
    trace_id: String,
    lose: bool,
    first_type: String,
}

impl Job {
    fn record(
        &self,
        log_type: &str,
        endpoint: &str,
        success: bool,
        code: Option<u16>,
        response: Option<String>,
    ) {
        let now = self.state.now();
        let entry = LogEntry {
            log_id: log_id(),
            log_type: log_type.to_string(),
            event_no: self.event_no,
            mall_id: self.mall.id.clone(),
            trace_id: self.trace_id.clone(),
            requested_time: resource_time(now),
            request_endpoint: endpoint.to_string(),
            request_body: self.body.clone(),
            success: if success { "T" } else { "F" }.into(),
            response_http_code: code,
            response_body: response,
            requested_at: now,
            client_id: self.app.client_id.clone(),
        };
        lock(&self.mall.webhook).logs.push(entry);
        self.mall.stats.incr(Counter::WebhookAttempt);
        if !success {
            self.mall.stats.incr(Counter::WebhookFailure);
        }
    }

    async fn run(self) -> DeliveryReport {
        let endpoint = self.app.webhook_url.clone().unwrap_or_default();
        let mut report = DeliveryReport {
            client_id: self.app.client_id.clone(),
            trace_id: self.trace_id.clone(),
            endpoint: endpoint.clone(),
            status: "failed".into(),
            attempts: 0,
        };
        let decision = self.state.faults.decide("webhook", false, &self.mall.id);
        if let Some(d) = decision.latency {
            tokio::time::sleep(d).await;
        }
        if self.lose || decision.outcome == Outcome::Drop {
            self.record(&self.first_type, &endpoint, true, None, None);
            report.status = "lost".into();
            report.attempts = 1;
            return report;
        }
        let cfg = &self.state.config.webhooks;
        let max = cfg.max_attempts.max(1);
        for attempt in 1..=max {
            report.attempts = attempt;
            let log_type = if attempt == 1 {
                self.first_type.as_str()
            } else {
                "R"
            };
            let (ok, code, text) = self.send(&endpoint).await;
            self.record(log_type, &endpoint, ok, code, text);
            if ok {
                report.status = "delivered".into();
                lock(&self.mall.webhook).consecutive_failures = 0;
                return report;
            }
            if attempt < max {
                tokio::time::sleep(Duration::from_millis(cfg.backoff_ms * u64::from(attempt)))
                    .await;
            }
        }
        let mut w = lock(&self.mall.webhook);
        w.consecutive_failures += 1;
        if cfg.disable_after_failures > 0 && w.consecutive_failures >= cfg.disable_after_failures {
            w.reception = false;
        }
        report
    }

    async fn send(&self, endpoint: &str) -> (bool, Option<u16>, Option<String>) {
        let mut req = self
            .state
            .http
            .post(endpoint)
            .header("content-type", "application/json")
            .header(
                self.state.config.webhooks.trace_header.as_str(),
                self.trace_id.as_str(),
            );
        if let Some((name, value)) = sign::auth_header(&self.app.webhook_auth, self.body.as_bytes())
        {
            req = req.header(name, value);
        }
        match req.body(self.body.clone()).send().await {
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                let text: String = text.chars().take(2000).collect();
                (status.is_success(), Some(status.as_u16()), Some(text))
            }
            Err(e) => {
                tracing::debug!(error = %e, "webhook delivery failed");
                (false, None, None)
            }
        }
    }
}
