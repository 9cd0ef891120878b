//! Waking exchange workers in other processes without serialising commits. A `pg_notify` in
//! the inserting transaction takes PostgreSQL's global notification lock through that
//! transaction's commit (its WAL flush included), so every callback's commit waits for the
//! previous one. Sessions of a store that coalesces set `cafe24.code_notify = 'deferred'`
//! (the trigger then stays silent) and poke this notifier after their insert commits: the
//! first poke after a quiet spell notifies at once, pokes meanwhile fold into one more
//! notification at most every [`COALESCE_WINDOW`].

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection;
use tokio::sync::Notify;

use crate::wakeups::CHANNEL;

/// The most notifications one process sends: one per window (the in-process wake is instant).
pub(crate) const COALESCE_WINDOW: Duration = Duration::from_millis(2);

/// The session setting that silences the insert trigger (migration 0005).
pub(crate) const DEFERRED: (&str, &str) = ("cafe24.code_notify", "deferred");

pub(crate) struct CodeNotifier {
    options: PgConnectOptions,
    poke: Arc<Notify>,
    task: OnceLock<tokio::task::AbortHandle>,
}

impl CodeNotifier {
    pub(crate) fn new(options: PgConnectOptions) -> Self {
        Self {
            options,
            poke: Arc::new(Notify::new()),
            task: OnceLock::new(),
        }
    }

    /// A code was committed: make sure a notification follows.
    pub(crate) fn poke(&self) {
        self.task.get_or_init(|| {
            tokio::spawn(run(self.options.clone(), self.poke.clone())).abort_handle()
        });
        self.poke.notify_one();
    }
}

impl Drop for CodeNotifier {
    fn drop(&mut self) {
        if let Some(task) = self.task.get() {
            task.abort();
        }
    }
}

async fn run(options: PgConnectOptions, poke: Arc<Notify>) {
    let mut session: Option<PgConnection> = None;
    loop {
        // One stored permit stands for every poke since the last notification.
        poke.notified().await;
        if session.is_none() {
            match PgConnection::connect_with(&options).await {
                Ok(conn) => session = Some(conn),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot connect to notify exchange workers; they poll meanwhile")
                }
            }
        }
        if let Some(conn) = session.as_mut() {
            if let Err(e) = sqlx::query("SELECT pg_notify($1, '')")
                .bind(CHANNEL)
                .execute(&mut *conn)
                .await
            {
                tracing::warn!(error = %e, "notifying exchange workers failed; they poll meanwhile");
                session = None;
            }
        }
        tokio::time::sleep(COALESCE_WINDOW).await;
    }
}
