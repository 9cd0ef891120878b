//! `/internal/malls/{mall_id}/api/v2/admin/…`: forwards a call to Cafe24's Admin API with the
//! mall's managed token, pacing and retries, so apps in any language need no Cafe24 library.
//! Off unless `CAFE24_ADMIN_TOKEN` is set (the route does not exist otherwise); callers present
//! it as `Authorization: Bearer …`, compared in constant time. Cafe24's answer (status and
//! JSON body) is passed through; a POST is retried only with `X-Retry-Post: safe`. A path with
//! any `%` is refused (400): nothing percent-encoded is forwarded.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use cafe24_client::{ApiError as CallError, Client, Request};
use cafe24_core::settings::AdminToken;
use cafe24_core::MallId;
use cafe24_tokens::TokenError;
use subtle::ConstantTimeEq;

use crate::{ApiError, AppState};

/// The route, in axum's syntax; OpenAPI lists it as `/internal/malls/{mall_id}/api/v2/{path}`.
pub const ROUTE: &str = "/internal/malls/{mall_id}/api/v2/{*path}";

/// What the proxy needs: the shared client and the credential its callers present.
pub struct Proxy {
    client: Client,
    admin_token: AdminToken,
}

impl Proxy {
    pub fn new(client: Client, admin_token: AdminToken) -> Self {
        Self {
            client,
            admin_token,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn admits(&self, presented: &str) -> bool {
        presented
            .as_bytes()
            .ct_eq(self.admin_token.expose_secret().as_bytes())
            .into()
    }
}

/// The proxy's route when it is configured; an empty router otherwise.
pub fn routes(enabled: bool) -> Router<AppState> {
    if enabled {
        Router::new().route(ROUTE, any(forward))
    } else {
        Router::new()
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[tracing::instrument(name = "proxy", skip_all, fields(method = %method))]
async fn forward(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    path: Result<Path<(String, String)>, PathRejection>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let Some(proxy) = state.proxy.clone() else {
        return ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such route.").into_response();
    };
    match bearer(&headers) {
        None => {
            let mut response = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Send the admin credential as Authorization: Bearer.",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return response;
        }
        Some(presented) if !proxy.admits(presented) => {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "The admin credential is not valid.",
            )
            .into_response()
        }
        Some(_) => {}
    }
    // Strict: nothing percent-encoded is forwarded. The path arrives decoded once; a `%` left
    // over (`%252e` → `%2e`) is read as a dot by the URL parser on the way to Cafe24 and
    // climbs out of the Admin API. Cafe24's Admin API paths need no encoding.
    let Some((mall_id, path)) = path
        .ok()
        .map(|Path(p)| p)
        .filter(|_| !uri.path().contains('%'))
    else {
        return ApiError::bad_request(
            "invalid_path",
            "The path must not contain percent-encoded characters.",
        )
        .into_response();
    };
    let Ok(mall) = MallId::parse(&mall_id) else {
        return ApiError::bad_request("invalid_mall_id", "The mall id is not valid.")
            .into_response();
    };
    let Some(admin_path) = path.strip_prefix("admin/") else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Only the Admin API (/api/v2/admin/…) is forwarded.",
        )
        .into_response();
    };
    match build(&method, admin_path, query.as_deref(), &headers, &body) {
        Ok(req) => answer(proxy.client.mall(mall).send(&req).await),
        Err(e) => e.into_response(),
    }
}

fn build(
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Request, ApiError> {
    if ![Method::GET, Method::POST, Method::PUT, Method::DELETE].contains(method) {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Only GET, POST, PUT and DELETE are forwarded.",
        ));
    }
    let mut req = Request::new(method.clone(), &format!("/{path}"))
        .map_err(|e| ApiError::bad_request("invalid_path", e.to_string()))?;
    if let Some(query) = query {
        req = req.queries(form_urlencoded::parse(query.as_bytes()).into_owned());
    }
    if !body.is_empty() {
        let json = serde_json::from_slice(body)
            .map_err(|_| ApiError::bad_request("invalid_json", "The body is not JSON."))?;
        req = req.json(json);
    }
    let safe = headers
        .get("x-retry-post")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"safe"));
    Ok(if safe { req.retry_safe() } else { req })
}

fn answer(result: Result<cafe24_client::ApiResponse, CallError>) -> Response {
    let e = match result {
        Ok(ok) => {
            let status = StatusCode::from_u16(ok.status).unwrap_or(StatusCode::OK);
            return (status, Json(ok.body)).into_response();
        }
        Err(e) => e,
    };
    let (status, code, message) = match &e {
        CallError::Cafe24 { status, body, .. } if !body.is_null() => {
            // Cafe24's own refusal, passed through as it came.
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY);
            return (status, Json(body.clone())).into_response();
        }
        CallError::Cafe24 { .. } | CallError::Malformed(_) | CallError::NoProgress { .. } => (
            StatusCode::BAD_GATEWAY,
            "bad_gateway",
            "Cafe24's answer was unreadable.",
        ),
        CallError::Transport { .. } => (
            StatusCode::BAD_GATEWAY,
            "bad_gateway",
            "Cafe24 could not be reached.",
        ),
        CallError::Deadline { .. } => (
            StatusCode::GATEWAY_TIMEOUT,
            "deadline",
            "Cafe24 did not answer successfully in time.",
        ),
        CallError::InvalidRequest(_) => (
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request cannot be forwarded.",
        ),
        CallError::Token(TokenError::NotInstalled(_)) => (
            StatusCode::NOT_FOUND,
            "not_installed",
            "The mall has not installed the app.",
        ),
        CallError::Token(TokenError::NeedsReauth(_) | TokenError::Revoked(_)) => (
            StatusCode::CONFLICT,
            "needs_reauth",
            "The mall must install the app again.",
        ),
        CallError::Token(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "token_unavailable",
            "No token could be obtained for the mall; retry shortly.",
        ),
    };
    tracing::warn!(error = %e, status = status.as_u16(), "proxied call failed");
    ApiError::new(status, code, message).into_response()
}
