//! Cafe24's app launch `hmac` (CAFE24.md §6): when a merchant opens the app, Cafe24 sends the
//! browser to the App URL with `…&timestamp=…&hmac=…`. The MAC is
//! `base64(HMAC-SHA256(client_secret, raw query up to the last '&'))`, over the query exactly
//! as received (still URL-encoded, not re-sorted).

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use percent_encoding::percent_decode_str;
use sha2::Sha256;

use crate::secret::ClientSecret;

type HmacSha256 = Hmac<Sha256>;

/// Launch queries longer than this are refused before any work.
pub const MAX_LAUNCH_QUERY_LEN: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LaunchError {
    #[error("the launch request carries no hmac")]
    Missing,
    #[error("the launch hmac is malformed")]
    Malformed,
    #[error("the launch hmac does not match")]
    Mismatch,
    #[error("the launch timestamp is missing or invalid")]
    BadTimestamp,
    #[error("the launch timestamp is outside the accepted window")]
    Stale,
}

/// Whether the raw query carries an `hmac` parameter at all.
pub fn has_hmac(raw_query: &str) -> bool {
    raw_query
        .split('&')
        .any(|p| p.split('=').next() == Some("hmac"))
}

/// Verifies the launch `hmac` of `raw_query` and that its `timestamp` is within `window` of
/// `now`. The timestamp is read as seconds since the epoch, or as milliseconds when it is too
/// large to be seconds (the unit is unconfirmed, so both are accepted).
pub fn verify(
    raw_query: &str,
    secret: &ClientSecret,
    now: DateTime<Utc>,
    window: Duration,
) -> Result<(), LaunchError> {
    if raw_query.len() > MAX_LAUNCH_QUERY_LEN {
        return Err(LaunchError::Malformed);
    }
    let (signed, last) = raw_query.rsplit_once('&').ok_or(LaunchError::Missing)?;
    let encoded = last.strip_prefix("hmac=").ok_or(LaunchError::Missing)?;
    // `hmac` must appear once, last; a second one earlier is an attempt to confuse parsers.
    if has_hmac(signed) {
        return Err(LaunchError::Malformed);
    }
    // Percent-decoding only: a literal '+' in base64 stays '+'.
    let decoded = percent_decode_str(encoded)
        .decode_utf8()
        .map_err(|_| LaunchError::Malformed)?;
    let tag = STANDARD
        .decode(decoded.as_bytes())
        .map_err(|_| LaunchError::Malformed)?;
    mac(secret, signed)
        .verify_slice(&tag)
        .map_err(|_| LaunchError::Mismatch)?;

    let timestamp = form_urlencoded::parse(signed.as_bytes())
        .find(|(k, _)| k == "timestamp")
        .and_then(|(_, v)| v.parse::<i64>().ok())
        .ok_or(LaunchError::BadTimestamp)?;
    let seconds = if timestamp > 100_000_000_000 {
        timestamp / 1000
    } else {
        timestamp
    };
    let skew = (now.timestamp() - seconds).unsigned_abs();
    if skew > window.as_secs() {
        return Err(LaunchError::Stale);
    }
    Ok(())
}

/// Appends `&hmac=…` to a query, as Cafe24 does (used by tests and tools).
pub fn sign_query(query: &str, secret: &ClientSecret) -> String {
    let tag = STANDARD.encode(mac(secret, query).finalize().into_bytes());
    let encoded: String = form_urlencoded::byte_serialize(tag.as_bytes()).collect();
    format!("{query}&hmac={encoded}")
}

