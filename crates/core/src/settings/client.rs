//! What the Admin API client needs: per-request timeout, retry bounds, the bucket it mirrors,
//! and the optional admin credential that turns on `serve`'s forwarding proxy.

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::{ConfigError, Source};

/// Shortest accepted `CAFE24_ADMIN_TOKEN`, so a guessable credential cannot be configured.
pub const MIN_ADMIN_TOKEN_LEN: usize = 32;

/// The bearer credential callers of the proxy present. `Debug`/`Display` redact it.
#[derive(Clone)]
pub struct AdminToken(SecretString);

impl AdminToken {
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    /// The secret value. Never log or format it.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken([redacted])")
    }
}

impl fmt::Display for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Time limit of one HTTP attempt.
    pub request_timeout: Duration,
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// Overall time limit of one call: pacing waits, attempts and backoffs together.
    pub deadline: Duration,
    /// First backoff; doubles per attempt, with jitter, up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// The per-mall bucket mirrored client-side (Cafe24: 40 deep, drains 2 per second).
    pub bucket_size: u32,
    pub drain_per_sec: f64,
    /// When set, `serve` exposes `/internal/malls/{mall_id}/api/v2/…` to bearers of it.
    pub admin_token: Option<AdminToken>,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            max_attempts: 6,
            deadline: Duration::from_secs(120),
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            bucket_size: 40,
            drain_per_sec: 2.0,
            admin_token: None,
        }
    }
}

impl ClientSettings {
    pub fn load(src: &Source) -> Result<Self, ConfigError> {
        let d = Self::default();
        let secs = |name, default, min, max| {
            src.number_or(name, default, min, max)
                .map(Duration::from_secs)
        };
        let millis = |name, default, min, max| {
            src.number_or(name, default, min, max)
                .map(Duration::from_millis)
        };
        let admin_token = src.parse_or("CAFE24_ADMIN_TOKEN", None, |raw| {
            if raw.len() < MIN_ADMIN_TOKEN_LEN {
                Err(format!(
                    "must be at least {MIN_ADMIN_TOKEN_LEN} characters (try: openssl rand -hex 32)"
                ))
            } else {
                Ok(Some(AdminToken::new(raw)))
            }
        })?;
        let settings = Self {
            request_timeout: secs("CAFE24_API_TIMEOUT_SECS", 30, 1, 300)?,
            max_attempts: u32::try_from(src.number_or("CAFE24_API_MAX_ATTEMPTS", 6, 1, 20)?)
                .unwrap_or(d.max_attempts),
            deadline: secs("CAFE24_API_DEADLINE_SECS", 120, 1, 3600)?,
            backoff_base: millis("CAFE24_API_BACKOFF_MS", 500, 1, 60_000)?,
            backoff_max: millis("CAFE24_API_BACKOFF_MAX_MS", 30_000, 1, 600_000)?,
            bucket_size: u32::try_from(src.number_or("CAFE24_API_BUCKET_SIZE", 40, 1, 100_000)?)
                .unwrap_or(d.bucket_size),
            drain_per_sec: src.parse_or("CAFE24_API_DRAIN_PER_SEC", 2.0, |raw| {
                match raw.parse::<f64>() {
                    Ok(r) if r > 0.0 && r <= 100_000.0 => Ok(r),
                    _ => Err("must be a number of calls per second, above 0"),
                }
            })?,
            admin_token,
        };
        if settings.backoff_max < settings.backoff_base {
            return Err(ConfigError::new(
                "CAFE24_API_BACKOFF_MAX_MS",
                "must not be below CAFE24_API_BACKOFF_MS",
            ));
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_mirror_cafe24_and_the_proxy_is_off() {
        let s = ClientSettings::load(&Source::default()).expect("defaults");
        assert_eq!(s.bucket_size, 40);
        assert!((s.drain_per_sec - 2.0).abs() < f64::EPSILON);
        assert!(s.admin_token.is_none());
    }

    #[test]
    fn a_short_admin_token_is_refused_and_a_long_one_never_shows() {
        let short = Source::from_pairs([("CAFE24_ADMIN_TOKEN", "abc")]);
        let err = ClientSettings::load(&short).expect_err("refused");
        assert_eq!(err.variable(), "CAFE24_ADMIN_TOKEN");
        let value = "a".repeat(40);
        let long = Source::from_pairs([("CAFE24_ADMIN_TOKEN", value.as_str())]);
        let s = ClientSettings::load(&long).expect("accepted");
        let shown = format!("{s:?}");
        assert!(!shown.contains(&value), "{shown}");
        assert_eq!(s.admin_token.map(|t| t.expose_secret().len()), Some(40));
    }

    #[test]
    fn bad_numbers_name_their_variable() {
        for (name, value) in [
            ("CAFE24_API_MAX_ATTEMPTS", "0"),
            ("CAFE24_API_DRAIN_PER_SEC", "-1"),
            ("CAFE24_API_TIMEOUT_SECS", "x"),
        ] {
            let err =
                ClientSettings::load(&Source::from_pairs([(name, value)])).expect_err("refused");
            assert_eq!(err.variable(), name);
        }
    }
}
