//! Waking the exchange worker when a code arrives: LISTEN/NOTIFY on PostgreSQL (the insert
//! trigger notifies `cafe24_authorization_codes`), a plain timer on SQLite.

use std::time::Duration;

use sqlx::postgres::PgListener;

pub const CHANNEL: &str = "cafe24_authorization_codes";

pub struct CodeWakeups {
    listener: Option<PgListener>,
}

impl CodeWakeups {
    pub fn polling() -> Self {
        Self { listener: None }
    }

    pub(crate) fn listening(listener: PgListener) -> Self {
        Self {
            listener: Some(listener),
        }
    }

    /// Whether notifications arrive (otherwise the caller should poll briskly).
    pub fn is_listening(&self) -> bool {
        self.listener.is_some()
    }

    /// Returns when a code may be waiting: on a notification, or after `max_wait`. A broken
    /// listener reconnects by itself; notifications missed meanwhile are covered by the timeout.
    pub async fn wait(&mut self, max_wait: Duration) {
        match &mut self.listener {
            Some(listener) => {
                if let Ok(Err(e)) = tokio::time::timeout(max_wait, listener.recv()).await {
                    tracing::warn!(error = %e, "code listener interrupted; reconnecting");
                    // Don't spin while the database is down.
                    tokio::time::sleep(max_wait.min(Duration::from_secs(1))).await;
                }
            }
            None => tokio::time::sleep(max_wait).await,
        }
    }
}
