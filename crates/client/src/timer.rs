//! Time as a parameter for pacing and backoff: the wall clock in production, a virtual clock
//! in tests, so a minute of Cafe24's bucket passes in milliseconds without any assertion on
//! wall-clock time.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

/// A future returned by [`Timer::sleep_until`].
pub type Sleep<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Monotonic time since the timer's origin, and waiting for an instant of it.
pub trait Timer: Send + Sync + 'static {
    fn now(&self) -> Duration;
    /// Resolves once `now() >= at`.
    fn sleep_until(&self, at: Duration) -> Sleep<'_>;
}

/// The process's monotonic clock (tokio's, so `tokio::time::pause` also applies).
#[derive(Debug)]
pub struct SystemTimer {
    origin: tokio::time::Instant,
}

impl Default for SystemTimer {
    fn default() -> Self {
        Self {
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Timer for SystemTimer {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn sleep_until(&self, at: Duration) -> Sleep<'_> {
        Box::pin(tokio::time::sleep_until(self.origin + at))
    }
}

type OnAdvance = Box<dyn Fn(Duration) + Send + Sync>;

/// A clock that moves only when someone waits: `sleep_until(t)` jumps to `t` at once and
/// reports the jump to `on_advance` (a test moves the sandbox's frozen clock with it, under the
/// same lock, so both sides never disagree about the time).
pub struct VirtualTimer {
    now: Mutex<Duration>,
    on_advance: OnAdvance,
}

impl VirtualTimer {
    pub fn new(on_advance: impl Fn(Duration) + Send + Sync + 'static) -> Self {
        Self {
            now: Mutex::new(Duration::ZERO),
            on_advance: Box::new(on_advance),
        }
    }

    /// Moves time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
        (self.on_advance)(by);
    }
}

impl std::fmt::Debug for VirtualTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualTimer")
            .field("now", &self.now())
            .finish_non_exhaustive()
    }
}

impl Timer for VirtualTimer {
    fn now(&self) -> Duration {
        *self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn sleep_until(&self, at: Duration) -> Sleep<'_> {
        Box::pin(async move {
            {
                let mut now = self
                    .now
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if at > *now {
                    let by = at - *now;
                    *now = at;
                    (self.on_advance)(by);
                }
            }
            tokio::task::yield_now().await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn virtual_time_jumps_to_the_wake_up_and_reports_each_jump_once() {
        let moved = Arc::new(AtomicU64::new(0));
        let seen = moved.clone();
        let timer = VirtualTimer::new(move |by| {
            seen.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
        });
        timer.sleep_until(Duration::from_millis(1500)).await;
        timer.sleep_until(Duration::from_millis(1000)).await; // in the past: no jump
        timer.advance(Duration::from_millis(500));
        assert_eq!(timer.now(), Duration::from_millis(2000));
        assert_eq!(moved.load(Ordering::SeqCst), 2000);
    }
}
