//! The signed `state`, written from the contract and not from the runtime's code, so that the
//! kit checks an implementation instead of agreeing with it:
//! `v1.{mall_id}.{issued_at}.{nonce}.{mac}` where `issued_at` is Unix seconds, `nonce` is
//! 16 random bytes and `mac` is HMAC-SHA256 under `EXPECTED_STATE_SECRET` over everything
//! before the last `.`, both base64url without padding.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What a state says about itself, once its MAC checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateClaims {
    pub mall_id: String,
    pub issued_at: i64,
}

/// A state for `mall` issued at `issued_at` (Unix seconds), signed with `secret`.
pub fn mint(secret: &str, mall: &str, issued_at: i64) -> String {
    let mut nonce = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    sign_body(
        secret,
        &format!("v1.{mall}.{issued_at}.{}", URL_SAFE_NO_PAD.encode(nonce)),
    )
}

/// `body` with its MAC appended, whatever the body says (for states of a wrong layout).
pub fn sign_body(secret: &str, body: &str) -> String {
    format!("{body}.{}", URL_SAFE_NO_PAD.encode(mac(secret, body)))
}

/// The claims of `raw` if its MAC under `secret` is right and it has the five fields.
pub fn verify(secret: &str, raw: &str) -> Option<StateClaims> {
    let (body, tag) = raw.rsplit_once('.')?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    let mut check = <HmacSha256 as Mac>::new_from_slice(secret.as_bytes()).ok()?;
    check.update(body.as_bytes());
    check.verify_slice(&tag).ok()?;
    let fields: Vec<&str> = body.split('.').collect();
    match fields.as_slice() {
        ["v1", mall, issued, nonce] => {
            let nonce = URL_SAFE_NO_PAD.decode(nonce).ok()?;
            (nonce.len() == 16).then_some(())?;
            Some(StateClaims {
                mall_id: (*mall).to_owned(),
                issued_at: issued.parse().ok()?,
            })
        }
        _ => None,
    }
}

fn mac(secret: &str, body: &str) -> Vec<u8> {
    let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(secret.as_bytes()) else {
        unreachable!("HMAC takes keys of any length")
    };
    mac.update(body.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_state_verifies_only_under_its_secret() {
        let state = mint("a-secret-of-at-least-32-characters", "shop1", 1_700_000_000);
        assert_eq!(
            verify("a-secret-of-at-least-32-characters", &state),
            Some(StateClaims {
                mall_id: "shop1".into(),
                issued_at: 1_700_000_000
            })
        );
        assert_eq!(verify("another-secret-of-32-characters!!", &state), None);
        assert_eq!(
            verify(
                "a-secret-of-at-least-32-characters",
                &state[..state.len() - 2]
            ),
            None
        );
    }

    #[test]
    fn the_layout_matches_a_known_vector() {
        // HMAC-SHA256("k", "v1.shop1.1700000000.AAAAAAAAAAAAAAAAAAAAAA"), base64url unpadded.
        let body = "v1.shop1.1700000000.AAAAAAAAAAAAAAAAAAAAAA";
        let tag = "ta8bL8C9loQIXw06JRwPTSSaiZK-ftu2xjXRmkQdbBc";
        assert_eq!(URL_SAFE_NO_PAD.encode(mac("k", body)), tag);
        let claims = verify("k", &format!("{body}.{tag}"));
        assert_eq!(claims.map(|c| c.issued_at), Some(1_700_000_000));
    }
}
