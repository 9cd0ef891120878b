//! `CAFE24_BASE_URL`: the template every Cafe24 URL is built from, `https://{mall_id}.cafe24api.com`
//! by default. Plain `http` is allowed only for loopback hosts (the local sandbox).

use std::fmt;
use std::net::IpAddr;

use url::{Host, Url};

use crate::{MallId, Scopes};

pub const DEFAULT_BASE_URL: &str = "https://{mall_id}.cafe24api.com";
const PLACEHOLDER: &str = "{mall_id}";

#[derive(Clone, PartialEq, Eq)]
pub struct BaseUrlTemplate(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaseUrlError {
    #[error("must contain {{mall_id}} exactly once")]
    Placeholder,
    #[error("is not a valid URL ({0})")]
    Invalid(String),
    #[error("must use https (http is allowed only for loopback hosts)")]
    InsecureScheme,
    #[error("must not carry a query, a fragment or credentials")]
    Extras,
    #[error(
        "{{mall_id}} in the host must be a whole label, as in https://{{mall_id}}.cafe24api.com"
    )]
    PartialLabel,
}

impl BaseUrlTemplate {
    pub fn parse(raw: &str) -> Result<Self, BaseUrlError> {
        let raw = raw.trim().trim_end_matches('/');
        if raw.matches(PLACEHOLDER).count() != 1 {
            return Err(BaseUrlError::Placeholder);
        }
        // In the host, the mall id must be a label of its own: inside a label it could join an
        // `xn--` prefix and be decoded as an international name (found by fuzzing,
        // fuzz/fuzz_targets/base_url.rs). The URL parser says where it landed: a marker of
        // plain letters must come out as a whole host label, or in the path.
        const MARKER: &str = "mallidmarker";
        let marked = Url::parse(&raw.replace(PLACEHOLDER, MARKER))
            .map_err(|e| BaseUrlError::Invalid(e.to_string()))?;
        let host = marked.host_str().unwrap_or_default();
        let in_host = host.split('.').any(|label| label == MARKER);
        let in_path = marked.path().contains(MARKER);
        if in_host == in_path {
            return Err(if host.contains(MARKER) || !in_host {
                BaseUrlError::PartialLabel
            } else {
                BaseUrlError::Placeholder
            });
        }
        // Validate with a representative mall id substituted; with the rule above any real
        // MallId gives the same shape.
        let sample = Url::parse(&raw.replace(PLACEHOLDER, "mall"))
            .map_err(|e| BaseUrlError::Invalid(e.to_string()))?;
        if sample.query().is_some()
            || sample.fragment().is_some()
            || !sample.username().is_empty()
            || sample.password().is_some()
        {
            return Err(BaseUrlError::Extras);
        }
        match sample.scheme() {
            "https" => {}
            "http" if is_loopback(&sample) => {}
            "http" => return Err(BaseUrlError::InsecureScheme),
            other => return Err(BaseUrlError::Invalid(format!("unsupported scheme {other}"))),
        }
        Ok(Self(raw.to_owned()))
    }

    /// The base for one mall, without a trailing slash.
    pub fn for_mall(&self, mall: &MallId) -> String {
        self.0.replace(PLACEHOLDER, mall.as_str())
    }

    /// `{base}{path}` for one mall; `path` starts with `/`.
    pub fn endpoint(&self, mall: &MallId, path: &str) -> String {
        format!("{}{}", self.for_mall(mall), path)
    }

    /// The consent URL the merchant's browser is sent to.
    pub fn authorize_url(
        &self,
        mall: &MallId,
        client_id: &str,
        state: &str,
        redirect_uri: &str,
        scopes: &Scopes,
    ) -> String {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("state", state)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &scopes.to_comma_separated())
            .finish();
        format!(
            "{}?{}",
            self.endpoint(mall, "/api/v2/oauth/authorize"),
            query
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for BaseUrlTemplate {
    fn default() -> Self {
        Self(DEFAULT_BASE_URL.to_owned())
    }
}

impl fmt::Debug for BaseUrlTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BaseUrlTemplate({})", self.0)
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_sandbox_templates_are_accepted() {
        assert!(BaseUrlTemplate::parse(DEFAULT_BASE_URL).is_ok());
        assert!(BaseUrlTemplate::parse("http://127.0.0.1:9000/malls/{mall_id}").is_ok());
        assert!(BaseUrlTemplate::parse("http://localhost:9000/malls/{mall_id}/").is_ok());
        assert!(BaseUrlTemplate::parse("http://[::1]:9000/{mall_id}").is_ok());
    }

    #[test]
    fn insecure_or_malformed_templates_are_refused() {
        use BaseUrlError::*;
        assert_eq!(
            BaseUrlTemplate::parse("http://{mall_id}.cafe24api.com"),
            Err(InsecureScheme)
        );
        assert_eq!(
            BaseUrlTemplate::parse("http://10.0.0.1/{mall_id}"),
            Err(InsecureScheme)
        );
        assert_eq!(
            BaseUrlTemplate::parse("https://cafe24api.com"),
            Err(Placeholder)
        );
        assert_eq!(
            BaseUrlTemplate::parse("https://{mall_id}{mall_id}.x"),
            Err(Placeholder)
        );
        assert_eq!(
            BaseUrlTemplate::parse("https://{mall_id}.x/?a=1"),
            Err(Extras)
        );
        assert_eq!(
            BaseUrlTemplate::parse("https://u:p@{mall_id}.x"),
            Err(Extras)
        );
        assert!(matches!(
            BaseUrlTemplate::parse("ftp://{mall_id}.x"),
            Err(Invalid(_))
        ));
        // Found by fuzzing: inside a label the mall id can complete an `xn--` name that no
        // URL parser accepts.
        for partial in [
            "https://xn--{mall_id}.example.com",
            "https://api-{mall_id}.example.com",
            "https://{mall_id}x.example.com:443",
        ] {
            assert!(
                matches!(
                    BaseUrlTemplate::parse(partial),
                    Err(PartialLabel | Invalid(_))
                ),
                "{partial}"
            );
        }
        assert!(BaseUrlTemplate::parse("https://{mall_id}.api.example.com:8443").is_ok());
    }

    #[test]
    fn authorize_url_carries_comma_separated_scopes_and_encoded_state() -> Result<(), String> {
        let t = BaseUrlTemplate::default();
        let mall = MallId::parse("shop1").map_err(|e| e.to_string())?;
        let scopes =
            Scopes::parse("mall.read_product mall.read_store").map_err(|e| e.to_string())?;
        let url = t.authorize_url(&mall, "cid", "a.b+c", "https://app.example/cb", &scopes);
        let parsed = Url::parse(&url).map_err(|e| e.to_string())?;
        assert_eq!(parsed.host_str(), Some("shop1.cafe24api.com"));
        assert_eq!(parsed.path(), "/api/v2/oauth/authorize");
        let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("response_type"), Some("code"));
        assert_eq!(get("state"), Some("a.b+c"));
        assert_eq!(get("scope"), Some("mall.read_product,mall.read_store"));
        assert_eq!(get("redirect_uri"), Some("https://app.example/cb"));
        Ok(())
    }
}
