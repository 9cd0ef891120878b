//! Per-request metrics and one structured log line per request. Only the method, the matched
//! route template and the status are recorded — never the URI, whose query carries codes.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{ApiError, AppState};

/// Longer request targets are refused (414) before routing.
pub const MAX_URI_LEN: usize = 8192;

pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let declared_body = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let response = if request.uri().to_string().len() > MAX_URI_LEN {
        ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            "The request URI is too long.",
        )
        .into_response()
    } else if declared_body.is_some_and(|n| n > state.max_body_bytes) {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "The request body is too large.",
        )
        .into_response()
    } else {
        match tokio::time::timeout(state.request_timeout, next.run(request)).await {
            Ok(response) => response,
            Err(_) => {
                let mut late = ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "timeout",
                    "The request took too long.",
                )
                .into_response();
                // It may concern a one-time code (the callback): never kept by anyone.
                late.headers_mut().insert(
                    header::CACHE_CONTROL,
                    header::HeaderValue::from_static("no-store"),
                );
                late
            }
        }
    };
    let status = response.status();
    let elapsed = started.elapsed();
    state.metrics.observe_request(
        &route,
        method.as_str(),
        status.as_u16(),
        elapsed.as_secs_f64(),
    );
    tracing::info!(
        method = %method,
        route = %route,
        status = status.as_u16(),
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    response
}
