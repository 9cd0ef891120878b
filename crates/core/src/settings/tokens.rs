//! What the token lifecycle needs: the encryption keys (required) and its timings.

use std::time::Duration;

use super::{ConfigError, EncryptionKeys, Source};

#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub keys: EncryptionKeys,
    /// Refresh an access token this long before it expires.
    pub refresh_margin: Duration,
    /// Cafe24's authorization-code lifetime; older codes are never sent.
    pub code_lifetime: Duration,
    /// Timeout of one call to Cafe24's token endpoint.
    pub http_timeout: Duration,
    /// Keep-alive refreshes malls whose refresh token expires within this window.
    pub keepalive_window: Duration,
    /// How often the worker runs a keep-alive pass.
    pub keepalive_interval: Duration,
    pub keepalive_concurrency: usize,
    /// Keep-alive refreshes started per second, at most.
    pub keepalive_rate: f64,
    /// How long a refresh waits for another process's refresh of the same mall.
    pub lock_wait: Duration,
}

impl TokenSettings {
    pub fn load(src: &Source) -> Result<Self, ConfigError> {
        let keys = EncryptionKeys::parse(src.required("TOKEN_ENCRYPTION_KEYS")?)
            .map_err(|reason| ConfigError::new("TOKEN_ENCRYPTION_KEYS", reason))?;
        let secs = |name, default, min, max| {
            src.number_or(name, default, min, max)
                .map(Duration::from_secs)
        };
        Ok(Self {
            keys,
            refresh_margin: secs("CAFE24_REFRESH_MARGIN_SECS", 300, 0, 3600)?,
            code_lifetime: secs("CAFE24_CODE_LIFETIME_SECS", 60, 5, 600)?,
            http_timeout: secs("CAFE24_HTTP_TIMEOUT_SECS", 15, 1, 120)?,
            keepalive_window: secs("CAFE24_KEEPALIVE_WINDOW_SECS", 3 * 86_400, 0, 13 * 86_400)?,
            keepalive_interval: secs("CAFE24_KEEPALIVE_INTERVAL_SECS", 3600, 1, 86_400)?,
            keepalive_concurrency: usize::try_from(src.number_or(
                "CAFE24_KEEPALIVE_CONCURRENCY",
                4,
                1,
                256,
            )?)
            .unwrap_or(4),
            keepalive_rate: src.parse_or("CAFE24_KEEPALIVE_RATE", 5.0, |raw| {
                match raw.parse::<f64>() {
                    Ok(r) if r > 0.0 && r <= 10_000.0 => Ok(r),
                    _ => Err("must be a number of refreshes per second, above 0"),
                }
            })?,
            lock_wait: secs("CAFE24_REFRESH_LOCK_WAIT_SECS", 30, 1, 600)?,
        })
    }
}
