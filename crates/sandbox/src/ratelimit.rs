//! Cafe24's per-mall leaky bucket and the headers that report it.
//!
//! Model (documented in docs/sandbox.md): each accepted Admin call adds one unit; the bucket
//! drains `drain_per_sec` units per second (fractionally, by the sandbox clock); a call that
//! would overflow the bucket is refused with 429. `X-Api-Call-Limit` is `{used}/{size}` with
//! `used` the level rounded up. The usage-based limit is modelled on the same bucket:
//! `X-Cafe24-Call-Usage` and `X-Cafe24-Time-Usage` are the level in percent of the size (the
//! sandbox does not model processing time separately), and `X-Cafe24-Call-Remain` /
//! `X-Cafe24-Time-Remain` (seconds until the next call fits) appear only at ≥ 100 %.

use axum::http::{HeaderMap, HeaderValue};
use chrono::{DateTime, Utc};

use crate::config::RateLimitConfig;

/// One mall's bucket.
#[derive(Debug, Clone)]
pub struct LeakyBucket {
    level: f64,
    updated: DateTime<Utc>,
}

/// What a call saw, for the response headers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketReading {
    pub level: f64,
    pub size: f64,
    pub drain_per_sec: f64,
    pub allowed: bool,
}

impl LeakyBucket {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            level: 0.0,
            updated: now,
        }
    }

    fn drain(&mut self, cfg: &RateLimitConfig, now: DateTime<Utc>) {
        let elapsed = (now - self.updated).num_milliseconds().max(0) as f64 / 1000.0;
        self.level = (self.level - elapsed * cfg.drain_per_sec).max(0.0);
        self.updated = now;
    }

    /// Charges one call if it fits.
    pub fn take(&mut self, cfg: &RateLimitConfig, now: DateTime<Utc>) -> BucketReading {
        self.drain(cfg, now);
        // A tiny epsilon keeps 40 calls at 40.0000001 from being refused by float noise.
        let allowed = !cfg.enabled || self.level + 1.0 <= cfg.bucket_size + 1e-9;
        if allowed {
            self.level += 1.0;
        } else {
            self.level += cfg.blocked_call_penalty;
        }
        self.reading(cfg, allowed)
    }

    /// Reads the level without charging (for responses that are not counted, like 401s).
    pub fn peek(&mut self, cfg: &RateLimitConfig, now: DateTime<Utc>) -> BucketReading {
        self.drain(cfg, now);
        self.reading(cfg, true)
    }

    fn reading(&self, cfg: &RateLimitConfig, allowed: bool) -> BucketReading {
        BucketReading {
            level: self.level,
            size: cfg.bucket_size,
            drain_per_sec: cfg.drain_per_sec,
            allowed,
        }
    }
}

impl BucketReading {
    /// `used` of `X-Api-Call-Limit`, never above the size.
    pub fn used(&self) -> u64 {
        (self.level - 1e-9).ceil().clamp(0.0, self.size) as u64
    }

    pub fn usage_percent(&self) -> u64 {
        if self.size <= 0.0 {
            return 100;
        }
        ((self.level / self.size) * 100.0 - 1e-9).ceil().max(0.0) as u64
    }

    /// Whole seconds until one more call fits.
    pub fn remain_secs(&self) -> u64 {
        let excess = self.level + 1.0 - self.size;
        if excess <= 0.0 || self.drain_per_sec <= 0.0 {
            return 0;
        }
        (excess / self.drain_per_sec).ceil() as u64
    }

    /// Writes `X-Api-Call-Limit` and the usage headers.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        let mut put = |name: &'static str, value: String| {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(name, v);
            }
        };
        put(
            "x-api-call-limit",
            format!("{}/{}", self.used(), self.size as u64),
        );
        let usage = self.usage_percent();
        put("x-cafe24-call-usage", usage.to_string());
        put("x-cafe24-time-usage", usage.to_string());
        if usage >= 100 {
            let remain = self.remain_secs().max(1);
            put("x-cafe24-call-remain", remain.to_string());
            put("x-cafe24-time-remain", remain.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn forty_fit_and_the_forty_first_overflows() {
        let cfg = RateLimitConfig::default();
        let now = Utc::now();
        let mut b = LeakyBucket::new(now);
        for i in 1..=40 {
            let r = b.take(&cfg, now);
            assert!(r.allowed, "call {i}");
            assert_eq!(r.used(), i);
        }
        let r = b.take(&cfg, now);
        assert!(!r.allowed);
        assert_eq!(r.used(), 40);
        assert_eq!(r.remain_secs(), 1);
    }

    #[test]
    fn drains_fractionally() {
        let cfg = RateLimitConfig::default();
        let now = Utc::now();
        let mut b = LeakyBucket::new(now);
        for _ in 0..40 {
            b.take(&cfg, now);
        }
        let later = now + Duration::milliseconds(500);
        assert!(b.take(&cfg, later).allowed);
        assert!(!b.take(&cfg, later).allowed);
    }
}
