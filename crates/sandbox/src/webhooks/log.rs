//! Per-mall webhook state: reception switch and the delivery log behind `/webhooks/logs`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::admin::query::shop_no;
use crate::clock::parse_filter_time;
use crate::error::AdminError;

/// One delivery attempt, as `GET /webhooks/logs` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    pub log_id: String,
    /// `G` first send, `R` retry, `T` test send.
    pub log_type: String,
    pub event_no: u32,
    pub mall_id: String,
    pub trace_id: String,
    pub requested_time: String,
    pub request_endpoint: String,
    /// The JSON body, as a JSON-encoded string (like Cafe24).
    pub request_body: String,
    pub success: String,
    pub response_http_code: Option<u16>,
    pub response_body: Option<String>,
    #[serde(skip)]
    pub requested_at: DateTime<Utc>,
    /// The app the delivery went to (not part of Cafe24's shape).
    #[serde(skip)]
    pub client_id: String,
}

/// Webhook reception and history of one mall.
#[derive(Debug)]
pub struct WebhookState {
    pub reception: bool,
    pub logs: Vec<LogEntry>,
    pub consecutive_failures: u32,
}

impl Default for WebhookState {
    fn default() -> Self {
        Self {
            reception: true,
            logs: Vec::new(),
            consecutive_failures: 0,
        }
    }
}

/// Filters of `GET /webhooks/logs`.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub event_no: Option<u32>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub success: Option<String>,
    pub log_type: Option<String>,
    pub since_log_id: Option<String>,
    pub limit: usize,
}

impl LogQuery {
    pub fn parse(params: &HashMap<String, String>) -> Result<Self, AdminError> {
        shop_no(params)?;
        let date = |key: &str| -> Result<Option<DateTime<Utc>>, AdminError> {
            params
                .get(key)
                .map(|v| {
                    parse_filter_time(v).ok_or_else(|| {
                        AdminError::bad_parameter(key, &format!("{key} is not a valid date."))
                    })
                })
                .transpose()
        };
        let limit = match params.get("limit") {
            None => 100,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=10_000).contains(n))
                .ok_or_else(|| {
                    AdminError::bad_parameter("limit", "limit must be between 1 and 10000.")
                })?,
        };
        let event_no = params
            .get("event_no")
            .map(|v| v.parse::<u32>())
            .transpose()
            .map_err(|_| AdminError::bad_parameter("event_no", "event_no must be a number."))?;
        let one_of = |key: &str, allowed: &[&str]| -> Result<Option<String>, AdminError> {
            match params.get(key) {
                None => Ok(None),
                Some(v) if allowed.contains(&v.as_str()) => Ok(Some(v.clone())),
                Some(_) => Err(AdminError::bad_parameter(
                    key,
                    &format!("{key} must be one of {}.", allowed.join(", ")),
                )),
            }
        };
        Ok(Self {
            event_no,
            start: date("requested_start_date")?,
            end: date("requested_end_date")?,
            success: one_of("success", &["T", "F"])?,
            log_type: one_of("log_type", &["G", "R", "T"])?,
            since_log_id: params.get("since_log_id").cloned(),
            limit,
        })
    }

    /// The matching entries, oldest first.
    pub fn select<'a>(&self, logs: &'a [LogEntry]) -> Vec<&'a LogEntry> {
        let start_at = match &self.since_log_id {
            Some(id) => logs
                .iter()
                .position(|l| &l.log_id == id)
                .map_or(logs.len(), |i| i + 1),
            None => 0,
        };
        logs[start_at..]
            .iter()
            .filter(|l| self.event_no.is_none_or(|e| e == l.event_no))
            .filter(|l| self.start.is_none_or(|t| l.requested_at >= t))
            .filter(|l| self.end.is_none_or(|t| l.requested_at <= t))
            .filter(|l| self.success.as_ref().is_none_or(|s| *s == l.success))
            .filter(|l| self.log_type.as_ref().is_none_or(|t| *t == l.log_type))
            .take(self.limit)
            .collect()
    }
}
