//! Cafe24's app launch query (CAFE24.md §6), written from the contract: parameters in
//! alphabetical order, form-URL-encoded, then `hmac` last:
//! `urlencode(base64(HMAC-SHA256(client secret, the raw query before "&hmac")))`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The launch parameters Cafe24 sends for `mall` at `timestamp` (Unix seconds), encoded but
/// not yet signed. `mall` is encoded as given, so hostile values reach the target intact.
pub fn query(mall: &str, timestamp: i64) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("is_multi_shop", "F")
        .append_pair("lang", "ko_KR")
        .append_pair("mall_id", mall)
        .append_pair("nation", "KR")
        .append_pair("shop_no", "1")
        .append_pair("timestamp", &timestamp.to_string())
        .append_pair("user_id", "conformance")
        .append_pair("user_name", "Conformance Kit")
        .append_pair("user_type", "P")
        .finish()
}

/// `raw` with `&hmac=…` appended, signed over `raw` exactly as given.
pub fn sign(raw: &str, client_secret: &str) -> String {
    let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(client_secret.as_bytes()) else {
        unreachable!("HMAC takes keys of any length")
    };
    mac.update(raw.as_bytes());
    let tag = STANDARD.encode(mac.finalize().into_bytes());
    let encoded: String = form_urlencoded::byte_serialize(tag.as_bytes()).collect();
    format!("{raw}&hmac={encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_matches_a_known_vector() {
        let raw = "is_multi_shop=F&lang=ko_KR&mall_id=shop1&shop_no=1&timestamp=1700000000&user_id=shop1&user_name=Sandbox+Operator&user_type=P";
        // base64(HMAC-SHA256("secret", raw)) = up14W1uTkqjYWKZvzSy8bO44kHAA30sTn4U+5njwS9k=
        assert_eq!(
            sign(raw, "secret"),
            format!("{raw}&hmac=up14W1uTkqjYWKZvzSy8bO44kHAA30sTn4U%2B5njwS9k%3D")
        );
    }

    #[test]
    fn hostile_mall_ids_are_encoded_not_dropped() {
        assert!(query("evil.com/", 1).contains("mall_id=evil.com%2F&"));
        assert!(query("a@b", 1).contains("mall_id=a%40b&"));
    }
}
