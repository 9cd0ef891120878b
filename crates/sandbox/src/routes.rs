//! The router: per-mall Cafe24 paths under `/malls/{mall_id}`, the control API under
//! `/_sandbox`, the fault injector wrapped around every Cafe24 route, and around everything
//! the guarantee that a request runs to completion whatever its client does.

use axum::extract::connect_info::ConnectInfo;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::conn::ConnHandle;
use crate::error::{AdminError, OAuthError};
use crate::faults::Outcome;
use crate::state::SandboxState;
use crate::stats::Counter;
use crate::{admin, control, oauth};

/// Route prefix standing in for `https://{mall_id}.cafe24api.com`.
pub const MALL_PREFIX: &str = "/malls/{mall_id}";

/// The mall id in a request path (`/malls/{mall_id}/…`).
pub fn mall_id_of_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/malls/")?;
    Some(rest.split('/').next().unwrap_or_default().to_string())
}

/// Fault-table name of a matched route, and whether it is an Admin route.
pub fn endpoint_name(matched: &str) -> Option<(&'static str, bool)> {
    let rest = matched
        .strip_prefix(MALL_PREFIX)?
        .strip_prefix("/api/v2/")?;
    let name = match rest {
        "oauth/authorize" => return Some(("authorize", false)),
        "oauth/token" => return Some(("token", false)),
        "oauth/revoke" => return Some(("revoke", false)),
        "admin/products" => "products",
        "admin/products/count" => "products_count",
        "admin/products/{product_no}" => "product",
        "admin/products/{product_no}/variants" => "variants",
        "admin/products/{product_no}/variants/{variant_code}" => "variant",
        "admin/store" => "store",
        "admin/webhooks/setting" => "webhooks_setting",
        "admin/webhooks/logs" => "webhooks_logs",
        _ => "admin",
    };
    Some((name, true))
}

/// The whole sandbox as one router (used by `start`, and by tests that serve it themselves).
pub fn router(state: SandboxState) -> Router {
    let p = |s: &str| format!("{MALL_PREFIX}/api/v2/oauth{s}");
    let cafe24 = Router::new()
        .route(
            &p("/authorize"),
            get(oauth::authorize::show).post(oauth::authorize::decide),
        )
        .route(&p("/token"), post(oauth::token::token))
        .route(&p("/revoke"), post(oauth::revoke::revoke))
        .merge(admin::routes(state.clone()))
        .route_layer(middleware::from_fn_with_state(state.clone(), inject_faults));
    Router::new()
        .merge(cafe24)
        .nest("/_sandbox", control::routes())
        .fallback(not_found)
        .with_state(state)
        .layer(middleware::from_fn(run_to_completion))
}

/// Handles the request in its own task. hyper drops the response future when the client
/// closes its connection (or times out), which would cancel a handler halfway; a real server
/// finishes the work — a rotation the caller never sees is exactly what the runtime must
/// survive — so the work must not depend on anyone waiting for its answer.
async fn run_to_completion(req: Request, next: Next) -> Response {
    match tokio::spawn(next.run(req)).await {
        Ok(resp) => resp,
        Err(e) => {
            tracing::error!(error = %e, "sandbox request task failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn not_found() -> Response {
    AdminError::new(StatusCode::NOT_FOUND, "No API found with those values.").into_response()
}

/// Applies the fault set on the route's endpoint (or the `admin` group) before it runs, and
/// its response delay after.
async fn inject_faults(State(state): State<SandboxState>, req: Request, next: Next) -> Response {
    let Some((endpoint, is_admin)) = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|m| endpoint_name(m.as_str()))
    else {
        return next.run(req).await;
    };
    let mall_id = mall_id_of_path(req.uri().path()).unwrap_or_default();
    let decision = state.faults.decide(endpoint, is_admin, &mall_id);
    if let Some(latency) = decision.latency {
        tokio::time::sleep(latency).await;
    }
    if decision.outcome == Outcome::Proceed {
        let resp = next.run(req).await;
        if let Some(delay) = decision.response_delay {
            tokio::time::sleep(delay).await;
        }
        return resp;
    }
    if let Some(mall) = state.mall(&mall_id) {
        mall.stats.incr(Counter::FaultInjected);
        if decision.outcome == Outcome::Storm {
            mall.stats.incr(Counter::RateLimited);
        }
    }
    match decision.outcome {
        Outcome::Drop => {
            if let Some(ConnectInfo(conn)) = req.extensions().get::<ConnectInfo<ConnHandle>>() {
                conn.kill();
            }
            // Never written when the connection is killed; the fallback without our listener.
            StatusCode::BAD_GATEWAY.into_response()
        }
        Outcome::Storm if is_admin => {
            let size = state.config.rate_limit.bucket_size as u64;
            let mut resp = AdminError::too_many_requests().into_response();
            let h = resp.headers_mut();
            let mut put = |k: &'static str, v: String| {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    h.insert(k, v);
                }
            };
            put("x-api-call-limit", format!("{size}/{size}"));
            put("x-cafe24-call-usage", "100".into());
            put("x-cafe24-time-usage", "100".into());
            put("x-cafe24-call-remain", "1".into());
            put("x-cafe24-time-remain", "1".into());
            resp
        }
        Outcome::Storm => OAuthError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "Too Many Requests",
        )
        .into_response(),
        Outcome::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let message = status.canonical_reason().unwrap_or("Server error");
            if is_admin {
                AdminError::new(status, message).into_response()
            } else {
                OAuthError::new(status, "server_error", message).into_response()
            }
        }
        Outcome::Proceed => next.run(req).await,
    }
}
