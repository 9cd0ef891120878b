//! Cafe24's token endpoint, as it really answers (CAFE24.md §2): absolute expiry instants in
//! Korea time without an offset (`2021-03-01T14:00:00.000`), a `scopes` array, `shop_no` as a
//! string, and no `expires_in`. Parsed tolerantly, stored as UTC.

use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;

use crate::secret::{AccessToken, RefreshToken};

/// Korea Standard Time, UTC+9, no daylight saving.
pub fn kst() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).unwrap_or_else(|| unreachable!("+09:00 is a valid offset"))
}

/// Parses a Cafe24 timestamp. Without an offset it is Korea time; with one (`Z`, `+09:00`) the
/// offset is honoured. Fraction digits may vary or be absent.
pub fn parse_cafe24_instant(raw: &str) -> Result<DateTime<Utc>, TokenParseError> {
    let raw = raw.trim();
    if let Ok(with_offset) = DateTime::parse_from_rfc3339(raw) {
        return Ok(with_offset.with_timezone(&Utc));
    }
    let naive = NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S%.f"))
        .map_err(|_| TokenParseError::BadTimestamp(raw.chars().take(40).collect()))?;
    kst()
        .from_local_datetime(&naive)
        .single()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| TokenParseError::BadTimestamp(raw.chars().take(40).collect()))
}

