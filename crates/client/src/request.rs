//! One Admin API request: method, a checked path under `/api/v2/admin`, query, JSON body, and
//! whether a POST may be retried.

use reqwest::Method;
use serde_json::Value;

use crate::ApiError;

const ADMIN_PREFIX: &str = "/api/v2/admin";

#[derive(Debug, Clone)]
pub struct Request {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) body: Option<Value>,
    pub(crate) retry_safe: bool,
}

impl Request {
    /// `path` is relative to `/api/v2/admin` (`/products/12`); a path that already starts with
    /// `/api/v2/admin` is accepted as well. Only plain path characters are allowed: no `..`,
    /// no query or fragment (use [`Request::query`]), nothing that could leave the mall's host.
    pub fn new(method: Method, path: &str) -> Result<Self, ApiError> {
        Ok(Self {
            method,
            path: admin_path(path)?,
            query: Vec::new(),
            body: None,
            retry_safe: false,
        })
    }

    pub fn get(path: &str) -> Result<Self, ApiError> {
        Self::new(Method::GET, path)
    }

    pub fn put(path: &str, body: Value) -> Result<Self, ApiError> {
        Ok(Self::new(Method::PUT, path)?.json(body))
    }

    pub fn post(path: &str, body: Value) -> Result<Self, ApiError> {
        Ok(Self::new(Method::POST, path)?.json(body))
    }

    pub fn query(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((key.into(), value.into()));
        self
    }

    pub fn queries<K: Into<String>, V: Into<String>>(
        mut self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.query
            .extend(pairs.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// Marks a POST (or PATCH) as safe to send twice, so 5xx and transport errors are retried
    /// like they are for GET, PUT and DELETE.
    pub fn retry_safe(mut self) -> Self {
        self.retry_safe = true;
        self
    }

    /// Whether a server error or a lost answer may be retried: the request could have been
    /// processed, so only if processing it twice is harmless.
    pub fn is_idempotent(&self) -> bool {
        self.retry_safe
            || matches!(
                self.method,
                Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
            )
    }

    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The path under `/api/v2/admin`.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub(crate) fn full_path(&self) -> String {
        format!("{ADMIN_PREFIX}{}", self.path)
    }
}

fn admin_path(raw: &str) -> Result<String, ApiError> {
    let bad = |why: &str| ApiError::InvalidRequest(format!("path {why}"));
    let path = raw.strip_prefix(ADMIN_PREFIX).unwrap_or(raw);
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    if path.len() > 1024 {
        return Err(bad("is too long"));
    }
    if path.len() < 2 {
        return Err(bad("is empty (try /products)"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~/%,".contains(c);
    if !path.chars().all(allowed) {
        return Err(bad(
            "may hold only letters, digits and - . _ ~ / % , (pass the query with --query)",
        ));
    }
    // URL parsers read `%2e` as a dot, so `%2e%2e` climbs out of the Admin API like `..`.
    let dot_segment = |seg: &str| {
        let seg = seg.to_ascii_lowercase().replace("%2e", ".");
        seg == ".." || seg == "."
    };
    if path.split('/').any(dot_segment) || path.contains("//") {
        return Err(bad(
            "must not contain empty, . or .. segments (percent-encoded or not)",
        ));
    }
    Ok(path.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_relative_to_the_admin_api_and_checked() {
        let ok = |p: &str| Request::get(p).map(|r| r.path().to_owned()).ok();
        assert_eq!(ok("/products").as_deref(), Some("/products"));
        assert_eq!(ok("products/count").as_deref(), Some("/products/count"));
        assert_eq!(ok("/api/v2/admin/store").as_deref(), Some("/store"));
        for bad in [
            "/",
            "",
            "/products?limit=1",
            "/../oauth/token",
            "//evil.example",
            "/a b",
            "/@evil",
            // The URL parser reads %2e as a dot, so these would climb out of the Admin API.
            "/products/%2e%2e/%2e%2e/oauth/token",
            "/%2E%2E/oauth/token",
            "/products/.%2e/store",
            "/products/%2e./store",
            "/products/%2e/count",
        ] {
            assert!(Request::get(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_idempotent_methods_or_marked_posts_are_retryable() {
        let get = Request::get("/products").expect("path");
        assert!(get.is_idempotent());
        let put = Request::put("/products/1/variants/x", Value::Null).expect("path");
        assert!(put.is_idempotent());
        let post = Request::post("/products", Value::Null).expect("path");
        assert!(!post.is_idempotent());
        assert!(post.retry_safe().is_idempotent());
    }
}
