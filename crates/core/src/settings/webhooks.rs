//! How `POST /webhooks/cafe24` authenticates deliveries. Cafe24 does not document it (CAFE24.md
//! §7), so everything is a setting — and without one the route refuses every delivery (fail
//! closed) unless `CAFE24_WEBHOOK_AUTH=insecure-none` says otherwise.

use std::net::IpAddr;
use std::time::Duration;

use super::{ConfigError, Source};
use crate::secret::ClientSecret;

/// What the authentication header carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookAuth {
    /// Nothing configured: every delivery is refused (403).
    Unconfigured,
    /// Explicitly no verification (development only; loudly logged).
    InsecureNone,
    /// A shared key in a header (what Cafe24's 2023 notice asks apps to check).
    ApiKey,
    /// HMAC-SHA256 of the raw body, hex-encoded.
    HmacHex,
    /// HMAC-SHA256 of the raw body, base64-encoded.
    HmacBase64,
}

/// An address or a CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpRange {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (addr, prefix) = match raw.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (raw, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{raw:?} is not an IP address or CIDR block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{raw:?} has a bad prefix length"))?,
        };
        Ok(Self { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

fn ranges(src: &Source, name: &'static str) -> Result<Vec<IpRange>, ConfigError> {
    src.get(name)
        .map(|raw| {
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(IpRange::parse)
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
        .map_err(|reason| ConfigError::new(name, reason))
        .map(Option::unwrap_or_default)
}

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub auth: WebhookAuth,
    /// The header carrying the key or the MAC.
    pub header: String,
    pub key: Option<ClientSecret>,
    /// Sender addresses accepted (empty: any).
    pub allowed_senders: Vec<IpRange>,
    /// Proxies whose `X-Forwarded-For` is believed (empty: never).
    pub trusted_proxies: Vec<IpRange>,
    /// Cafe24's per-delivery trace id header, used as the dedupe key when present.
    pub trace_header: Option<String>,
    /// Internal URL every event is forwarded to (signed), if any.
    pub forward_url: Option<String>,
    pub forward_secret: Option<ClientSecret>,
    /// Attempts before an event is dead-lettered.
    pub max_attempts: u32,
    /// How far back reconciliation reads Cafe24's delivery logs.
    pub reconcile_window: Duration,
    /// How often the worker reconciles (0: never).
    pub reconcile_interval: Duration,
}

impl WebhookSettings {
    pub fn load(src: &Source) -> Result<Self, ConfigError> {
        let auth = src.parse_or(
            "CAFE24_WEBHOOK_AUTH",
            WebhookAuth::Unconfigured,
            |raw| match raw {
                "api-key" => Ok(WebhookAuth::ApiKey),
                "hmac-hex" => Ok(WebhookAuth::HmacHex),
                "hmac-base64" => Ok(WebhookAuth::HmacBase64),
                "insecure-none" => Ok(WebhookAuth::InsecureNone),
                _ => Err("must be api-key, hmac-hex, hmac-base64 or insecure-none"),
            },
        )?;
        let needs_key = matches!(
            auth,
            WebhookAuth::ApiKey | WebhookAuth::HmacHex | WebhookAuth::HmacBase64
        );
        let key = match (needs_key, src.get("CAFE24_WEBHOOK_KEY")) {
            (true, None) => {
                return Err(ConfigError::new(
                    "CAFE24_WEBHOOK_KEY",
                    "not set (required by CAFE24_WEBHOOK_AUTH)",
                ))
            }
            (true, Some(k)) if k.len() < 16 => {
                return Err(ConfigError::new(
                    "CAFE24_WEBHOOK_KEY",
                    "must be at least 16 characters",
                ))
            }
            (_, k) => k.map(ClientSecret::new),
        };
        let default_header = if auth == WebhookAuth::ApiKey {
            "X-Api-Key"
        } else {
            "X-Cafe24-Hmac-Sha256"
        };
        let header = src
            .get("CAFE24_WEBHOOK_HEADER")
            .unwrap_or(default_header)
            .to_owned();
        if header.is_empty()
            || !header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ConfigError::new(
                "CAFE24_WEBHOOK_HEADER",
                "must be a header name",
            ));
        }
        let forward_url = src.parse_or("CAFE24_WEBHOOK_FORWARD_URL", None, |raw| {
            url::Url::parse(raw)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .map(|_| Some(raw.to_owned()))
                .ok_or("must be an http(s) URL")
        })?;
        let forward_secret = src
            .get("CAFE24_WEBHOOK_FORWARD_SECRET")
            .map(ClientSecret::new);
        if forward_url.is_some() && forward_secret.is_none() {
            return Err(ConfigError::new(
                "CAFE24_WEBHOOK_FORWARD_SECRET",
                "not set (required to sign forwarded events)",
            ));
        }
        Ok(Self {
            auth,
            header,
            key,
            allowed_senders: ranges(src, "CAFE24_WEBHOOK_ALLOWED_SENDERS")?,
            trusted_proxies: ranges(src, "CAFE24_TRUSTED_PROXIES")?,
            trace_header: src.get("CAFE24_WEBHOOK_TRACE_HEADER").map(str::to_owned),
            forward_url,
            forward_secret,
            max_attempts: u32::try_from(src.number_or("CAFE24_WEBHOOK_MAX_ATTEMPTS", 8, 1, 100)?)
                .unwrap_or(8),
            reconcile_window: Duration::from_secs(src.number_or(
                "CAFE24_WEBHOOK_RECONCILE_WINDOW_SECS",
                86_400,
                60,
                30 * 86_400,
            )?),
            reconcile_interval: Duration::from_secs(src.number_or(
                "CAFE24_WEBHOOK_RECONCILE_INTERVAL_SECS",
                0,
                0,
                86_400,
            )?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_ranges_match_as_expected() {
        let r = IpRange::parse("119.205.223.208/31").expect("range");
        assert!(r.contains("119.205.223.209".parse().expect("ip")));
        assert!(!r.contains("119.205.223.210".parse().expect("ip")));
        assert!(IpRange::parse("203.245.45.182")
            .expect("one")
            .contains("203.245.45.182".parse().expect("ip")));
        assert!(IpRange::parse("::1/128")
            .expect("v6")
            .contains("::1".parse().expect("ip")));
        assert!(!IpRange::parse("127.0.0.1")
            .expect("v4")
            .contains("::1".parse().expect("ip")));
        for bad in ["nope", "1.2.3.4/33", "1.2.3/8"] {
            assert!(IpRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unconfigured_is_the_default_and_keys_are_required_where_needed() {
        let s = WebhookSettings::load(&Source::default()).expect("load");
        assert_eq!(s.auth, WebhookAuth::Unconfigured);
        let no_key = Source::from_pairs([("CAFE24_WEBHOOK_AUTH", "api-key")]);
        assert_eq!(
            WebhookSettings::load(&no_key)
                .err()
                .map(|e| e.variable().to_owned())
                .as_deref(),
            Some("CAFE24_WEBHOOK_KEY")
        );
        let fwd = Source::from_pairs([("CAFE24_WEBHOOK_FORWARD_URL", "http://127.0.0.1:9/x")]);
        assert_eq!(
            WebhookSettings::load(&fwd)
                .err()
                .map(|e| e.variable().to_owned())
                .as_deref(),
            Some("CAFE24_WEBHOOK_FORWARD_SECRET")
        );
        let bad = Source::from_pairs([("CAFE24_WEBHOOK_ALLOWED_SENDERS", "1.2.3.4,x")]);
        assert!(WebhookSettings::load(&bad).is_err());
    }
}
