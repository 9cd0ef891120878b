//! A delivery's body: JSON with `event_no` and `resource.mall_id` (a valid `MallId`), and the
//! key that makes Cafe24's retries of one delivery idempotent.

use cafe24_core::MallId;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub event_no: i32,
    pub mall_id: MallId,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("the body is not JSON")]
    NotJson,
    #[error("event_no is missing or not a number")]
    EventNo,
    #[error("resource.mall_id is missing or not a valid mall id")]
    MallId,
}

impl Delivery {
    pub fn parse(body: &[u8]) -> Result<Self, PayloadError> {
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|_| PayloadError::NotJson)?;
        let event_no = match &value["event_no"] {
            serde_json::Value::Number(n) => n.as_i64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        }
        .and_then(|n| i32::try_from(n).ok())
        .filter(|n| *n > 0)
        .ok_or(PayloadError::EventNo)?;
        let mall_id = value["resource"]["mall_id"]
            .as_str()
            .and_then(|m| MallId::parse(m).ok())
            .ok_or(PayloadError::MallId)?;
        Ok(Self { event_no, mall_id })
    }
}

/// `trace:{id}` when Cafe24's trace id is present (and sane), else `sha256:{digest of event
/// number and body}` — the same for a retry of the same delivery, different for another one.
pub fn dedupe_key(trace_id: Option<&str>, event_no: i32, body: &[u8]) -> String {
    if let Some(trace) = trace_id
        .filter(|t| !t.is_empty() && t.len() <= 128 && t.bytes().all(|b| b.is_ascii_graphic()))
    {
        return format!("trace:{trace}");
    }
    let mut digest = Sha256::new();
    digest.update(event_no.to_string().as_bytes());
    digest.update(b":");
    digest.update(body);
    let hex: String = digest
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_bodies_parse_and_hostile_ones_do_not() {
        let ok = Delivery::parse(
            br#"{"event_no":90001,"resource":{"mall_id":"shop1","event_shop_no":"1"}}"#,
        );
        assert_eq!(
            ok.map(|d| (d.event_no, d.mall_id.to_string())),
            Ok((90001, "shop1".into()))
        );
        assert_eq!(Delivery::parse(b"not json"), Err(PayloadError::NotJson));
        assert_eq!(
            Delivery::parse(br#"{"resource":{"mall_id":"shop1"}}"#),
            Err(PayloadError::EventNo)
        );
        assert_eq!(
            Delivery::parse(br#"{"event_no":90001,"resource":{"mall_id":"evil.com"}}"#),
            Err(PayloadError::MallId)
        );
        assert_eq!(
            Delivery::parse(br#"{"event_no":-1,"resource":{"mall_id":"shop1"}}"#),
            Err(PayloadError::EventNo)
        );
    }

    // docs/contract.md §6.6: the published test vectors. Change them only with the contract.
    #[test]
    fn contract_vector_dedupe_keys_are_exactly_the_documented_ones() {
        let body = br#"{"event_no":90077,"resource":{"mall_id":"shop1","event_shop_no":"1"}}"#;
        let digest = "sha256:f43d7c88fea8aa0dade4f33906c40e0c8a5a8c56676bd057002df4b874b049a6";
        assert_eq!(dedupe_key(None, 90077, body), digest);
        assert_eq!(dedupe_key(Some("abc-123"), 90077, body), "trace:abc-123");
        // A trace id that is empty, too long (> 128 bytes) or not printable ASCII is ignored.
        for ignored in ["", "has space", "caf\u{e9}", &"t".repeat(129)] {
            assert_eq!(
                dedupe_key(Some(ignored), 90077, body),
                digest,
                "{ignored:?}"
            );
        }
        let longest = "t".repeat(128);
        assert_eq!(
            dedupe_key(Some(&longest), 90077, body),
            format!("trace:{longest}")
        );
    }

    #[test]
    fn dedupe_keys_identify_deliveries() {
        assert_eq!(dedupe_key(Some("abc-1"), 1, b"x"), "trace:abc-1");
        assert_eq!(dedupe_key(None, 1, b"x"), dedupe_key(None, 1, b"x"));
        assert_ne!(dedupe_key(None, 1, b"x"), dedupe_key(None, 2, b"x"));
        assert_ne!(dedupe_key(None, 1, b"x"), dedupe_key(None, 1, b"y"));
        assert!(dedupe_key(Some("has space"), 1, b"x").starts_with("sha256:"));
    }
}