/// Formats an instant the way Cafe24 does (KST, milliseconds, no offset).
pub fn format_cafe24_instant(at: DateTime<Utc>) -> String {
    at.with_timezone(&kst())
        .format("%Y-%m-%dT%H:%M:%S%.3f")
        .to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenParseError {
    #[error("token response is not the expected JSON: {0}")]
    Json(String),
    #[error("token response has an unreadable timestamp {0:?}")]
    BadTimestamp(String),
    #[error("token response lacks {0}")]
    Missing(&'static str),
}

/// A successful token response.
#[derive(Clone)]
pub struct TokenSet {
    pub access_token: AccessToken,
    pub refresh_token: RefreshToken,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_expires_at: DateTime<Utc>,
    pub issued_at: Option<DateTime<Utc>>,
    pub scopes: Vec<String>,
    pub mall_id: Option<String>,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub shop_no: Option<String>,
    pub token_type: Option<String>,
    /// Set when the response did not fully parse but carried both tokens: what was wrong. The
    /// tokens are kept (Cafe24 has already rotated; dropping them would lose the mall) with
    /// conservative expiries where the real ones were unreadable.
    pub incomplete: Option<String>,
}

/// Lifetimes assumed when a response's own expiry is unreadable: half of Cafe24's (2 hours,
/// 14 days), so the pair is renewed early rather than used past its end.
pub const SALVAGED_ACCESS_LIFETIME: chrono::Duration = chrono::Duration::hours(1);
pub const SALVAGED_REFRESH_LIFETIME: chrono::Duration = chrono::Duration::days(7);

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &self.access_token)
            .field("refresh_token", &self.refresh_token)
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .field("issued_at", &self.issued_at)
            .field("scopes", &self.scopes)
            .field("mall_id", &self.mall_id)
            .field("shop_no", &self.shop_no)
            .field("incomplete", &self.incomplete)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Raw {
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires_at: Option<String>,
    refresh_token_expires_at: Option<String>,
    issued_at: Option<String>,
    #[serde(default)]
    scopes: Option<StringOrList>,
    mall_id: Option<String>,
    user_id: Option<String>,
    client_id: Option<String>,
    #[serde(default)]
    shop_no: Option<StringOrNumber>,
    token_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrList {
    List(Vec<String>),
    Text(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrNumber {
    Text(String),
    Number(serde_json::Number),
}

impl TokenSet {
    pub fn parse(body: &[u8]) -> Result<Self, TokenParseError> {
        // serde's message never contains the input values.
        let raw: Raw =
            serde_json::from_slice(body).map_err(|e| TokenParseError::Json(e.classify_name()))?;
        let required = |v: Option<String>, name| {
            v.filter(|s| !s.is_empty())
                .ok_or(TokenParseError::Missing(name))
        };
        Ok(Self {
            access_token: AccessToken::new(required(raw.access_token, "access_token")?),
            refresh_token: RefreshToken::new(required(raw.refresh_token, "refresh_token")?),
            access_expires_at: parse_cafe24_instant(&required(raw.expires_at, "expires_at")?)?,
            refresh_expires_at: parse_cafe24_instant(&required(
                raw.refresh_token_expires_at,
                "refresh_token_expires_at",
            )?)?,
            issued_at: raw
                .issued_at
                .as_deref()
                .map(parse_cafe24_instant)
                .transpose()?,
            scopes: match raw.scopes {
                Some(StringOrList::List(list)) => list,
                Some(StringOrList::Text(text)) => text
                    .split([',', ' '])
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
                None => Vec::new(),
            },
            mall_id: raw.mall_id,
            user_id: raw.user_id,
            client_id: raw.client_id,
            shop_no: raw.shop_no.map(|s| match s {
                StringOrNumber::Text(t) => t,
                StringOrNumber::Number(n) => n.to_string(),
            }),
            token_type: raw.token_type,
            incomplete: None,
        })
    }

    /// [`TokenSet::parse`], or — when that fails but the body is JSON carrying both tokens — a
    /// set salvaged from it: every field that still reads is kept, unreadable expiries become
    /// `now` plus the conservative lifetimes above, and `incomplete` says what was wrong.
    pub fn parse_salvaging(body: &[u8], now: DateTime<Utc>) -> Result<Self, TokenParseError> {
        let strict = match Self::parse(body) {
            Ok(set) => return Ok(set),
            Err(e) => e,
        };
        let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(body) else {
            return Err(strict);
        };
        let text = |name: &str| {
            map.get(name)
                .and_then(serde_json::Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let (Some(access), Some(refresh)) = (text("access_token"), text("refresh_token")) else {
            return Err(strict);
        };
        let instant = |name: &str| text(name).and_then(|t| parse_cafe24_instant(&t).ok());
        let scopes = match map.get("scopes") {
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(serde_json::Value::String(t)) => t
                .split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        let shop_no = match map.get("shop_no") {
            Some(serde_json::Value::String(t)) => Some(t.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        Ok(Self {
            access_token: AccessToken::new(access),
            refresh_token: RefreshToken::new(refresh),
            access_expires_at: instant("expires_at").unwrap_or(now + SALVAGED_ACCESS_LIFETIME),
            refresh_expires_at: instant("refresh_token_expires_at")
                .unwrap_or(now + SALVAGED_REFRESH_LIFETIME),
            issued_at: instant("issued_at"),
            scopes,
            mall_id: text("mall_id"),
            user_id: text("user_id"),
            client_id: text("client_id"),
            shop_no,
            token_type: text("token_type"),
            incomplete: Some(strict.to_string()),
        })
    }
}

trait ClassifyName {
    fn classify_name(&self) -> String;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> String {
        format!(
            "{:?} error at line {} column {}",
            self.classify(),
            self.line(),
            self.column()
        )
    }
}

/// An OAuth error body: `{"error":"invalid_grant","error_description":"…"}`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct OAuthErrorBody {
    pub error: String,
    #[serde(default)]
    pub error_description: Option<String>,
}

impl OAuthErrorBody {
    pub fn parse(body: &[u8]) -> Option<Self> {
        serde_json::from_slice(body).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Timelike};

    fn utc(raw: &str) -> DateTime<Utc> {
        parse_cafe24_instant(raw).expect("parses")
    }

    #[test]
    fn kst_without_offset_is_nine_hours_ahead_of_utc() {
        let t = utc("2021-03-01T14:00:00.000");
        assert_eq!((t.hour(), t.minute(), t.day()), (5, 0, 1));
    }

    #[test]
    fn day_month_and_year_boundaries_roll_back_correctly() {
        // 08:59 KST on 1 January is still the previous year in UTC.
        let t = utc("2026-01-01T08:59:59.999");
        assert_eq!((t.year(), t.month(), t.day(), t.hour()), (2025, 12, 31, 23));
        let t = utc("2026-01-01T09:00:00.000");
        assert_eq!((t.year(), t.month(), t.day(), t.hour()), (2026, 1, 1, 0));
        // 1 March KST, early morning: the last day of February in UTC (leap and common years).
        let t = utc("2024-03-01T03:00:00.000");
        assert_eq!((t.month(), t.day(), t.hour()), (2, 29, 18));
        let t = utc("2025-03-01T03:00:00");
        assert_eq!((t.month(), t.day(), t.hour()), (2, 28, 18));
        // First of a month.
        let t = utc("2026-07-01T00:30:00.5");
        assert_eq!((t.month(), t.day(), t.hour(), t.minute()), (6, 30, 15, 30));
    }

    #[test]
    fn fraction_digits_vary_and_explicit_offsets_are_honoured() {
        assert_eq!(
            utc("2021-03-01T14:00:00"),
            utc("2021-03-01T14:00:00.000000")
        );
        assert_eq!(
            utc("2021-03-01T14:00:00+09:00"),
            utc("2021-03-01T14:00:00.000")
        );
        assert_eq!(utc("2021-03-01T05:00:00Z"), utc("2021-03-01T14:00:00"));
        assert!(parse_cafe24_instant("tomorrow").is_err());
        assert!(parse_cafe24_instant("2021-02-30T00:00:00").is_err());
    }

    #[test]
    fn formatting_round_trips() {
        let t = utc("2026-01-01T08:59:59.999");
        assert_eq!(format_cafe24_instant(t), "2026-01-01T08:59:59.999");
    }

    #[test]
    fn the_documented_response_parses() {
        let body = br#"{"access_token":"AAA","expires_at":"2021-03-01T14:00:00.000","refresh_token":"RRR",
            "refresh_token_expires_at":"2021-03-15T12:00:00.000","client_id":"cid","mall_id":"yourmall",
            "user_id":"test","scopes":["mall.read_order","mall.read_product"],
            "issued_at":"2021-03-01T12:00:00.000","shop_no":"1","token_type":"Bearer"}"#;
        let t = TokenSet::parse(body).expect("parses");
        assert_eq!(t.access_token.expose_secret(), "AAA");
        assert_eq!(
            t.access_expires_at - t.issued_at.expect("issued"),
            chrono::Duration::hours(2)
        );
        assert_eq!(t.refresh_expires_at, utc("2021-03-15T03:00:00Z"));
        assert_eq!(t.scopes, vec!["mall.read_order", "mall.read_product"]);
        assert_eq!(t.shop_no.as_deref(), Some("1"));
        assert!(!format!("{t:?}").contains("AAA") && !format!("{t:?}").contains("RRR"));
    }

    #[test]
    fn older_responses_without_new_fields_and_odd_types_parse() {
        let body = br#"{"access_token":"a","expires_at":"2021-03-01T14:00:00.000","refresh_token":"r",
            "refresh_token_expires_at":"2021-03-15T12:00:00.000","scopes":"mall.read_product,mall.read_store","shop_no":1}"#;
        let t = TokenSet::parse(body).expect("parses");
        assert_eq!(t.scopes.len(), 2);
        assert_eq!(t.shop_no.as_deref(), Some("1"));
        assert!(t.token_type.is_none() && t.issued_at.is_none());
    }

    #[test]
    fn a_response_with_both_tokens_is_salvaged_with_conservative_expiries() {
        let now = utc("2026-01-01T12:00:00");
        // A timestamp in a format we don't know, and an unexpected type for `scopes`.
        let body = br#"{"access_token":"AAA","refresh_token":"RRR","expires_at":"1 Jan 2026 14:00",
            "refresh_token_expires_at":"2026-01-15T12:00:00.000","scopes":{"read":true},"shop_no":"1"}"#;
        assert!(TokenSet::parse(body).is_err());
        let t = TokenSet::parse_salvaging(body, now).expect("salvaged");
        assert_eq!(t.access_token.expose_secret(), "AAA");
        assert_eq!(t.refresh_token.expose_secret(), "RRR");
        assert_eq!(t.access_expires_at, now + SALVAGED_ACCESS_LIFETIME);
        assert_eq!(t.refresh_expires_at, utc("2026-01-15T12:00:00"));
        assert!(t.incomplete.is_some());
        assert!(!format!("{t:?}").contains("AAA"));
        // A complete response is not marked, and a body without both tokens stays an error.
        let good =
            br#"{"access_token":"a","expires_at":"2021-03-01T14:00:00.000","refresh_token":"r",
            "refresh_token_expires_at":"2021-03-15T12:00:00.000"}"#;
        assert!(TokenSet::parse_salvaging(good, now)
            .expect("ok")
            .incomplete
            .is_none());
        assert!(
            TokenSet::parse_salvaging(br#"{"access_token":"a","expires_at":"x"}"#, now).is_err()
        );
        assert!(TokenSet::parse_salvaging(b"<html>", now).is_err());
    }

    #[test]
    fn broken_responses_are_errors_that_do_not_echo_values() {
        assert_eq!(
            TokenSet::parse(br#"{"access_token":"a"}"#).err(),
            Some(TokenParseError::Missing("refresh_token"))
        );
        let err = TokenSet::parse(br#"{"access_token":"SECRETX","refresh_token":"r","expires_at":"soon","refresh_token_expires_at":"x"}"#)
            .expect_err("error");
        assert!(matches!(err, TokenParseError::BadTimestamp(_)));
        let err = TokenSet::parse(b"<html>SECRETX</html>")
            .expect_err("error")
            .to_string();
        assert!(!err.contains("SECRETX"), "{err}");
    }
}
