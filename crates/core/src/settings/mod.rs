//! One typed settings value, loaded from the environment (and an optional TOML file). A missing
//! or malformed value becomes a [`ConfigError`] naming the variable; the binary prints that one
//! line and exits with code 2. Secrets are loaded into secret types at once.

mod client;
mod database;
mod keys;
mod source;
mod tokens;
mod webhooks;

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

pub use client::{AdminToken, ClientSettings, MIN_ADMIN_TOKEN_LEN};
pub use database::{DatabaseKind, DatabaseSettings, DEFAULT_SQLITE_PATH};
pub use keys::{generate_key_entry, EncryptionKey, EncryptionKeys};
pub use source::{Source, CONFIG_FILE_VAR};
pub use tokens::TokenSettings;
pub use webhooks::{IpRange, WebhookAuth, WebhookSettings};

use crate::base_url::BaseUrlTemplate;
use crate::secret::{ClientSecret, StateKey};
use crate::Scopes;

/// Shortest accepted `EXPECTED_STATE_SECRET`, so a guessable key cannot be configured.
pub const MIN_STATE_SECRET_LEN: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct ConfigError {
    variable: String,
    reason: String,
}

impl ConfigError {
    pub fn new(variable: &str, reason: impl Into<String>) -> Self {
        Self {
            variable: variable.to_owned(),
            reason: reason.into(),
        }
    }

    pub fn variable(&self) -> &str {
        &self.variable
    }
}

/// The registered app and how to reach Cafe24.
#[derive(Debug, Clone)]
pub struct AppSettings {
    pub client_id: String,
    pub client_secret: ClientSecret,
    pub redirect_uri: String,
    pub scopes: Scopes,
    pub base_url: BaseUrlTemplate,
    pub api_version: Option<String>,
}

#[derive(Debug, Clone)]
pub struct StateSettings {
    pub key: StateKey,
    pub ttl: Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct LaunchSettings {
    /// Refuse `/install` requests that carry no Cafe24 launch `hmac`.
    pub require_hmac: bool,
    /// Accepted distance between the launch `timestamp` and now.
    pub window: Duration,
    /// Codes a mall may have waiting for exchange at once; the callback refuses more (429).
    pub max_pending_codes: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy)]
pub struct HttpSettings {
    pub listen_addr: SocketAddr,
    pub request_timeout: Duration,
    pub max_body_bytes: usize,
}

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub app: AppSettings,
    pub state: StateSettings,
    pub launch: LaunchSettings,
    pub database: DatabaseSettings,
    pub http: HttpSettings,
    pub encryption_keys: Option<EncryptionKeys>,
    pub webhooks: WebhookSettings,
}

impl Settings {
    pub fn load(src: &Source) -> Result<Self, ConfigError> {
        Ok(Self {
            app: AppSettings::load(src)?,
            state: StateSettings::load(src)?,
            launch: LaunchSettings::load(src)?,
            database: DatabaseSettings::load(src)?,
            http: HttpSettings::load(src)?,
            encryption_keys: src.parse_or("TOKEN_ENCRYPTION_KEYS", None, |raw| {
                EncryptionKeys::parse(raw).map(Some)
            })?,
            webhooks: WebhookSettings::load(src)?,
        })
    }
}

impl AppSettings {
    pub fn load(src: &Source) -> Result<Self, ConfigError> {
        let client_id = src.required("CAFE24_CLIENT_ID")?;
        if client_id.len() > 128 || !client_id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::new(
                "CAFE24_CLIENT_ID",
                "must be printable ASCII without spaces",
            ));
        }
        let redirect_uri = src.required("CAFE24_REDIRECT_URI")?;
        validate_redirect_uri(redirect_uri)
            .map_err(|r| ConfigError::new("CAFE24_REDIRECT_URI", r))?;
        let scopes = Scopes::parse(src.required("CAFE24_SCOPES")?)
            .map_err(|e| ConfigError::new("CAFE24_SCOPES", e.to_string()))?;
        let base_url = src.parse_or(
            "CAFE24_BASE_URL",
            BaseUrlTemplate::default(),
            BaseUrlTemplate::parse,
        )?;
        let api_version = src.parse_or("CAFE24_API_VERSION", None, |raw| {
            chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .map(|_| Some(raw.to_owned()))
                .map_err(|_| "must be a date like 2025-12-01")
        })?;
        Ok(Self {
            client_id: client_id.to_owned(),
            client_secret: ClientSecret::new(src.required("CAFE24_CLIENT_SECRET")?),
            redirect_uri: redirect_uri.to_owned(),
            scopes,
            base_url,
            api_version,
        })
    }
}

fn validate_redirect_uri(raw: &str) -> Result<(), &'static str> {
    let url = url::Url::parse(raw).map_err(|_| "is not an absolute URL")?;
    if url.fragment().is_some() {
        return Err("must not have a #fragment");
    }
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err("must be https (http only for loopback)"),
    }
}

impl StateSettings {
    pub fn load(src: &Source) -> Result<Self, ConfigError> {
        let key = src.required("EXPECTED_STATE_SECRET")?;
        if key.len() < MIN_STATE_SECRET_LEN {
            return Err(ConfigError::new(
                "EXPECTED_STATE_SECRET",
                format!("must be at least {MIN_STATE_SECRET_LEN} characters (try: openssl rand -hex 32)"),
            ));
        }
        Ok(Self {
            key: StateKey::new(key),
            ttl: Duration::from_secs(src.number_or("CAFE24_STATE_TTL_SECS", 600, 30, 3600)?),
        })
    }
}

impl LaunchSettings {
    pub fn load(src: &Source) -> Result<Self, ConfigError> {
        Ok(Self {
            // Required by default: without it anyone can mint states for any mall, and every
            // junk code costs a token call with our credentials. Local development turns it off.
            require_hmac: src.bool_or("CAFE24_LAUNCH_HMAC_REQUIRED", true)?,
            window: Duration::from_secs(src.number_or(
                "CAFE24_LAUNCH_WINDOW_SECS",
                600,
                10,
                86_400,
            )?),
            max_pending_codes: u32::try_from(src.number_or(
                "CAFE24_MAX_PENDING_CODES_PER_MALL",
                5,
                1,
                1000,
            )?)
            .unwrap_or(5),
        })
    }
}

impl HttpSettings {
    pub fn load(src: &Source) -> Result<Self, ConfigError> {
        Ok(Self {
            listen_addr: src.parse_or(
                "LISTEN_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 8080)),
                |raw| {
                    raw.parse::<SocketAddr>()
                        .map_err(|_| "must be an address like 0.0.0.0:8080")
                },
            )?,
            request_timeout: Duration::from_secs(src.number_or(
                "HTTP_REQUEST_TIMEOUT_SECS",
                10,
                1,
                300,
            )?),
            max_body_bytes: usize::try_from(src.number_or(
                "HTTP_MAX_BODY_BYTES",
                65_536,
                1024,
                16 << 20,
            )?)
            .unwrap_or(65_536),
        })
    }
}

impl LogFormat {
    pub fn load(src: &Source) -> Result<Self, ConfigError> {
        src.parse_or("LOG_FORMAT", LogFormat::Human, |raw| match raw {
            "human" | "text" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            _ => Err("must be human or json"),
        })
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Human => "human",
            LogFormat::Json => "json",
        })
    }
}

#[cfg(test)]
mod tests;