fn mac(secret: &ClientSecret, message: &str) -> HmacSha256 {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret.expose_secret().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(message.as_bytes());
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(600);

    fn secret() -> ClientSecret {
        ClientSecret::new("client-secret")
    }

    fn query(ts: i64) -> String {
        format!("is_multi_shop=T&lang=ko_KR&mall_id=shop1&shop_no=1&timestamp={ts}&user_id=admin&user_name=%ED%99%8D&user_type=P")
    }

    #[test]
    fn known_vector_matches_the_documented_algorithm() {
        // Computed independently: base64(HMAC-SHA256("client-secret", query(1700000000))).
        let q = query(1_700_000_000);
        let signed = sign_query(&q, &secret());
        let expected = {
            let mut m = <HmacSha256 as Mac>::new_from_slice(b"client-secret").expect("key");
            m.update(q.as_bytes());
            STANDARD.encode(m.finalize().into_bytes())
        };
        let tail = signed
            .rsplit_once("&hmac=")
            .map(|(_, t)| t.to_string())
            .expect("hmac");
        let decoded = percent_decode_str(&tail).decode_utf8().expect("utf8");
        assert_eq!(decoded, expected);
    }

    // docs/contract.md §5.3: the published test vector. Change it only with the contract.
    const VECTOR_SECRET: &str = "contract-v1-client-secret";
    const VECTOR_QUERY: &str = "is_multi_shop=T&lang=ko_KR&mall_id=shop1&nation=KR&shop_no=1&timestamp=1700000000&user_id=admin&user_name=%ED%99%8D%EA%B8%B8%EB%8F%99&user_type=P";
    const VECTOR_HMAC: &str = "Gp4JWLWYKD4oqM9V6ucvMu9inJ/a/ltNG6GM8UKp5hY=";
    const VECTOR_HMAC_ENCODED: &str = "Gp4JWLWYKD4oqM9V6ucvMu9inJ%2Fa%2FltNG6GM8UKp5hY%3D";

    fn vector_time(offset_secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + offset_secs, 0)
            .unwrap_or_else(|| unreachable!("a valid instant"))
    }

    #[test]
    fn contract_vector_the_launch_hmac_is_exactly_the_documented_one() {
        let secret = ClientSecret::new(VECTOR_SECRET);
        let signed = sign_query(VECTOR_QUERY, &secret);
        assert_eq!(signed, format!("{VECTOR_QUERY}&hmac={VECTOR_HMAC_ENCODED}"));
        let tag = STANDARD.encode(mac(&secret, VECTOR_QUERY).finalize().into_bytes());
        assert_eq!(tag, VECTOR_HMAC);
        // Within the window either way, by the second; one second past it is stale.
        assert_eq!(verify(&signed, &secret, vector_time(0), WINDOW), Ok(()));
        assert_eq!(verify(&signed, &secret, vector_time(600), WINDOW), Ok(()));
        assert_eq!(verify(&signed, &secret, vector_time(-600), WINDOW), Ok(()));
        assert_eq!(
            verify(&signed, &secret, vector_time(601), WINDOW),
            Err(LaunchError::Stale)
        );
        // The MAC covers the query as received: decoding `user_name` first breaks it.
        let decoded = signed.replace("%ED%99%8D%EA%B8%B8%EB%8F%99", "\u{d64d}\u{ae38}\u{b3d9}");
        assert_eq!(
            verify(&decoded, &secret, vector_time(0), WINDOW),
            Err(LaunchError::Mismatch)
        );
        // `hmac` must come last.
        let moved = format!("hmac={VECTOR_HMAC_ENCODED}&{VECTOR_QUERY}");
        assert_eq!(
            verify(&moved, &secret, vector_time(0), WINDOW),
            Err(LaunchError::Missing)
        );
    }

    #[test]
    fn a_signed_launch_verifies() {
        let now = Utc::now();
        let signed = sign_query(&query(now.timestamp()), &secret());
        assert_eq!(verify(&signed, &secret(), now, WINDOW), Ok(()));
        let millis = sign_query(&query(now.timestamp_millis()), &secret());
        assert_eq!(verify(&millis, &secret(), now, WINDOW), Ok(()));
    }

    #[test]
    fn tampering_reordering_staleness_and_absence_are_refused() {
        let now = Utc::now();
        let q = query(now.timestamp());
        let signed = sign_query(&q, &secret());
        let tampered = signed.replace("mall_id=shop1", "mall_id=shop2");
        assert_eq!(
            verify(&tampered, &secret(), now, WINDOW),
            Err(LaunchError::Mismatch)
        );
        let (_, tag) = signed.rsplit_once('&').expect("tag");
        let reordered = format!(
            "lang=ko_KR&is_multi_shop=T{}&{tag}",
            &q["is_multi_shop=T&lang=ko_KR".len()..]
        );
        assert_eq!(
            verify(&reordered, &secret(), now, WINDOW),
            Err(LaunchError::Mismatch)
        );
        let stale = sign_query(&query(now.timestamp() - 601), &secret());
        assert_eq!(
            verify(&stale, &secret(), now, WINDOW),
            Err(LaunchError::Stale)
        );
        assert_eq!(
            verify(&q, &secret(), now, WINDOW),
            Err(LaunchError::Missing)
        );
        let wrong_key = sign_query(&q, &ClientSecret::new("other"));
        assert_eq!(
            verify(&wrong_key, &secret(), now, WINDOW),
            Err(LaunchError::Mismatch)
        );
        let garbage = format!("{q}&hmac=%%%");
        assert_eq!(
            verify(&garbage, &secret(), now, WINDOW),
            Err(LaunchError::Malformed)
        );
        let no_ts = sign_query("mall_id=shop1", &secret());
        assert_eq!(
            verify(&no_ts, &secret(), now, WINDOW),
            Err(LaunchError::BadTimestamp)
        );
    }
}
