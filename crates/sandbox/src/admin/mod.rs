//! The Admin API (`/api/v2/admin/…`): bearer checks, one scope per endpoint, the leaky
//! bucket and its headers, then the resource handlers.

pub mod catalog;
pub mod product_json;
pub mod products;
pub mod query;
pub mod render;
pub mod store;
pub mod variants;
pub mod webhooks;

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::error::AdminError;
use crate::routes::{endpoint_name, mall_id_of_path, MALL_PREFIX};
use crate::state::{lock, Mall, SandboxState};
use crate::stats::Counter;
use crate::tokens::{AccessError, Grant};

/// What the middleware hands to a handler: the mall and the caller's grant.
#[derive(Debug, Clone)]
pub struct AdminCtx {
    pub mall: Arc<Mall>,
    pub grant: Arc<Grant>,
}

/// The scope an endpoint needs (Cafe24: exactly one per endpoint).
pub fn required_scope(endpoint: &str, method: &Method) -> &'static str {
    let write = method != Method::GET && method != Method::HEAD;
    match (endpoint, write) {
        ("store", _) => "mall.read_store",
        ("webhooks_setting" | "webhooks_logs", false) => "mall.read_application",
        ("webhooks_setting" | "webhooks_logs", true) => "mall.write_application",
        (_, false) => "mall.read_product",
        (_, true) => "mall.write_product",
    }
}

/// Admin routes, already wrapped in the auth/rate-limit middleware.
pub fn routes(state: SandboxState) -> Router<SandboxState> {
    let p = |s: &str| format!("{MALL_PREFIX}/api/v2/admin{s}");
    Router::new()
        .route(&p("/products"), get(products::list))
        .route(&p("/products/count"), get(products::count))
        .route(&p("/products/{product_no}"), get(products::detail))
        .route(
            &p("/products/{product_no}/variants"),
            get(products::variants),
        )
        .route(
            &p("/products/{product_no}/variants/{variant_code}"),
            get(products::variant).put(variants::update_variant),
        )
        .route(&p("/store"), get(store::show))
        .route(
            &p("/webhooks/setting"),
            get(webhooks::setting).put(webhooks::update_setting),
        )
        .route(&p("/webhooks/logs"), get(webhooks::logs))
        .route_layer(middleware::from_fn_with_state(state, admin_gate))
}

fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Mall lookup, token check, scope check and the bucket, in Cafe24's order.
async fn admin_gate(State(state): State<SandboxState>, mut req: Request, next: Next) -> Response {
    let mall_id = mall_id_of_path(req.uri().path()).unwrap_or_default();
    let Some(mall) = state.mall(&mall_id) else {
        return AdminError::unknown_mall(&mall_id).into_response();
    };
    mall.stats.incr(Counter::ApiCall);
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|m| endpoint_name(m.as_str()))
        .map(|(name, _)| name)
        .unwrap_or("admin");
    let now = state.now();
    let cfg = &state.config.rate_limit;

    let checked = match bearer(&req) {
        Some(token) => lock(&state.tokens).check_access(token, &mall.id, now),
        None => Err(AccessError::Unknown),
    };
    let grant = match checked {
        Ok(g) => g,
        Err(e) => {
            let err = match e {
                AccessError::Expired => AdminError::expired_token(),
                AccessError::Unknown => AdminError::invalid_token(),
            };
            let reading = lock(&mall.bucket).peek(cfg, now);
            let mut resp = err.into_response();
            reading.write_headers(resp.headers_mut());
            return resp;
        }
    };
    let scope = required_scope(endpoint, req.method());
    if !grant.scopes.iter().any(|s| s == scope) {
        let reading = lock(&mall.bucket).peek(cfg, now);
        let mut resp = AdminError::insufficient_scope(scope).into_response();
        reading.write_headers(resp.headers_mut());
        return resp;
    }
    let reading = lock(&mall.bucket).take(cfg, now);
    if !reading.allowed {
        mall.stats.incr(Counter::RateLimited);
        let mut resp = AdminError::too_many_requests().into_response();
        reading.write_headers(resp.headers_mut());
        return resp;
    }
    req.extensions_mut().insert(AdminCtx {
        mall: mall.clone(),
        grant,
    });
    let mut resp = next.run(req).await;
    reading.write_headers(resp.headers_mut());
    resp
}
