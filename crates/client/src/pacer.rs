//! Per-mall pacing: a client-side leaky bucket that mirrors Cafe24's (40 deep, draining 2 calls
//! per second), corrected by every `X-Api-Call-Limit: used/size` answer, and paused for the
//! seconds `X-Cafe24-Call-Remain`/`X-Cafe24-Time-Remain` say. Calls wait for room in arrival
//! order; nothing is refused. One [`Pacers`] registry per process is shared by every task, and
//! each mall has its own bucket, so malls never slow each other.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cafe24_core::MallId;

use crate::timer::Timer;

/// Slack for float noise: 40 calls must fit a 40-deep bucket.
const EPSILON: f64 = 1e-9;

/// Longest pause one answer can impose on a mall (`*-Remain` headers, a 429). Cafe24's blocks
/// last seconds; a larger value is a fault, and believing it would stall the mall for good (or
/// overflow the clock).
pub const MAX_PAUSE: Duration = Duration::from_secs(600);

/// The bucket being mirrored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketSpec {
    pub size: f64,
    pub drain_per_sec: f64,
}

impl Default for BucketSpec {
    fn default() -> Self {
        Self {
            size: 40.0,
            drain_per_sec: 2.0,
        }
    }
}

/// What Cafe24 said about the bucket in one response.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LimitReport {
    /// `X-Api-Call-Limit` as `(used, size)`.
    pub call_limit: Option<(u32, u32)>,
    /// The larger of `X-Cafe24-Call-Remain` and `X-Cafe24-Time-Remain`, in seconds, at most
    /// [`MAX_PAUSE`]; negative or non-numeric values are ignored.
    pub remain_secs: Option<u64>,
}

impl LimitReport {
    pub fn from_headers(headers: &reqwest::header::HeaderMap) -> Self {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let call_limit = text("x-api-call-limit").and_then(|v| {
            let (used, size) = v.split_once('/')?;
            Some((used.trim().parse().ok()?, size.trim().parse().ok()?))
        });
        let remain_secs = ["x-cafe24-call-remain", "x-cafe24-time-remain"]
            .iter()
            .filter_map(|n| text(n)?.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(|s| s.min(MAX_PAUSE.as_secs_f64()).ceil() as u64)
            .max();
        Self {
            call_limit,
            remain_secs,
        }
    }
}

#[derive(Debug)]
struct Level {
    /// Calls started and not yet drained, as last computed.
    level: f64,
    at: Duration,
    paused_until: Duration,
}

/// Counters of one mall's pacing (exact, for tests and diagnosis).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PaceStats {
    /// Calls let through.
    pub granted: u64,
    /// Of those, calls that had to wait for room or for a pause.
    pub delayed: u64,
    /// Total time calls waited, in milliseconds (by the pacer's timer).
    pub waited_ms: u64,
    /// Answers whose `X-Api-Call-Limit` showed more use than the mirror held.
    pub corrections: u64,
    /// Pauses set by `*-Remain` headers or by a 429.
    pub pauses: u64,
}

/// Waiting for room ran past the call's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no room in the mall's call budget before the deadline")]
pub struct PastDeadline;

/// One mall's bucket mirror.
pub struct MallPacer {
    spec: BucketSpec,
    timer: Arc<dyn Timer>,
    state: Mutex<Level>,
    /// Waiters queue here in arrival order; only the head sleeps on the bucket.
    gate: tokio::sync::Mutex<()>,
    granted: AtomicU64,
    delayed: AtomicU64,
    waited_ms: AtomicU64,
    corrections: AtomicU64,
    pauses: AtomicU64,
}

impl std::fmt::Debug for MallPacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MallPacer")
            .field("spec", &self.spec)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Level {
    fn drain(&mut self, spec: BucketSpec, now: Duration) {
        if now > self.at {
            let elapsed = (now - self.at).as_secs_f64();
            self.level = (self.level - elapsed * spec.drain_per_sec).max(0.0);
            self.at = now;
        }
    }
}

