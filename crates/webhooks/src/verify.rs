//! Deciding whether a delivery comes from Cafe24, as configured (`WebhookSettings`). Every
//! comparison of a secret is constant time; anything unconfigured or unexpected is refused.

use std::net::IpAddr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use cafe24_core::secret::ClientSecret;
use cafe24_core::settings::{IpRange, WebhookAuth, WebhookSettings};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("webhook verification is not configured")]
    NotConfigured,
    #[error("sender address is not allowed")]
    Sender,
    #[error("authentication header missing")]
    Missing,
    #[error("authentication header does not match")]
    Mismatch,
}

#[derive(Clone, Debug)]
pub struct Verifier {
    auth: WebhookAuth,
    header: String,
    key: Option<ClientSecret>,
    allowed: Vec<IpRange>,
    trusted_proxies: Vec<IpRange>,
}

impl Verifier {
    pub fn new(settings: &WebhookSettings) -> Self {
        Self {
            auth: settings.auth,
            header: settings.header.to_ascii_lowercase(),
            key: settings.key.clone(),
            allowed: settings.allowed_senders.clone(),
            trusted_proxies: settings.trusted_proxies.clone(),
        }
    }

    pub fn auth(&self) -> WebhookAuth {
        self.auth
    }

    /// The sender: the peer, or — only when the peer is a trusted proxy — the right-most
    /// `X-Forwarded-For` entry that is not itself a trusted proxy. `forwarded_for` is every
    /// header line, in order, joined with commas ([`forwarded_for`]): a proxy may append its
    /// hop as a line of its own, below the client's.
    ///
    /// The walk from the right stops at the first hop that is not a bare IP address: whatever
    /// lies left of it came through someone we cannot identify, so the sender is unknown
    /// (`None`, refused when an allowlist is set) rather than an entry the client wrote.
    pub fn sender(&self, peer: Option<IpAddr>, forwarded_for: Option<&str>) -> Option<IpAddr> {
        let peer = peer?;
        let trusted = |ip: IpAddr| self.trusted_proxies.iter().any(|r| r.contains(ip));
        if !trusted(peer) {
            return Some(peer);
        }
        let Some(chain) = forwarded_for else {
            return Some(peer);
        };
        for hop in chain.split(',').rev() {
            let ip = hop.trim().parse::<IpAddr>().ok()?;
            if !trusted(ip) {
                return Some(ip);
            }
        }
        Some(peer)
    }

    /// Checks a delivery: the sender (if an allowlist is set), then the configured header.
    pub fn check(
        &self,
        peer: Option<IpAddr>,
        forwarded_for: Option<&str>,
        header: impl Fn(&str) -> Option<String>,
        body: &[u8],
    ) -> Result<(), Refusal> {
        if self.auth == WebhookAuth::Unconfigured {
            return Err(Refusal::NotConfigured);
        }
        if !self.allowed.is_empty() {
            let sender = self.sender(peer, forwarded_for).ok_or(Refusal::Sender)?;
            if !self.allowed.iter().any(|r| r.contains(sender)) {
                return Err(Refusal::Sender);
            }
        }
        let key = match (self.auth, &self.key) {
            (WebhookAuth::InsecureNone, _) => return Ok(()),
            (_, Some(key)) => key,
            (_, None) => return Err(Refusal::NotConfigured),
        };
        let presented = header(&self.header).ok_or(Refusal::Missing)?;
        let presented = presented.trim();
        let matches = match self.auth {
            WebhookAuth::ApiKey => {
                bool::from(presented.as_bytes().ct_eq(key.expose_secret().as_bytes()))
            }
            WebhookAuth::HmacHex => {
                decode_hex(presented).is_some_and(|tag| mac(key, body).verify_slice(&tag).is_ok())
            }
            WebhookAuth::HmacBase64 => STANDARD
                .decode(presented)
                .ok()
                .is_some_and(|tag| mac(key, body).verify_slice(&tag).is_ok()),
            WebhookAuth::Unconfigured | WebhookAuth::InsecureNone => false,
        };
        if matches {
            Ok(())
        } else {
            Err(Refusal::Mismatch)
        }
    }
}

/// Every `X-Forwarded-For` header line, in order, joined with commas — or `None` without any.
/// A line that is not text is kept as an unparseable hop, so [`Verifier::sender`] stops there.
pub fn forwarded_for<'a>(lines: impl IntoIterator<Item = &'a [u8]>) -> Option<String> {
    let lines: Vec<_> = lines.into_iter().map(String::from_utf8_lossy).collect();
    (!lines.is_empty()).then(|| lines.join(","))
}

fn mac(key: &ClientSecret, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.expose_secret().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    mac
}

