//! The callback's insert, grouped. Each callback waits for its own row, but concurrent
//! callbacks share statements: a few insert runners take whatever is queued when they start
//! (at most [`MAX_BATCH`] rows) and insert it in one statement — one transaction, one WAL flush
//! — so under load the database commits a handful of rows at a time instead of one, and alone a
//! callback goes at once with a batch of one. Runners are tasks of their own: a callback that
//! is abandoned (its client left, a timeout) never abandons the rows batched with it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use cafe24_core::secret::AuthorizationCode;
use cafe24_core::MallId;
use tokio::sync::oneshot;

use crate::notifier::CodeNotifier;
use crate::pg_pool::{PgConnections, Priority};
use crate::{NewAuthorizationCode, StoreError};

/// Rows one statement inserts at most.
pub(crate) const MAX_BATCH: usize = 64;

/// Insert statements in flight at once (each on its own connection).
pub(crate) const RUNNERS: usize = 4;

/// Contract §6.3's insert for many rows: the pending cap counts each mall's waiting codes as the
/// single-row form does, plus the rows of the same mall earlier in the batch.
macro_rules! insert_batch {
    () => {
        "
WITH input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[])
        WITH ORDINALITY AS i(code, state, mall_id, cap, ord)
), ranked AS (
    SELECT i.*, row_number() OVER (PARTITION BY i.mall_id ORDER BY i.ord) AS rank FROM input i
), waiting AS (
    SELECT m.mall_id,
           (SELECT count(*) FROM cafe24.authorization_codes c
            WHERE c.mall_id = m.mall_id AND c.status IN ('pending', 'processing')
              AND c.created_at > now() - interval '120 seconds') AS n
    FROM (SELECT DISTINCT mall_id FROM input) m
)
INSERT INTO cafe24.authorization_codes (code, state, mall_id)
SELECT r.code, r.state, r.mall_id FROM ranked r JOIN waiting w USING (mall_id)
WHERE w.n + r.rank <= r.cap
ORDER BY r.ord
ON CONFLICT (state) DO NOTHING
RETURNING id, state"
    };
}

/// Contract §6.3's insert as written, for a batch of one (the statement a lone callback runs).
macro_rules! insert_one {
    () => {
        "
WITH waiting AS (
    SELECT count(*) AS n FROM cafe24.authorization_codes
    WHERE mall_id = $3 AND status IN ('pending', 'processing')
      AND created_at > now() - interval '120 seconds'
)
INSERT INTO cafe24.authorization_codes (code, state, mall_id)
SELECT $1, $2, $3 FROM waiting WHERE n < $4
ON CONFLICT (state) DO NOTHING RETURNING id, state"
    };
}

/// What a statement that also wakes the workers adds: notifications sent within one
/// transaction are delivered once, at its commit.
macro_rules! and_notify {
    () => {
        ", pg_notify('cafe24_authorization_codes', '')::text"
    };
}

/// The four statements, `[plain, waking the workers]`.
const INSERT_ONE: [&str; 2] = [insert_one!(), concat!(insert_one!(), and_notify!())];
const INSERT_BATCH: [&str; 2] = [insert_batch!(), concat!(insert_batch!(), and_notify!())];

struct Pending {
    code: AuthorizationCode,
    state: String,
    mall: MallId,
    cap: i64,
    reply: oneshot::Sender<Result<Option<i64>, StoreError>>,
}

struct Queue {
    waiting: VecDeque<Pending>,
    runners: usize,
}

struct Shared {
    conns: Arc<PgConnections>,
    notifier: Option<CodeNotifier>,
    queue: Mutex<Queue>,
}

pub(crate) struct CodeInserts {
    shared: Arc<Shared>,
}

impl CodeInserts {
    pub(crate) fn new(conns: Arc<PgConnections>, notifier: Option<CodeNotifier>) -> Self {
        Self {
            shared: Arc::new(Shared {
                conns,
                notifier,
                queue: Mutex::new(Queue {
                    waiting: VecDeque::new(),
                    runners: 0,
                }),
            }),
        }
    }