impl MallPacer {
    pub fn new(spec: BucketSpec, timer: Arc<dyn Timer>) -> Self {
        let at = timer.now();
        Self {
            spec,
            timer,
            state: Mutex::new(Level {
                level: 0.0,
                at,
                paused_until: Duration::ZERO,
            }),
            gate: tokio::sync::Mutex::new(()),
            granted: AtomicU64::new(0),
            delayed: AtomicU64::new(0),
            waited_ms: AtomicU64::new(0),
            corrections: AtomicU64::new(0),
            pauses: AtomicU64::new(0),
        }
    }

    fn level(&self) -> std::sync::MutexGuard<'_, Level> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until one more call fits (and no pause holds), then charges it. Gives up only if
    /// the wait would end after `deadline` (on the pacer's timer).
    pub async fn acquire(&self, deadline: Option<Duration>) -> Result<(), PastDeadline> {
        let _turn = self.gate.lock().await;
        let started = self.timer.now();
        loop {
            let wake = {
                let mut s = self.level();
                let now = self.timer.now();
                s.drain(self.spec, now);
                if s.paused_until > now {
                    s.paused_until
                } else if s.level + 1.0 <= self.spec.size + EPSILON {
                    s.level += 1.0;
                    let waited = now.saturating_sub(started);
                    self.granted.fetch_add(1, Ordering::Relaxed);
                    if !waited.is_zero() {
                        self.delayed.fetch_add(1, Ordering::Relaxed);
                        self.waited_ms
                            .fetch_add(waited.as_millis() as u64, Ordering::Relaxed);
                    }
                    return Ok(());
                } else {
                    let missing = s.level + 1.0 - self.spec.size;
                    now + Duration::from_secs_f64(missing / self.spec.drain_per_sec)
                }
            };
            if deadline.is_some_and(|d| wake > d) {
                return Err(PastDeadline);
            }
            self.timer.sleep_until(wake).await;
        }
    }

    /// Corrects the mirror from an answer: never below what Cafe24 reports (other processes
    /// share the bucket), and paused for the seconds the `*-Remain` headers say.
    pub fn observe(&self, report: &LimitReport) {
        let mut s = self.level();
        let now = self.timer.now();
        s.drain(self.spec, now);
        if let Some((used, _size)) = report.call_limit {
            let used = f64::from(used).min(self.spec.size);
            if used > s.level.ceil() {
                self.corrections.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(used, mirrored = s.level, "bucket mirror corrected upward");
            }
            s.level = s.level.max(used);
        }
        if let Some(secs) = report.remain_secs {
            self.pause_locked(&mut s, now, Duration::from_secs(secs));
        }
    }

    /// A 429: the bucket is full whatever the mirror thought; pause at least `at_least` (at
    /// most [`MAX_PAUSE`]).
    pub fn limited(&self, at_least: Duration) {
        let mut s = self.level();
        let now = self.timer.now();
        s.drain(self.spec, now);
        s.level = s.level.max(self.spec.size);
        self.pause_locked(&mut s, now, at_least);
    }

