//! The worker: exchanges codes as they arrive (woken by NOTIFY on PostgreSQL, a 200 ms poll on
//! SQLite) and runs keep-alive passes. Runs in `worker` or inside `serve`. On shutdown it starts
//! no new work and lets calls already sent to Cafe24 finish.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use cafe24_store::CodeWakeups;
use tokio::sync::{watch, Notify};

use crate::exchange::Exchanger;
use crate::keepalive::{due_malls, refresh_malls};
use crate::manager::TokenManager;

pub struct Worker {
    manager: Arc<TokenManager>,
    code_stored: Arc<Notify>,
}

impl Worker {
    pub fn new(manager: Arc<TokenManager>) -> Self {
        Self {
            manager,
            code_stored: Arc::new(Notify::new()),
        }
    }

    /// Also wake up when this is signalled (the in-process server stores a code).
    pub fn woken_by(mut self, code_stored: Arc<Notify>) -> Self {
        self.code_stored = code_stored;
        self
    }

    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let (stop, stopped) = watch::channel(false);
        let exchange = tokio::spawn(exchange_loop(
            self.manager.clone(),
            self.code_stored,
            stopped.clone(),
        ));
        let keepalive = tokio::spawn(keepalive_loop(self.manager.clone(), stopped));
        shutdown.await;
        let _ = stop.send(true);
        for task in [exchange, keepalive] {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "a worker loop panicked");
            }
        }
        tracing::info!("worker stopped");
    }
}

async fn exchange_loop(
    manager: Arc<TokenManager>,
    code_stored: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let exchanger = Exchanger::new(manager.clone());
    let mut wakeups = match manager.store().code_wakeups().await {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot LISTEN for new codes; polling instead");
            CodeWakeups::polling()
        }
    };
    // With notifications the timer is only a safety net; without them it is the poll.
    let idle = if wakeups.is_listening() {
        Duration::from_secs(2)
    } else {
        Duration::from_millis(200)
    };
    while !*stop.borrow() {
        match exchanger.run_once().await {
            Ok(s) if s.claimed > 0 => {
                tracing::debug!(
                    claimed = s.claimed,
                    exchanged = s.exchanged,
                    failed = s.failed,
                    retried = s.retried,
                    "exchange pass"
                );
                continue; // more may be queued
            }
            Ok(s) if s.expired > 0 => tracing::warn!(
                expired = s.expired,
                "codes expired before they could be exchanged"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "exchange pass failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        tokio::select! {
            _ = stop.changed() => {}
            () = wakeups.wait(idle) => {}
            () = code_stored.notified() => {}
        }
    }
}

async fn keepalive_loop(manager: Arc<TokenManager>, mut stop: watch::Receiver<bool>) {
    let window = manager.settings().keepalive_window;
    let interval = manager.settings().keepalive_interval;
    while !*stop.borrow() {
        match due_malls(&manager, window).await {
            Ok(malls) if !malls.is_empty() => {
                let s = refresh_malls(&manager, malls, window, &stop, None, &|| {}).await;
                tracing::info!(
                    due = s.due,
                    refreshed = s.refreshed,
                    skipped = s.skipped,
                    failed = s.failed,
                    "keep-alive pass"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "keep-alive pass failed"),
        }
        tokio::select! {
            _ = stop.changed() => {}
            () = tokio::time::sleep(interval) => {}
        }
    }
}