    /// The row's id, or `None` when nothing was stored (the state exists, or the mall's
    /// pending cap is reached).
    pub(crate) async fn insert(
        &self,
        new: NewAuthorizationCode<'_>,
    ) -> Result<Option<i64>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let start_runner = {
            let mut queue = self.shared.lock();
            queue.waiting.push_back(Pending {
                code: new.code.clone(),
                state: new.state.to_owned(),
                mall: new.mall_id.clone(),
                cap: i64::from(new.max_pending),
                reply,
            });
            let start = queue.runners < RUNNERS;
            if start {
                queue.runners += 1;
            }
            start
        };
        if start_runner {
            tokio::spawn(run(self.shared.clone()));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Corrupt("the insert runner stopped".into())))
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn insert(&self, batch: &[Pending]) -> Result<HashMap<String, i64>, StoreError> {
        let inline = self
            .notifier
            .as_ref()
            .is_some_and(CodeNotifier::notify_inline);
        let mut lease = self.conns.acquire_as(Priority::Foreground).await?;
        let rows: Result<Vec<(i64, String)>, _> = if let [one] = batch {
            sqlx::query_as(INSERT_ONE[usize::from(inline)])
                .bind(one.code.expose_secret())
                .bind(&one.state)
                .bind(one.mall.as_str())
                .bind(one.cap)
                .fetch_all(lease.conn())
                .await
        } else {
            let codes: Vec<&str> = batch.iter().map(|p| p.code.expose_secret()).collect();
            let states: Vec<&str> = batch.iter().map(|p| p.state.as_str()).collect();
            let malls: Vec<&str> = batch.iter().map(|p| p.mall.as_str()).collect();
            let caps: Vec<i64> = batch.iter().map(|p| p.cap).collect();
            sqlx::query_as(INSERT_BATCH[usize::from(inline)])
                .bind(codes)
                .bind(states)
                .bind(malls)
                .bind(caps)
                .fetch_all(lease.conn())
                .await
        };
        let stored = lease.finish(rows)?;
        if !stored.is_empty() && !inline {
            if let Some(notifier) = &self.notifier {
                notifier.poke();
            }
        }
        Ok(stored.into_iter().map(|(id, state)| (state, id)).collect())
    }
}

/// Counts a runner out if it ends any other way than by finding the queue empty (a panic),
/// and hands what is queued to a new runner, so no row waits for a dead one.
struct Running {
    shared: Arc<Shared>,
    counted_out: AtomicBool,
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.counted_out.load(Ordering::Relaxed) {
            return;
        }
        let mut queue = self.shared.lock();
        if queue.waiting.is_empty() {
            queue.runners -= 1;
        } else {
            tokio::spawn(run(self.shared.clone()));
        }
    }
}

async fn run(shared: Arc<Shared>) {
    let running = Running {
        shared,
        counted_out: AtomicBool::new(false),
    };
    loop {
        let batch: Vec<Pending> = {
            let mut queue = running.shared.lock();
            if queue.waiting.is_empty() {
                // Counted out under the lock producers check: no row is left without a runner.
                queue.runners -= 1;
                running.counted_out.store(true, Ordering::Relaxed);
                return;
            }
            let n = queue.waiting.len().min(MAX_BATCH);
            queue.waiting.drain(..n).collect()
        };
        match running.shared.insert(&batch).await {
            Ok(mut ids) => {
                for pending in batch {
                    // Two callbacks with one state in a batch: the first gets the row.
                    let id = ids.remove(&pending.state);
                    let _ = pending.reply.send(Ok(id));
                }
            }
            Err(error) => {
                let unavailable = error.is_unavailable();
                let message = error.to_string();
                let mut first = Some(error);
                for pending in batch {
                    let error = first
                        .take()
                        .unwrap_or_else(|| sibling(unavailable, &message));
                    let _ = pending.reply.send(Err(error));
                }
            }
        }
    }
}

/// The batch's error for the other rows of the batch.
fn sibling(unavailable: bool, message: &str) -> StoreError {
    let source = sqlx::Error::Io(std::io::Error::other(message.to_owned()));
    if unavailable {
        StoreError::Unavailable(source)
    } else {
        StoreError::Database(source)
    }
}
