//! Client authentication on the token and revoke endpoints: `Authorization: Basic` or
//! `client_id`/`client_secret` in the form body (Cafe24 accepts both).

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{header, HeaderMap, StatusCode};
use base64::Engine;

use crate::config::AppConfig;
use crate::error::OAuthError;
use crate::secret::ct_eq;
use crate::state::Shared;

/// Reads a form-encoded body into a map (last value wins).
pub fn parse_form(body: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn basic(headers: &HeaderMap) -> Option<Result<(String, String), OAuthError>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let bad = || {
        OAuthError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Malformed Basic authorization header",
        )
    };
    let parsed = (|| {
        let value = value.to_str().ok()?;
        let (scheme, encoded) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (id, secret) = text.split_once(':')?;
        Some((id.to_string(), secret.to_string()))
    })();
    Some(parsed.ok_or_else(bad))
}

/// The authenticated app, or the OAuth error Cafe24 answers with.
pub fn authenticate(
    state: &Shared,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Arc<AppConfig>, OAuthError> {
    let (id, secret) = match basic(headers) {
        Some(r) => r?,
        None => match (form.get("client_id"), form.get("client_secret")) {
            (Some(id), Some(secret)) => (id.clone(), secret.clone()),
            _ => {
                return Err(OAuthError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "Client authentication is required",
                ))
            }
        },
    };
    let app = state.app(&id).ok_or_else(|| {
        OAuthError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Invalid client_id",
        )
    })?;
    if !ct_eq(&secret, app.client_secret.expose_secret()) {
        return Err(OAuthError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
            "Invalid client_secret",
        ));
    }
    Ok(app)
}
