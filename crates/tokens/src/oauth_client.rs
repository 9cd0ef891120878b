//! Calls to Cafe24's token and revoke endpoints (CAFE24.md §2–3): form-encoded, client
//! authenticated with HTTP Basic. Errors keep the status and Cafe24's error code, never a token.

use std::sync::Arc;
use std::time::Duration;

use cafe24_core::oauth::{OAuthErrorBody, TokenSet};
use cafe24_core::secret::{AuthorizationCode, RefreshToken};
use cafe24_core::settings::AppSettings;
use cafe24_core::MallId;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    #[error("could not reach Cafe24: {0}")]
    Transport(String),
    #[error("Cafe24 answered {status}")]
    Unavailable { status: u16 },
    #[error("Cafe24 refused the grant ({status} {error}: {description})")]
    InvalidGrant {
        status: u16,
        error: String,
        description: String,
    },
    #[error("Cafe24 refused the request ({status} {error}: {description})")]
    Rejected {
        status: u16,
        error: String,
        description: String,
    },
    #[error("Cafe24's answer was unreadable: {0}")]
    Malformed(String),
}

impl OAuthError {
    /// Worth trying again: the request may not have been processed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            OAuthError::Transport(_) | OAuthError::Unavailable { .. }
        )
    }

    /// The grant (code or refresh token) is dead: any 400/401 with `invalid_grant`.
    pub fn is_dead_grant(&self) -> bool {
        matches!(self, OAuthError::InvalidGrant { .. })
    }

    /// A revoke refused because Cafe24 no longer knows the token: a 400/401 `invalid_token`.
    /// Nothing else counts: `invalid_client`, and `invalid_grant` (Cafe24's answer to a wrong
    /// client secret, CAFE24.md §2), are about our credentials and say nothing of the token.
    pub fn token_already_dead(&self) -> bool {
        matches!(self, OAuthError::Rejected { status: 400 | 401, error, .. } if error == "invalid_token")
    }

    /// Cafe24 answered and refused the request as a whole (a 4xx other than `invalid_grant`),
    /// so it did not rotate anything. After no answer, a 5xx or a 429 it may have: the lost
    /// response may have carried a rotated pair.
    pub fn grant_untouched(&self) -> bool {
        matches!(self, OAuthError::Rejected { .. })
    }
}

#[derive(Clone)]
pub struct OAuthClient {
    http: reqwest::Client,
    app: Arc<AppSettings>,
}

impl OAuthClient {
    pub fn new(app: Arc<AppSettings>, timeout: Duration) -> Result<Self, OAuthError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("cafe24-oauth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OAuthError::Transport(e.to_string()))?;
        Ok(Self { http, app })
    }

    pub fn app(&self) -> &AppSettings {
        &self.app
    }

    /// `grant_type=authorization_code`.
    pub async fn exchange(
        &self,
        mall: &MallId,
        code: &AuthorizationCode,
    ) -> Result<TokenSet, OAuthError> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.expose_secret()),
            ("redirect_uri", self.app.redirect_uri.as_str()),
        ];
        self.token_call(mall, &form, code.expose_secret()).await
    }

    /// `grant_type=refresh_token`. Cafe24 rotates: the token passed in is dead once this succeeds.
    pub async fn refresh(
        &self,
        mall: &MallId,
        refresh: &RefreshToken,
    ) -> Result<TokenSet, OAuthError> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.expose_secret()),
        ];
        self.token_call(mall, &form, refresh.expose_secret()).await
    }

    /// `POST /api/v2/oauth/revoke` with `token` and `token_hint` (Cafe24's name, not RFC 7009's).
    pub async fn revoke(&self, mall: &MallId, token: &str, hint: &str) -> Result<(), OAuthError> {
        let url = self.app.base_url.endpoint(mall, "/api/v2/oauth/revoke");
        let response = self
            .http
            .post(url)
            .basic_auth(
                &self.app.client_id,
                Some(self.app.client_secret.expose_secret()),
            )
            .form(&[("token", token), ("token_hint", hint)])
            .send()
            .await
            .map_err(transport)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(transport)?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(classify(
                status,
                &body,
                &[token, self.app.client_secret.expose_secret()],
            ))
        }
    }

    async fn token_call(
        &self,
        mall: &MallId,
        form: &[(&str, &str)],
        sent_secret: &str,
    ) -> Result<TokenSet, OAuthError> {
        let url = self.app.base_url.endpoint(mall, "/api/v2/oauth/token");
        let response = self
            .http
            .post(url)
            .basic_auth(
                &self.app.client_id,
                Some(self.app.client_secret.expose_secret()),
            )
            .form(form)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(transport)?;
        if status == 200 {
            // A 200 means Cafe24 has consumed the code or rotated the refresh token: keep both
            // tokens even if something else in the body does not parse.
            TokenSet::parse_salvaging(&body, chrono::Utc::now())
                .map_err(|e| OAuthError::Malformed(e.to_string()))
        } else {
            Err(classify(
                status,
                &body,
                &[sent_secret, self.app.client_secret.expose_secret()],
            ))
        }
    }
}

