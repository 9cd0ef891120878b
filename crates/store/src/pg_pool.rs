//! A small PostgreSQL connection pool. sqlx's own pool pings every connection when it is
//! returned (a second round trip and a spawned task per query); this one hands connections
//! back as they are, pings only a connection that sat idle (it may have been closed by the
//! server meanwhile), and discards any connection whose operation did not finish cleanly.
//!
//! Background work (the exchange queue, refreshes, keep-alive, webhook dispatch) may hold at
//! most `max - reserved` connections at once; the rest are kept for the request path (the
//! public callback, webhook intake, readiness), so a burst of background work never makes the
//! callback answer 503 and lose a merchant's code.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::StoreError;

/// A connection idle longer than this is pinged before use.
const STALE_AFTER: Duration = Duration::from_secs(10);

pub(crate) struct PgConnections {
    options: PgConnectOptions,
    idle: Mutex<Vec<(PgConnection, Instant)>>,
    permits: Semaphore,
    /// Background work takes one of these before a connection permit.
    background: Semaphore,
    acquire_timeout: Duration,
}

/// Who asks for a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Priority {
    /// The request path: may use every connection.
    Foreground,
    /// Everything else: leaves the reserved connections alone.
    Background,
}

/// A connection on loan. Call [`Lease::finish`] with the operation's result so a healthy
/// connection goes back to the pool; a lease dropped unfinished (an error, a cancelled request)
/// closes its connection.
pub(crate) struct Lease<'a> {
    conn: Option<PgConnection>,
    pool: &'a PgConnections,
    _permit: SemaphorePermit<'a>,
    _background: Option<SemaphorePermit<'a>>,
    reusable: bool,
}

impl PgConnections {
    /// `reserved` of the `max` connections are kept for [`Priority::Foreground`].
    pub(crate) fn new(
        options: PgConnectOptions,
        max: u32,
        reserved: u32,
        acquire_timeout: Duration,
    ) -> Self {
        let max = usize::try_from(max).unwrap_or(10).max(1);
        let reserved = usize::try_from(reserved).unwrap_or(0).min(max - 1);
        Self {
            options,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(max),
            background: Semaphore::new(max - reserved),
            acquire_timeout,
        }
    }

    /// A connection for background work, within the pool's acquire timeout.
    pub(crate) async fn acquire(&self) -> Result<Lease<'_>, StoreError> {
        self.acquire_as(Priority::Background).await
    }

    pub(crate) async fn acquire_as(&self, priority: Priority) -> Result<Lease<'_>, StoreError> {
        self.acquire_by(priority, tokio::time::Instant::now() + self.acquire_timeout)
            .await
    }

    pub(crate) async fn acquire_by(
        &self,
        priority: Priority,
        deadline: tokio::time::Instant,
    ) -> Result<Lease<'_>, StoreError> {
        let timed_out = |_| StoreError::Unavailable(sqlx::Error::PoolTimedOut);
        let closed = |_| StoreError::Unavailable(sqlx::Error::PoolClosed);
        let background = match priority {
            Priority::Foreground => None,
            Priority::Background => Some(
                tokio::time::timeout_at(deadline, self.background.acquire())
                    .await
                    .map_err(timed_out)?
                    .map_err(closed)?,
            ),
        };
        let permit = tokio::time::timeout_at(deadline, self.permits.acquire())
            .await
            .map_err(timed_out)?
            .map_err(closed)?;
        loop {
            let idle = self.lock().pop();
            let Some((mut conn, since)) = idle else { break };
            if since.elapsed() < STALE_AFTER {
                return Ok(self.lease(conn, permit, background));
            }
            if tokio::time::timeout_at(deadline, conn.ping())
                .await
                .is_ok_and(|r| r.is_ok())
            {
                return Ok(self.lease(conn, permit, background));
            }
            // Dead or slow: drop it and try the next idle one, or connect afresh.
        }
        let conn = tokio::time::timeout_at(deadline, PgConnection::connect_with(&self.options))
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolTimedOut))??;
        Ok(self.lease(conn, permit, background))
    }

    fn lease<'a>(
        &'a self,
        conn: PgConnection,
        permit: SemaphorePermit<'a>,
        background: Option<SemaphorePermit<'a>>,
    ) -> Lease<'a> {
        Lease {
            conn: Some(conn),
            pool: self,
            _permit: permit,
            _background: background,
            reusable: false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(PgConnection, Instant)>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Refuses new leases and drops idle connections.
    pub(crate) fn close(&self) {
        self.permits.close();
        self.background.close();
        self.lock().clear();
    }
}

impl Lease<'_> {
    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        // Present from construction until drop.
        self.conn
            .as_mut()
            .unwrap_or_else(|| unreachable!("lease used after drop"))
    }

    /// Ends the loan with the operation's result. The connection is kept after success and
    /// after an error the server reported (the session is intact), closed otherwise — and
    /// closed too when the error *is* the server ending the session (57P0x: terminated by an
    /// administrator, shutting down; class 08: connection exception), which arrives as a
    /// database error on a connection that is already dead.
    pub(crate) fn finish<T>(mut self, result: Result<T, sqlx::Error>) -> Result<T, StoreError> {
        self.reusable = match &result {
            Ok(_) | Err(sqlx::Error::RowNotFound) => true,
            Err(sqlx::Error::Database(db)) => !db
                .code()
                .is_some_and(|c| c.starts_with("57P0") || c.starts_with("08")),
            Err(_) => false,
        };
        result.map_err(StoreError::from)
    }

    /// Ends the loan and closes the connection whatever happened: for a session whose state
    /// cannot be trusted (an advisory lock that may still be held).
    pub(crate) fn discard(mut self) {
        self.reusable = false;
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let (true, Some(conn)) = (self.reusable, self.conn.take()) {
            if !self.pool.permits.is_closed() {
                self.pool.lock().push((conn, Instant::now()));
            }
        }
    }
}
