//! The OAuth `state`: `v1.{mall_id}.{issued_at}.{nonce}.{mac}`, an HMAC-SHA256 under
//! `EXPECTED_STATE_SECRET` over everything before the MAC. It proves the callback belongs to an
//! install this server started, names the mall, and expires. Single use is enforced by storage
//! (a unique index on the stored state), so a replay is refused across processes.

use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::secret::StateKey;
use crate::MallId;

type HmacSha256 = Hmac<Sha256>;

const VERSION: &str = "v1";
const NONCE_BYTES: usize = 16;
/// Longer inputs are refused before any parsing.
pub const MAX_STATE_LEN: usize = 256;
/// A state issued this far in the future (clock skew between servers) is still accepted.
const FUTURE_SKEW_SECS: i64 = 60;
pub const DEFAULT_STATE_TTL: Duration = Duration::from_secs(600);

/// A freshly issued state, ready to be put in the authorize URL.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedState(String);

impl SignedState {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SignedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SignedState([redacted])")
    }
}

/// What a valid state says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedState {
    pub mall_id: MallId,
    pub issued_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("state is malformed")]
    Malformed,
    #[error("state signature does not match")]
    BadSignature,
    #[error("state has expired")]
    Expired,
}

/// Issues and verifies states.
#[derive(Clone)]
pub struct StateSigner {
    key: StateKey,
    ttl: Duration,
}