/// HMAC-SHA256 of `body` under `key`, hex: what the dispatcher signs forwarded events with.
pub fn sign_hex(key: &ClientSecret, body: &[u8]) -> String {
    mac(key, body)
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.strip_prefix("sha256=").unwrap_or(text);
    if !text.len().is_multiple_of(2) || text.len() > 256 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cafe24_core::settings::Source;

    fn verifier(pairs: &[(&str, &str)]) -> Verifier {
        Verifier::new(
            &WebhookSettings::load(&Source::from_pairs(pairs.iter().copied())).expect("settings"),
        )
    }

    const KEY: &str = "webhook-key-0123456789";

    #[test]
    fn unconfigured_refuses_everything() {
        let v = verifier(&[]);
        assert_eq!(
            v.check(None, None, |_| Some(KEY.into()), b"{}"),
            Err(Refusal::NotConfigured)
        );
    }

    #[test]
    fn api_key_and_hmac_schemes_verify() {
        let api = verifier(&[
            ("CAFE24_WEBHOOK_AUTH", "api-key"),
            ("CAFE24_WEBHOOK_KEY", KEY),
        ]);
        assert_eq!(
            api.check(
                None,
                None,
                |h| (h == "x-api-key").then(|| KEY.into()),
                b"{}"
            ),
            Ok(())
        );
        assert_eq!(
            api.check(None, None, |_| Some("wrong".into()), b"{}"),
            Err(Refusal::Mismatch)
        );
        assert_eq!(
            api.check(None, None, |_| None, b"{}"),
            Err(Refusal::Missing)
        );

        let hmac = verifier(&[
            ("CAFE24_WEBHOOK_AUTH", "hmac-hex"),
            ("CAFE24_WEBHOOK_KEY", KEY),
        ]);
        let tag = sign_hex(&ClientSecret::new(KEY), b"body");
        assert_eq!(
            hmac.check(None, None, |_| Some(tag.clone()), b"body"),
            Ok(())
        );
        assert_eq!(
            hmac.check(None, None, |_| Some(tag.clone()), b"bodY"),
            Err(Refusal::Mismatch)
        );
        assert_eq!(
            hmac.check(None, None, |_| Some("zz".into()), b"body"),
            Err(Refusal::Mismatch)
        );
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let v = verifier(&[
            ("CAFE24_WEBHOOK_AUTH", "insecure-none"),
            ("CAFE24_WEBHOOK_ALLOWED_SENDERS", "119.205.223.208/31"),
            ("CAFE24_TRUSTED_PROXIES", "10.0.0.0/8"),
        ]);
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        assert_eq!(
            v.check(
                ip("10.1.2.3"),
                Some("1.2.3.4, 119.205.223.209"),
                |_| None,
                b""
            ),
            Ok(())
        );
        assert_eq!(
            v.check(ip("8.8.8.8"), Some("119.205.223.209"), |_| None, b""),
            Err(Refusal::Sender)
        );
        assert_eq!(
            v.check(
                ip("10.1.2.3"),
                Some("119.205.223.209, 6.6.6.6"),
                |_| None,
                b""
            ),
            Err(Refusal::Sender)
        );
        assert_eq!(v.check(None, None, |_| None, b""), Err(Refusal::Sender));
    }

    #[test]
    fn every_forwarded_for_line_is_joined_in_order() {
        assert_eq!(forwarded_for(std::iter::empty()), None);
        let lines: [&[u8]; 3] = [b"1.2.3.4, 5.6.7.8", b"9.9.9.9", b"\xff"];
        assert_eq!(
            forwarded_for(lines).as_deref(),
            Some("1.2.3.4, 5.6.7.8,9.9.9.9,\u{fffd}")
        );
    }

    #[test]
    fn an_unparseable_forwarded_hop_stops_the_walk_and_the_sender_is_refused() {
        let v = verifier(&[
            ("CAFE24_WEBHOOK_AUTH", "insecure-none"),
            ("CAFE24_WEBHOOK_ALLOWED_SENDERS", "119.205.223.208/31"),
            ("CAFE24_TRUSTED_PROXIES", "10.0.0.0/8"),
        ]);
        let proxy = "10.1.2.3".parse::<IpAddr>().ok();
        // Whatever is left of a hop we cannot read was written by someone we do not trust.
        for chain in [
            "119.205.223.208, unknown",
            "119.205.223.208, not-an-ip, 10.0.0.7",
            "119.205.223.208,",
            "119.205.223.208, , 10.0.0.7",
            "119.205.223.208, 203.0.113.9:443",
            "119.205.223.208, \u{fffd}",
        ] {
            assert_eq!(v.sender(proxy, Some(chain)), None, "{chain}");
            assert_eq!(
                v.check(proxy, Some(chain), |_| None, b""),
                Err(Refusal::Sender),
                "{chain}"
            );
        }
        // Trusted hops on the right are still walked through.
        assert_eq!(
            v.check(
                proxy,
                Some("119.205.223.208, 10.0.0.7, 10.9.9.9"),
                |_| None,
                b""
            ),
            Ok(())
        );
    }
}
