//! The contract's environment: the values the kit generates for one run (and therefore knows:
//! it can sign states, decrypt tokens, present the admin credential and recognise a leaked
//! secret), and the variables every process of the target is started with.

use rand::RngCore;

use crate::contract::crypto::KitKey;

/// The refresh margin the kit sets; timings of the refresh cases are built on it.
pub const REFRESH_MARGIN_SECS: i64 = 300;
/// The keep-alive window the kit sets (the contract's default, 3 days).
pub const KEEPALIVE_WINDOW_SECS: i64 = 259_200;
/// The state lifetime the kit sets (the contract's default).
pub const STATE_TTL_SECS: i64 = 600;
/// The launch timestamp window the kit sets (the contract's default).
pub const LAUNCH_WINDOW_SECS: i64 = 600;
/// Cafe24's code lifetime.
pub const CODE_LIFETIME_SECS: i64 = 60;
/// The token call timeout the kit sets: it bounds how long a lost rotation may stay journaled.
pub const HTTP_TIMEOUT_SECS: i64 = 3;
/// Header of the webhook API key, and of Cafe24's (the sandbox's) per-delivery trace id.
pub const WEBHOOK_HEADER: &str = "X-Api-Key";
pub const TRACE_HEADER: &str = "X-Trace-Id";
/// What the kit's app may request and asks for.
pub const SCOPES: &str = "mall.read_product,mall.write_product,mall.read_store";

/// Secrets and names generated fresh for one run.
pub struct Secrets {
    pub client_id: String,
    pub client_secret: String,
    pub state_secret: String,
    pub key: KitKey,
    pub admin_token: String,
    pub webhook_key: String,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl Secrets {
    pub fn generate() -> Self {
        Self {
            client_id: format!("conformance-{}", random_hex(4)),
            client_secret: random_hex(24),
            state_secret: random_hex(32),
            key: KitKey::generate("kit1"),
            admin_token: random_hex(32),
            webhook_key: random_hex(24),
        }
    }

    /// Every value that must never appear in the target's output.
    pub fn all(&self) -> Vec<(&'static str, String)> {
        vec![
            ("the client secret", self.client_secret.clone()),
            ("the state secret", self.state_secret.clone()),
            ("the encryption key (base64)", self.key.base64()),
            ("the encryption key (hex)", self.key.hex()),
            ("the admin token", self.admin_token.clone()),
            ("the webhook key", self.webhook_key.clone()),
        ]
    }
}

/// Where the target finds its Cafe24 and its database.
pub struct Endpoints {
    pub base_url_template: String,
    pub database_url: String,
    pub redirect_uri: String,
}

/// The variables shared by every process (without LISTEN_ADDR/PORT), webhook settings apart.
pub fn common(secrets: &Secrets, at: &Endpoints) -> Vec<(String, String)> {
    let pairs: Vec<(&str, String)> = vec![
        ("CAFE24_CLIENT_ID", secrets.client_id.clone()),
        ("CAFE24_CLIENT_SECRET", secrets.client_secret.clone()),
        ("CAFE24_REDIRECT_URI", at.redirect_uri.clone()),
        ("CAFE24_SCOPES", SCOPES.into()),
        ("CAFE24_BASE_URL", at.base_url_template.clone()),
        ("EXPECTED_STATE_SECRET", secrets.state_secret.clone()),
        ("TOKEN_ENCRYPTION_KEYS", secrets.key.entry()),
        ("DATABASE_URL", at.database_url.clone()),
        ("CAFE24_ADMIN_TOKEN", secrets.admin_token.clone()),
        ("CAFE24_LAUNCH_HMAC_REQUIRED", "true".into()),
        ("CAFE24_LAUNCH_WINDOW_SECS", LAUNCH_WINDOW_SECS.to_string()),
        ("CAFE24_STATE_TTL_SECS", STATE_TTL_SECS.to_string()),
        ("CAFE24_CODE_LIFETIME_SECS", CODE_LIFETIME_SECS.to_string()),
        (
            "CAFE24_REFRESH_MARGIN_SECS",
            REFRESH_MARGIN_SECS.to_string(),
        ),
        ("CAFE24_HTTP_TIMEOUT_SECS", HTTP_TIMEOUT_SECS.to_string()),
        (
            "CAFE24_KEEPALIVE_WINDOW_SECS",
            KEEPALIVE_WINDOW_SECS.to_string(),
        ),
        ("CAFE24_KEEPALIVE_INTERVAL_SECS", "1".into()),
    ];
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Webhook verification: an API key in a header; Cafe24's trace id as the dedupe key.
pub fn webhooks(secrets: &Secrets) -> Vec<(String, String)> {
    [
        ("CAFE24_WEBHOOK_AUTH", "api-key".to_owned()),
        ("CAFE24_WEBHOOK_KEY", secrets.webhook_key.clone()),
        ("CAFE24_WEBHOOK_HEADER", WEBHOOK_HEADER.to_owned()),
        ("CAFE24_WEBHOOK_TRACE_HEADER", TRACE_HEADER.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// LISTEN_ADDR and PORT of one process.
pub fn listen(port: u16) -> Vec<(String, String)> {
    vec![
        ("LISTEN_ADDR".into(), format!("127.0.0.1:{port}")),
        ("PORT".into(), port.to_string()),
    ]
}

pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
