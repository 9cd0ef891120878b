//! The sandbox's clock: real time plus an offset that tests can move, or a frozen instant.
//!
//! Every expiry (codes, tokens) and the leaky bucket read this clock, so a test can
//! advance time by hours without sleeping. Formatting helpers for Cafe24's KST dates live here.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use chrono::{DateTime, Duration, FixedOffset, Offset, TimeZone, Utc};

/// Shared, movable clock. Cheap to read from many threads.
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
    frozen: AtomicBool,
    frozen_at_ms: AtomicI64,
}

impl Clock {
    /// The sandbox's "now".
    pub fn now(&self) -> DateTime<Utc> {
        if self.frozen.load(Ordering::Acquire) {
            let ms = self.frozen_at_ms.load(Ordering::Acquire);
            return DateTime::from_timestamp_millis(ms).unwrap_or_else(Utc::now);
        }
        Utc::now() + Duration::milliseconds(self.offset_ms.load(Ordering::Acquire))
    }

    /// Moves time forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let ms = by.num_milliseconds();
        self.offset_ms.fetch_add(ms, Ordering::AcqRel);
        self.frozen_at_ms.fetch_add(ms, Ordering::AcqRel);
    }

    /// Stops time at the current instant; `advance` still moves it.
    pub fn freeze(&self) {
        let now = self.now().timestamp_millis();
        self.frozen_at_ms.store(now, Ordering::Release);
        self.frozen.store(true, Ordering::Release);
    }

    /// Lets time run again from the frozen instant.
    pub fn unfreeze(&self) {
        if self.frozen.swap(false, Ordering::AcqRel) {
            let frozen = self.frozen_at_ms.load(Ordering::Acquire);
            let offset = frozen - Utc::now().timestamp_millis();
            self.offset_ms.store(offset, Ordering::Release);
        }
    }

    pub fn is_frozen(&self) -> bool {
        self.frozen.load(Ordering::Acquire)
    }

    pub fn offset_ms(&self) -> i64 {
        if self.is_frozen() {
            self.frozen_at_ms.load(Ordering::Acquire) - Utc::now().timestamp_millis()
        } else {
            self.offset_ms.load(Ordering::Acquire)
        }
    }
}

/// Korea Standard Time, UTC+9, no daylight saving.
pub fn kst() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).unwrap_or_else(|| Utc.fix())
}

/// Token-endpoint format: KST wall time, milliseconds, no offset (`2021-03-01T14:00:00.000`).
pub fn token_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&kst())
        .format("%Y-%m-%dT%H:%M:%S%.3f")
        .to_string()
}

/// Resource format: KST with offset (`2018-01-18T11:19:27+09:00`).
pub fn resource_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&kst())
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// Parses a resource-style date or date-time filter (`2020-08-03`, `2020-08-03T10:10:10+09:00`,
/// or `2020-08-03 10:10:10` as KST).
pub fn parse_filter_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .ok()
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })?;
    kst()
        .from_local_datetime(&naive)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_time_is_kst_without_offset() {
        let t = DateTime::parse_from_rfc3339("2021-03-01T05:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .ok();
        assert_eq!(
            t.map(token_time).as_deref(),
            Some("2021-03-01T14:00:00.000")
        );
    }

    #[test]
    fn advance_moves_a_frozen_clock() {
        let c = Clock::default();
        c.freeze();
        let a = c.now();
        c.advance(Duration::seconds(61));
        assert_eq!((c.now() - a).num_seconds(), 61);
    }
}