    fn pause_locked(&self, s: &mut Level, now: Duration, pause: Duration) {
        let until = now.saturating_add(pause.min(MAX_PAUSE));
        if until > s.paused_until {
            s.paused_until = until;
            self.pauses.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The mirrored level now.
    pub fn current_level(&self) -> f64 {
        let mut s = self.level();
        s.drain(self.spec, self.timer.now());
        s.level
    }

    pub fn stats(&self) -> PaceStats {
        PaceStats {
            granted: self.granted.load(Ordering::Relaxed),
            delayed: self.delayed.load(Ordering::Relaxed),
            waited_ms: self.waited_ms.load(Ordering::Relaxed),
            corrections: self.corrections.load(Ordering::Relaxed),
            pauses: self.pauses.load(Ordering::Relaxed),
        }
    }
}

/// Every mall's pacer, created on first use. Share one per process.
pub struct Pacers {
    spec: BucketSpec,
    timer: Arc<dyn Timer>,
    malls: Mutex<HashMap<MallId, Arc<MallPacer>>>,
}

impl std::fmt::Debug for Pacers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pacers")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl Pacers {
    pub fn new(spec: BucketSpec, timer: Arc<dyn Timer>) -> Self {
        Self {
            spec,
            timer,
            malls: Mutex::new(HashMap::new()),
        }
    }

    pub fn mall(&self, mall: &MallId) -> Arc<MallPacer> {
        let mut malls = self
            .malls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        malls
            .entry(mall.clone())
            .or_insert_with(|| Arc::new(MallPacer::new(self.spec, self.timer.clone())))
            .clone()
    }

    pub fn timer(&self) -> &Arc<dyn Timer> {
        &self.timer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timer::VirtualTimer;

    fn pacer() -> (Arc<VirtualTimer>, MallPacer) {
        let timer = Arc::new(VirtualTimer::new(|_| {}));
        let pacer = MallPacer::new(BucketSpec::default(), timer.clone());
        (timer, pacer)
    }

    #[tokio::test]
    async fn forty_go_at_once_then_two_per_second() {
        let (timer, p) = pacer();
        for _ in 0..40 {
            p.acquire(None).await.expect("room");
        }
        assert_eq!(timer.now(), Duration::ZERO);
        for _ in 0..10 {
            p.acquire(None).await.expect("room");
        }
        assert_eq!(timer.now(), Duration::from_secs(5));
        let s = p.stats();
        assert_eq!((s.granted, s.delayed), (50, 10));
    }

    #[tokio::test]
    async fn a_header_showing_more_use_raises_the_mirror_and_remain_pauses() {
        let (timer, p) = pacer();
        p.acquire(None).await.expect("room");
        p.observe(&LimitReport {
            call_limit: Some((40, 40)),
            remain_secs: Some(3),
        });
        assert_eq!(p.stats().corrections, 1);
        p.acquire(None).await.expect("room");
        assert_eq!(timer.now(), Duration::from_secs(3));
    }

    #[tokio::test]
    async fn a_wait_beyond_the_deadline_is_refused_without_charging() {
        let (_timer, p) = pacer();
        p.limited(Duration::from_secs(10));
        assert_eq!(
            p.acquire(Some(Duration::from_secs(5))).await,
            Err(PastDeadline)
        );
        assert_eq!(p.stats().granted, 0);
    }

    #[test]
    fn headers_are_read_tolerantly() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("x-api-call-limit", "12/40".parse().expect("value"));
        h.insert("x-cafe24-call-remain", "2".parse().expect("value"));
        h.insert("x-cafe24-time-remain", "3.5".parse().expect("value"));
        let r = LimitReport::from_headers(&h);
        assert_eq!(r.call_limit, Some((12, 40)));
        assert_eq!(r.remain_secs, Some(4));
        h.insert("x-api-call-limit", "junk".parse().expect("value"));
        assert_eq!(LimitReport::from_headers(&h).call_limit, None);
    }

    #[tokio::test]
    async fn absurd_remain_values_neither_panic_nor_pause_past_the_bound() {
        let bound = Duration::from_secs(600);
        for value in [
            "1e30",
            "1e309",
            "18446744073709551616",
            "99999999999999999999999999999",
            "86400000",
            "-5",
            "-1e30",
            "NaN",
            "inf",
            "-inf",
        ] {
            for header in ["x-cafe24-call-remain", "x-cafe24-time-remain"] {
                let (timer, p) = pacer();
                // A process that has been running for a while.
                timer.advance(Duration::from_secs(3600));
                let mut h = reqwest::header::HeaderMap::new();
                h.insert(header, value.parse().expect("value"));
                let report = LimitReport::from_headers(&h);
                p.observe(&report);
                p.acquire(None).await.expect("room");
                let paused = timer.now() - Duration::from_secs(3600);
                assert!(paused <= bound, "{header}: {value}: paused {paused:?}");
                assert!(
                    report.remain_secs.is_none_or(|s| s <= bound.as_secs()),
                    "{header}: {value} -> {report:?}"
                );
            }
        }
        // However long a 429 asks the mall to wait.
        let (timer, p) = pacer();
        timer.advance(Duration::from_secs(3600));
        p.limited(Duration::MAX);
        p.acquire(None).await.expect("room");
        let paused = timer.now() - Duration::from_secs(3600);
        assert!(paused <= bound, "paused {paused:?}");
    }
}