fn transport(e: reqwest::Error) -> OAuthError {
    OAuthError::Transport(e.without_url().to_string())
}

/// Longest excerpt of each of Cafe24's error texts kept for diagnosis, in characters.
const MAX_ERROR_TEXT: usize = 200;

/// Maps an error answer; any echo of a secret we sent is scrubbed from Cafe24's text.
fn classify(status: u16, body: &[u8], sent_secrets: &[&str]) -> OAuthError {
    if status == 429 || status >= 500 {
        return OAuthError::Unavailable { status };
    }
    let parsed = OAuthErrorBody::parse(body);
    // Scrub, then shorten: a secret cut in two by the shortening would no longer match.
    let scrub = |text: String| {
        let text = sent_secrets
            .iter()
            .filter(|s| !s.is_empty())
            .fold(text, |text, secret| text.replace(secret, "[redacted]"));
        text.chars().take(MAX_ERROR_TEXT).collect::<String>()
    };
    let error = parsed
        .as_ref()
        .map_or_else(|| "unknown".to_owned(), |p| scrub(p.error.clone()));
    let description = parsed
        .and_then(|p| p.error_description)
        .map(scrub)
        .unwrap_or_default();
    if matches!(status, 400 | 401) && error == "invalid_grant" {
        OAuthError::InvalidGrant {
            status,
            error,
            description,
        }
    } else {
        OAuthError::Rejected {
            status,
            error,
            description,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified_and_scrubbed() {
        let dead = classify(
            400,
            br#"{"error":"invalid_grant","error_description":"Invalid refresh_token SECRET1"}"#,
            &["SECRET1"],
        );
        assert!(dead.is_dead_grant());
        assert!(!dead.to_string().contains("SECRET1"), "{dead}");
        assert!(classify(401, br#"{"error":"invalid_grant"}"#, &[]).is_dead_grant());
        assert!(classify(503, b"", &[]).is_retryable());
        assert!(classify(429, b"", &[]).is_retryable());
        let other = classify(400, br#"{"error":"invalid_request"}"#, &[]);
        assert!(!other.is_dead_grant() && !other.is_retryable());
        assert!(matches!(
            classify(400, b"<html>", &[]),
            OAuthError::Rejected { .. }
        ));
    }

    #[test]
    fn a_secret_straddling_the_cut_is_scrubbed_before_the_text_is_shortened() {
        let secret = "rt-7f3a9c2e5b8d1f4a6c0e9b2d";
        // The description is cut at 200 characters; the token spans characters 190..217.
        let text = format!("{}{secret} is not a valid refresh_token", "x".repeat(190));
        let body = serde_json::json!({"error": text, "error_description": text}).to_string();
        let err = classify(400, body.as_bytes(), &[secret]);
        let OAuthError::Rejected {
            error, description, ..
        } = &err
        else {
            panic!("{err:?}");
        };
        for kept in [error, description] {
            assert!(kept.chars().count() <= 200, "{kept}");
        }
        for kept in [error, description, &err.to_string()] {
            assert!(
                !kept.contains(&secret[..8]),
                "part of the secret kept: {kept}"
            );
        }
        // The client secret (sent as Basic auth) is scrubbed as well.
        let echoed = br#"{"error":"invalid_client","error_description":"Invalid client_secret cs-0123456789abcdef"}"#;
        let err = classify(401, echoed, &[secret, "cs-0123456789abcdef"]);
        assert!(!err.to_string().contains("cs-0123"), "{err}");
    }
}
