//! The authentication header of a webhook delivery (⚠ undocumented by Cafe24, so a setting):
//! the API key itself, or HMAC-SHA256 of the body in hex or base64.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::{WebhookAuth, WebhookAuthScheme};

/// HMAC-SHA256 of `body` keyed with `key`.
pub fn hmac_sha256(key: &[u8], body: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(body);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The header (name, value) to send with `body`, if the scheme sends one.
pub fn auth_header(auth: &WebhookAuth, body: &[u8]) -> Option<(String, String)> {
    let key = auth.key.expose_secret();
    let value = match auth.scheme {
        WebhookAuthScheme::None => return None,
        WebhookAuthScheme::ApiKey => key.to_string(),
        WebhookAuthScheme::HmacSha256Hex => hex(&hmac_sha256(key.as_bytes(), body)),
        WebhookAuthScheme::HmacSha256Base64 => {
            base64::engine::general_purpose::STANDARD.encode(hmac_sha256(key.as_bytes(), body))
        }
    };
    Some((auth.header.clone(), value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn hmac_hex_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn none_scheme_sends_no_header() {
        let auth = WebhookAuth {
            header: "X".into(),
            key: Secret::new("k"),
            scheme: WebhookAuthScheme::None,
        };
        assert!(auth_header(&auth, b"{}").is_none());
    }
}
