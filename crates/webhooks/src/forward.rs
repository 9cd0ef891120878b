//! Forwarding events to an internal URL, so apps in any language act on them: the original body,
//! signed with `X-Cafe24-Oauth-Signature: sha256=<hex HMAC>` under the forward secret.

use std::time::Duration;

use cafe24_core::secret::ClientSecret;
use cafe24_store::WebhookEventRecord;

use crate::verify::sign_hex;

#[derive(Clone)]
pub struct Forwarder {
    http: reqwest::Client,
    url: String,
    secret: ClientSecret,
}

impl Forwarder {
    pub fn new(url: String, secret: ClientSecret) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { http, url, secret })
    }

    /// One attempt; any 2xx is success.
    pub async fn send(&self, event: &WebhookEventRecord) -> Result<(), String> {
        let response = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("x-cafe24-oauth-event-id", event.id.to_string())
            .header("x-cafe24-oauth-dedupe-key", &event.dedupe_key)
            .header("x-cafe24-oauth-event-no", event.event_no.to_string())
            .header(
                "x-cafe24-oauth-signature",
                format!("sha256={}", sign_hex(&self.secret, event.body.as_bytes())),
            )
            .body(event.body.clone())
            .send()
            .await
            .map_err(|e| format!("forward failed: {}", e.without_url()))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("forward target answered {}", status.as_u16()))
        }
    }
}