impl fmt::Debug for StateSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateSigner")
            .field("key", &self.key)
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl StateSigner {
    pub fn new(key: StateKey, ttl: Duration) -> Self {
        Self { key, ttl }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn issue(&self, mall: &MallId, now: DateTime<Utc>) -> SignedState {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        self.issue_with_nonce(mall, now, nonce)
    }

    /// [`StateSigner::issue`] with a given nonce: crate-internal, so the contract's test
    /// vectors (docs/contract.md) are computed by the code itself. Callers outside the crate
    /// always get a random nonce.
    pub(crate) fn issue_with_nonce(
        &self,
        mall: &MallId,
        now: DateTime<Utc>,
        nonce: [u8; NONCE_BYTES],
    ) -> SignedState {
        let body = format!(
            "{VERSION}.{}.{}.{}",
            mall.as_str(),
            now.timestamp(),
            URL_SAFE_NO_PAD.encode(nonce)
        );
        let tag = URL_SAFE_NO_PAD.encode(self.mac(&body).finalize().into_bytes());
        SignedState(format!("{body}.{tag}"))
    }

    /// Checks shape, signature (constant time) and age. Single use is the caller's job.
    pub fn verify(&self, raw: &str, now: DateTime<Utc>) -> Result<VerifiedState, StateError> {
        if raw.len() > MAX_STATE_LEN || !raw.is_ascii() {
            return Err(StateError::Malformed);
        }
        let (body, tag) = raw.rsplit_once('.').ok_or(StateError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| StateError::Malformed)?;
        // The signature is checked before any field is trusted.
        self.mac(body)
            .verify_slice(&tag)
            .map_err(|_| StateError::BadSignature)?;

        let mut parts = body.split('.');
        let (Some(VERSION), Some(mall), Some(issued), Some(_nonce), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(StateError::Malformed);
        };
        let mall_id = MallId::parse(mall).map_err(|_| StateError::Malformed)?;
        let issued: i64 = issued.parse().map_err(|_| StateError::Malformed)?;
        let issued_at = Utc
            .timestamp_opt(issued, 0)
            .single()
            .ok_or(StateError::Malformed)?;
        let age = now.signed_duration_since(issued_at).num_seconds();
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        if age > ttl || age < -FUTURE_SKEW_SECS {
            return Err(StateError::Expired);
        }
        Ok(VerifiedState { mall_id, issued_at })
    }

    fn mac(&self, body: &str) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(self.key.expose_secret().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(body.as_bytes());
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration as Span;

    fn signer() -> StateSigner {
        StateSigner::new(StateKey::new("test-state-key"), DEFAULT_STATE_TTL)
    }

    fn mall() -> MallId {
        MallId::parse("shop1").unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn a_fresh_state_verifies_and_names_its_mall() {
        let now = Utc::now();
        let s = signer().issue(&mall(), now);
        let v = signer().verify(s.as_str(), now + Span::seconds(5));
        assert_eq!(v.map(|v| v.mall_id), Ok(mall()));
    }

    #[test]
    fn two_states_for_the_same_mall_differ() {
        let now = Utc::now();
        assert_ne!(signer().issue(&mall(), now), signer().issue(&mall(), now));
    }

    #[test]
    fn an_old_state_is_expired() {
        let now = Utc::now();
        let s = signer().issue(&mall(), now - Span::seconds(601));
        assert_eq!(signer().verify(s.as_str(), now), Err(StateError::Expired));
        let edge = signer().issue(&mall(), now - Span::seconds(600));
        assert!(signer().verify(edge.as_str(), now).is_ok());
    }

    #[test]
    fn a_state_from_the_far_future_is_refused() {
        let now = Utc::now();
        let s = signer().issue(&mall(), now + Span::hours(1));
        assert_eq!(signer().verify(s.as_str(), now), Err(StateError::Expired));
    }

    #[test]
    fn forged_or_tampered_states_are_refused() {
        let now = Utc::now();
        let s = signer().issue(&mall(), now);
        let other = StateSigner::new(StateKey::new("another-key"), DEFAULT_STATE_TTL);
        assert_eq!(other.verify(s.as_str(), now), Err(StateError::BadSignature));
        let tampered = s.as_str().replacen("shop1", "shop2", 1);
        assert_eq!(
            signer().verify(&tampered, now),
            Err(StateError::BadSignature)
        );
        for junk in [
            "",
            "x",
            "v1.shop1.1.n.",
            "....",
            "v1.shop1.1.n.!!!",
            &"a".repeat(300),
        ] {
            assert!(signer().verify(junk, now).is_err(), "{junk:?}");
        }
    }

    // docs/contract.md §4.4: the published test vectors. Change them only with the contract.
    const VECTOR_SECRET: &str = "contract-v1-state-secret-0123456789abcdef";
    const VECTOR_OTHER_SECRET: &str = "contract-v1-another-secret-0123456789abcd";
    const VECTOR_ISSUED_AT: i64 = 1_700_000_000;
    const VECTOR_STATE: &str =
        "v1.shop1.1700000000.AAECAwQFBgcICQoLDA0ODw.2NL05bicw6SL95A58ZZBHTYz1dEloq6P4aycexPbTFo";
    const VECTOR_STATE_OTHER_SECRET: &str =
        "v1.shop1.1700000000.AAECAwQFBgcICQoLDA0ODw.OxvlaqEW1lH6qWl12p3gcLldzHIjM3jlccyEjrYb-Fo";

    fn vector_signer(secret: &str) -> StateSigner {
        StateSigner::new(StateKey::new(secret), DEFAULT_STATE_TTL)
    }

    fn vector_time(offset_secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(VECTOR_ISSUED_AT + offset_secs, 0)
            .single()
            .unwrap_or_else(|| unreachable!("a valid instant"))
    }

    fn vector_nonce() -> [u8; NONCE_BYTES] {
        std::array::from_fn(|i| u8::try_from(i).unwrap_or_default())
    }

    #[test]
    fn contract_vector_the_state_string_is_exactly_the_documented_one() {
        let signed =
            vector_signer(VECTOR_SECRET).issue_with_nonce(&mall(), vector_time(0), vector_nonce());
        assert_eq!(signed.as_str(), VECTOR_STATE);
        let other = vector_signer(VECTOR_OTHER_SECRET).issue_with_nonce(
            &mall(),
            vector_time(0),
            vector_nonce(),
        );
        assert_eq!(other.as_str(), VECTOR_STATE_OTHER_SECRET);
        // The 302 Location /install builds around it (docs/contract.md §3.2).
        let scopes = crate::Scopes::parse("mall.read_product,mall.read_store")
            .unwrap_or_else(|_| unreachable!("valid scopes"));
        let location = crate::base_url::BaseUrlTemplate::default().authorize_url(
            &mall(),
            "contract-client",
            signed.as_str(),
            "https://app.example.com/oauth/callback",
            &scopes,
        );
        assert_eq!(
            location,
            format!(
                "https://shop1.cafe24api.com/api/v2/oauth/authorize?response_type=code\
                 &client_id=contract-client&state={VECTOR_STATE}\
                 &redirect_uri=https%3A%2F%2Fapp.example.com%2Foauth%2Fcallback\
                 &scope=mall.read_product%2Cmall.read_store"
            )
        );
    }

    #[test]
    fn contract_vector_lifetime_skew_and_foreign_secret() {
        let s = vector_signer(VECTOR_SECRET);
        let verified = s.verify(VECTOR_STATE, vector_time(0));
        assert_eq!(
            verified,
            Ok(VerifiedState {
                mall_id: mall(),
                issued_at: vector_time(0),
            })
        );
        // Accepted up to and including the TTL (600 s), and up to 60 s "from the future".
        assert!(s.verify(VECTOR_STATE, vector_time(600)).is_ok());
        assert_eq!(
            s.verify(VECTOR_STATE, vector_time(601)),
            Err(StateError::Expired)
        );
        assert!(s.verify(VECTOR_STATE, vector_time(-60)).is_ok());
        assert_eq!(
            s.verify(VECTOR_STATE, vector_time(-61)),
            Err(StateError::Expired)
        );
        // Signed by another secret: refused before any field is read.
        assert_eq!(
            s.verify(VECTOR_STATE_OTHER_SECRET, vector_time(0)),
            Err(StateError::BadSignature)
        );
        // A MAC with base64 padding is not the canonical encoding and does not decode.
        let padded = format!("{VECTOR_STATE}=");
        assert_eq!(
            s.verify(&padded, vector_time(0)),
            Err(StateError::Malformed)
        );
    }

    #[test]
    fn debug_does_not_show_the_state_or_key() {
        let s = signer().issue(&mall(), Utc::now());
        assert!(!format!("{s:?}").contains("shop1"));
        assert!(!format!("{:?}", signer()).contains("test-state-key"));
    }
}
