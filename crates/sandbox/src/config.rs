//! Typed settings of the sandbox: apps, malls, lifetimes, rate limits, webhooks.
//!
//! Every fact that CAFE24.md marks as unconfirmed is a setting here, with the documented
//! default. `SandboxConfig` deserializes from TOML or JSON; missing fields take defaults.

use serde::Deserialize;

use crate::secret::Secret;

/// Everything the sandbox needs to start.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    /// Registered apps (client id, secret, redirect URIs, scopes, URLs).
    pub apps: Vec<AppConfig>,
    /// Malls that exist from the start.
    pub malls: Vec<MallConfig>,
    /// Create an unknown mall on first use instead of answering 404.
    pub auto_create_malls: bool,
    /// Seeded product count for malls created on first use (or at run time without a count).
    pub auto_create_products: u32,
    /// Access token lifetime in seconds (Cafe24: 2 hours).
    pub access_token_ttl_secs: i64,
    /// Refresh token lifetime in seconds (Cafe24: 14 days).
    pub refresh_token_ttl_secs: i64,
    /// Authorization code lifetime in seconds (Cafe24: 1 minute).
    pub code_ttl_secs: i64,
    /// Skip the consent page and redirect with a code at once.
    pub auto_approve: bool,
    /// Whether the previous access token keeps working after a refresh (⚠ unconfirmed).
    pub old_access_token_survives_refresh: bool,
    /// HTTP status for a dead or unknown refresh token (⚠ unconfirmed: 401 or 400).
    pub invalid_refresh_token_status: u16,
    /// Leaky bucket settings.
    pub rate_limit: RateLimitConfig,
    /// App launch (App URL) settings.
    pub launch: LaunchConfig,
    /// Webhook delivery settings.
    pub webhooks: WebhookConfig,
    /// Fire product webhooks (90002) when the Admin API changes a product.
    pub admin_writes_fire_events: bool,
    /// Seed for the fault injector's random error rate.
    pub fault_seed: u64,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            apps: vec![AppConfig::default()],
            malls: vec![MallConfig::default()],
            auto_create_malls: false,
            auto_create_products: 20,
            access_token_ttl_secs: 7200,
            refresh_token_ttl_secs: 1_209_600,
            code_ttl_secs: 60,
            auto_approve: false,
            old_access_token_survives_refresh: true,
            invalid_refresh_token_status: 401,
            rate_limit: RateLimitConfig::default(),
            launch: LaunchConfig::default(),
            webhooks: WebhookConfig::default(),
            admin_writes_fire_events: true,
            fault_seed: 24,
        }
    }
}

impl SandboxConfig {
    /// Reads a TOML (`.toml`) or JSON (anything else) file.
    pub fn from_file(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let is_toml = path.extension().is_some_and(|ext| ext == "toml");
        let config = if is_toml {
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        } else {
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        };
        Ok(config)
    }
}

/// One app registered in "Cafe24 Developers".
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppConfig {
    pub client_id: String,
    pub client_secret: Secret,
    pub name: String,
    /// Redirect URIs compared character for character.
    pub redirect_uris: Vec<String>,
    /// Scopes the app may request, e.g. `mall.read_product`.
    pub scopes: Vec<String>,
    /// App URL that launch URLs point at.
    pub app_url: String,
    /// Where webhooks are delivered; none means no deliveries.
    pub webhook_url: Option<String>,
    /// How deliveries authenticate themselves (⚠ unconfirmed).
    pub webhook_auth: WebhookAuth,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            client_id: "sandbox-client-id".into(),
            client_secret: Secret::new("sandbox-client-secret"),
            name: "Sandbox App".into(),
            redirect_uris: vec!["http://127.0.0.1:8080/oauth/callback".into()],
            scopes: [
                "mall.read_product",
                "mall.write_product",
                "mall.read_store",
                "mall.read_application",
                "mall.write_application",
                "mall.read_order",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            app_url: "http://127.0.0.1:8080/install".into(),
            webhook_url: None,
            webhook_auth: WebhookAuth::default(),
        }
    }
}

/// Authentication header on webhook deliveries.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookAuth {
    /// Header name, e.g. `X-Api-Key`.
    pub header: String,
    /// The shared key (the API key itself, or the HMAC key).
    pub key: Secret,
    pub scheme: WebhookAuthScheme,
}

impl Default for WebhookAuth {
    fn default() -> Self {
        Self {
            header: "X-Api-Key".into(),
            key: Secret::new("sandbox-webhook-key"),
            scheme: WebhookAuthScheme::ApiKey,
        }
    }
}

/// What the authentication header carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookAuthScheme {
    /// No header at all.
    None,
    /// The key itself.
    ApiKey,
    /// Hex HMAC-SHA256 of the body, keyed with the key.
    HmacSha256Hex,
    /// Base64 HMAC-SHA256 of the body, keyed with the key.
    HmacSha256Base64,
}

/// One mall (shop) and its seeded data.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MallConfig {
    pub mall_id: String,
    /// Default shop number, returned as a string in token responses.
    pub shop_no: u32,
    /// Number of shops (multi-shop malls); `shop_no` values 1..=shops are valid.
    pub shops: u32,
    /// Seeded products (deterministic from the mall id).
    pub products: u32,
    /// Operator id in token responses and launch URLs; defaults to the mall id.
    pub user_id: Option<String>,
}

impl Default for MallConfig {
    fn default() -> Self {
        Self {
            mall_id: "sandboxmall".into(),
            shop_no: 1,
            shops: 1,
            products: 50,
            user_id: None,
        }
    }
}

/// The per-mall leaky bucket and the usage headers.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Off: no 429 from the bucket (headers are still sent).
    pub enabled: bool,
    /// Bucket depth (Cafe24: 40).
    pub bucket_size: f64,
    /// Drain in calls per second (Cafe24: 2).
    pub drain_per_sec: f64,
    /// Extra units added by each rejected call, so hammering lengthens the block.
    pub blocked_call_penalty: f64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            bucket_size: 40.0,
            drain_per_sec: 2.0,
            blocked_call_penalty: 0.0,
        }
    }
}

/// Launch URL settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LaunchConfig {
    /// Unit of `timestamp` (⚠ unconfirmed: seconds).
    pub timestamp_unit: TimestampUnit,
    /// Include `nation` (newer malls do).
    pub include_nation: bool,
    pub lang: String,
    pub nation: String,
}

impl Default for LaunchConfig {
    fn default() -> Self {
        Self {
            timestamp_unit: TimestampUnit::Seconds,
            include_nation: true,
            lang: "ko_KR".into(),
            nation: "KR".into(),
        }
    }
}

/// Unit of the launch `timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampUnit {
    Seconds,
    Milliseconds,
}

/// Webhook delivery settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Header carrying the trace id of a delivery.
    pub trace_header: String,
    /// Attempts per event (first try included).
    pub max_attempts: u32,
    /// Wait before retry n is `backoff_ms * n`.
    pub backoff_ms: u64,
    /// Per-attempt timeout.
    pub timeout_ms: u64,
    /// Turn reception off after this many events failed every attempt in a row (0: never).
    pub disable_after_failures: u32,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            trace_header: "X-Trace-Id".into(),
            max_attempts: 3,
            backoff_ms: 200,
            timeout_ms: 5000,
            disable_after_failures: 0,
        }
    }
}
