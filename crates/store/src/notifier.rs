//! Waking exchange workers in other processes without serialising commits. A `pg_notify` in
//! the inserting transaction takes PostgreSQL's global notification lock through that
//! transaction's commit (its WAL flush included), so under load every callback's commit waits
//! for the previous one. Sessions of a store that coalesces set `cafe24.code_notify =
//! 'deferred'` (the trigger then stays silent) and notify at most once per
//! [`COALESCE_WINDOW`]: a callback that finds the window open notifies within its own insert
//! (as fast as the trigger, and rare enough not to serialise anything); the others poke this
//! notifier after their insert commits, and it sends one notification for all of them when the
//! window opens.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection;
use tokio::sync::Notify;

use crate::wakeups::CHANNEL;

/// The most notifications one process sends: one per window (the in-process wake is instant).
pub(crate) const COALESCE_WINDOW: Duration = Duration::from_millis(1);

/// The session setting that silences the insert trigger (migration 0005).
pub(crate) const DEFERRED: (&str, &str) = ("cafe24.code_notify", "deferred");

struct Clock {
    origin: Instant,
    /// When the last notification was sent or claimed, in µs since `origin` (0: never).
    last_us: AtomicU64,
    /// A poke is waiting for the notifier task.
    pending: AtomicBool,
}

impl Clock {
    fn now_us(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_micros())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Claims the window if it is open: the caller notifies now.
    fn claim(&self) -> bool {
        let now = self.now_us();
        let last = self.last_us.load(Ordering::Acquire);
        let window = COALESCE_WINDOW.as_micros() as u64;
        (last == 0 || now.saturating_sub(last) >= window)
            && !self.pending.load(Ordering::Acquire)
            && self
                .last_us
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// When the window opens again.
    fn opens_at(&self) -> Instant {
        let last = self.last_us.load(Ordering::Acquire);
        self.origin + Duration::from_micros(last) + COALESCE_WINDOW
    }
}

pub(crate) struct CodeNotifier {
    options: PgConnectOptions,
    poke: Arc<Notify>,
    clock: Arc<Clock>,
    task: OnceLock<tokio::task::AbortHandle>,
}

impl CodeNotifier {
    pub(crate) fn new(options: PgConnectOptions) -> Self {
        Self {
            options,
            poke: Arc::new(Notify::new()),
            clock: Arc::new(Clock {
                origin: Instant::now(),
                last_us: AtomicU64::new(0),
                pending: AtomicBool::new(false),
            }),
            task: OnceLock::new(),
        }
    }

    /// Whether the insert about to run should notify within its own statement (the window is
    /// open and taken by it). Otherwise call [`CodeNotifier::poke`] once it has stored a row.
    pub(crate) fn notify_inline(&self) -> bool {
        self.clock.claim()
    }

    /// A code was committed without a notification: make sure one follows.
    pub(crate) fn poke(&self) {
        self.task.get_or_init(|| {
            tokio::spawn(run(
                self.options.clone(),
                self.poke.clone(),
                self.clock.clone(),
            ))
            .abort_handle()
        });
        self.clock.pending.store(true, Ordering::Release);
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

async fn run(options: PgConnectOptions, poke: Arc<Notify>, clock: Arc<Clock>) {
    let mut session: Option<PgConnection> = None;
    loop {
        // One stored permit stands for every poke since the last notification.
        poke.notified().await;
        tokio::time::sleep_until(clock.opens_at().into()).await;
        clock.pending.store(false, Ordering::Release);
        clock.last_us.store(clock.now_us(), Ordering::Release);
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
    }
}
