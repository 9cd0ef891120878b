//! App launch URLs: what Cafe24 sends the merchant's browser to when the app is opened.
//!
//! Parameters in alphabetical order (`is_multi_shop, lang, mall_id, nation, shop_no,
//! timestamp, user_id, user_name, user_type`), form-URL-encoded, then `hmac` last:
//! `base64(HMAC-SHA256(key = client secret, msg = the encoded query before "&hmac"))`,
//! itself URL-encoded (CAFE24.md §6).

use base64::Engine;
use serde::Deserialize;

use crate::config::TimestampUnit;
use crate::state::Shared;
use crate::webhooks::sign::hmac_sha256;

/// What a launch URL is built from; everything but `mall_id` has a default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LaunchParams {
    pub mall_id: String,
    /// The app (default: the first registered app).
    pub client_id: Option<String>,
    pub shop_no: Option<u32>,
    pub user_id: Option<String>,
    pub user_name: Option<String>,
    /// `P` representative operator (default), `S` sub-operator.
    pub user_type: Option<String>,
    pub is_multi_shop: Option<bool>,
    pub lang: Option<String>,
    pub nation: Option<String>,
    /// Override the timestamp (in the configured unit); default: the sandbox clock.
    pub timestamp: Option<i64>,
}

/// Why no URL could be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaunchError {
    #[error("unknown mall")]
    UnknownMall,
    #[error("unknown client_id")]
    UnknownApp,
}

/// The signed query string (without `?`), `hmac` last.
pub fn signed_query(secret: &str, pairs: &[(&str, String)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    let query = ser.finish();
    let mac = hmac_sha256(secret.as_bytes(), query.as_bytes());
    let hmac = base64::engine::general_purpose::STANDARD.encode(mac);
    let encoded: String = form_urlencoded::byte_serialize(hmac.as_bytes()).collect();
    format!("{query}&hmac={encoded}")
}

/// A full launch URL for the app's App URL.
pub fn launch_url(state: &Shared, p: &LaunchParams) -> Result<String, LaunchError> {
    let mall = state.mall(&p.mall_id).ok_or(LaunchError::UnknownMall)?;
    let app = match &p.client_id {
        Some(id) => state.app(id),
        None => state.apps().into_iter().next(),
    }
    .ok_or(LaunchError::UnknownApp)?;
    let cfg = &state.config.launch;
    let now = state.now();
    let timestamp = p.timestamp.unwrap_or(match cfg.timestamp_unit {
        TimestampUnit::Seconds => now.timestamp(),
        TimestampUnit::Milliseconds => now.timestamp_millis(),
    });
    let mut pairs: Vec<(&str, String)> = vec![
        (
            "is_multi_shop",
            if p.is_multi_shop.unwrap_or(mall.shops > 1) {
                "T"
            } else {
                "F"
            }
            .into(),
        ),
        ("lang", p.lang.clone().unwrap_or_else(|| cfg.lang.clone())),
        ("mall_id", mall.id.clone()),
    ];
    if cfg.include_nation {
        pairs.push((
            "nation",
            p.nation.clone().unwrap_or_else(|| cfg.nation.clone()),
        ));
    }
    pairs.extend([
        ("shop_no", p.shop_no.unwrap_or(mall.shop_no).to_string()),
        ("timestamp", timestamp.to_string()),
        (
            "user_id",
            p.user_id.clone().unwrap_or_else(|| mall.user_id.clone()),
        ),
        (
            "user_name",
            p.user_name
                .clone()
                .unwrap_or_else(|| "Sandbox Operator".into()),
        ),
        (
            "user_type",
            p.user_type.clone().unwrap_or_else(|| "P".into()),
        ),
    ]);
    let query = signed_query(app.client_secret.expose_secret(), &pairs);
    let sep = if app.app_url.contains('?') { '&' } else { '?' };
    Ok(format!("{}{sep}{query}", app.app_url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_is_last_and_covers_the_encoded_query() {
        let q = signed_query(
            "secret",
            &[("mall_id", "shop".into()), ("user_name", "홍 길동".into())],
        );
        let (msg, hmac) = q.rsplit_once("&hmac=").unwrap_or_default();
        assert_eq!(msg, "mall_id=shop&user_name=%ED%99%8D+%EA%B8%B8%EB%8F%99");
        let decoded: String = form_urlencoded::parse(format!("h={hmac}").as_bytes())
            .map(|(_, v)| v.into_owned())
            .collect();
        let expected = base64::engine::general_purpose::STANDARD
            .encode(hmac_sha256(b"secret", msg.as_bytes()));
        assert_eq!(decoded, expected);
    }
}
