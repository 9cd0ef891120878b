//! `POST /api/v2/oauth/token`: `authorization_code` and `refresh_token` grants with Cafe24's
//! response fields (KST timestamps without offset, `scopes` array, `shop_no` string) and
//! refresh-token rotation.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::to_bytes;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Duration;
use serde_json::json;

use super::client_auth::{authenticate, parse_form};
use crate::clock::token_time;
use crate::conn::ConnHandle;
use crate::error::{AdminError, OAuthError};
use crate::faults::LoseResponse;
use crate::state::{lock, Mall, SandboxState};
use crate::stats::Counter;
use crate::tokens::{CodeError, IssuedTokens, Lifetimes};

/// Form bodies larger than this are refused.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

fn lifetimes(state: &SandboxState) -> Lifetimes {
    let (access, refresh) = state.token_lifetimes();
    Lifetimes {
        access: Duration::seconds(access),
        refresh: Duration::seconds(refresh),
    }
}

/// The success body, field for field as CAFE24.md §2.
pub fn token_body(t: &IssuedTokens) -> serde_json::Value {
    json!({
        "access_token": t.access_token,
        "expires_at": token_time(t.expires_at),
        "refresh_token": t.refresh_token,
        "refresh_token_expires_at": token_time(t.refresh_token_expires_at),
        "client_id": t.grant.client_id,
        "mall_id": t.grant.mall_id,
        "user_id": t.grant.user_id,
        "scopes": t.grant.scopes,
        "issued_at": token_time(t.issued_at),
        "shop_no": t.grant.shop_no.to_string(),
        "token_type": "Bearer"
    })
}

fn success(t: &IssuedTokens) -> Response {
    let mut resp = Json(token_body(t)).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    h.insert(header::PRAGMA, header::HeaderValue::from_static("no-cache"));
    resp
}

fn issued(mall: &Mall, t: IssuedTokens) -> IssuedTokens {
    mall.stats.incr(Counter::AccessTokenIssued);
    mall.stats.incr(Counter::RefreshTokenIssued);
    t
}

pub async fn token(
    State(state): State<SandboxState>,
    Path(mall_id): Path<String>,
    req: Request,
) -> Response {
    let Some(mall) = state.mall(&mall_id) else {
        return AdminError::unknown_mall(&mall_id).into_response();
    };
    let conn = req
        .extensions()
        .get::<ConnectInfo<ConnHandle>>()
        .map(|c| c.0.clone());
    let (parts, body) = req.into_parts();
    let Ok(body) = to_bytes(body, MAX_FORM_BYTES).await else {
        mall.stats.incr(Counter::TokenError);
        return OAuthError::invalid_request("The request body is too large").into_response();
    };
    let form = parse_form(&body);
    match grant(&state, &mall, &parts.headers, &form) {
        Ok((tokens, is_refresh)) => {
            if is_refresh {
                if let Some(lose) = state.faults.take_lose_response(&mall.id) {
                    mall.stats.incr(Counter::ResponseLost);
                    return lost_response(lose, conn);
                }
            }
            success(&tokens)
        }
        Err(e) => {
            mall.stats.incr(Counter::TokenError);
            e.into_response()
        }
    }
}

/// The rotation happened; the client never learns the new tokens.
fn lost_response(how: LoseResponse, conn: Option<ConnHandle>) -> Response {
    match (how, conn) {
        (LoseResponse::Drop, Some(conn)) => {
            conn.kill();
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        (LoseResponse::Status(s), _) => {
            let status = StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            OAuthError::new(status, "server_error", "Internal server error").into_response()
        }
        // Served without the sandbox listener: an opaque 500 is the closest thing.
        (LoseResponse::Drop, None) => OAuthError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "Internal server error",
        )
        .into_response(),
    }
}

fn grant(
    state: &SandboxState,
    mall: &Arc<Mall>,
    headers: &axum::http::HeaderMap,
    form: &HashMap<String, String>,
) -> Result<(IssuedTokens, bool), OAuthError> {
    let app = authenticate(state, headers, form)?;
    let now = state.now();
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = form
                .get("code")
                .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
            let redirect_uri = form.get("redirect_uri").map(String::as_str);
            let redeemed =
                lock(&state.tokens).redeem_code(code, &mall.id, &app.client_id, redirect_uri, now);
            let g = redeemed.map_err(|e| {
                mall.stats.incr(Counter::CodeRejected);
                match e {
                    CodeError::Expired => OAuthError::invalid_grant("Code time expired"),
                    other => OAuthError::invalid_grant(other.to_string()),
                }
            })?;
            let t = lock(&state.tokens).issue_pair(g, now, lifetimes(state));
            mall.stats.incr(Counter::AuthorizationCodeGrant);
            Ok((issued(mall, t), false))
        }
        Some("refresh_token") => {
            let rt = form
                .get("refresh_token")
                .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
            let keep = state.config.old_access_token_survives_refresh;
            let rotated = lock(&state.tokens).rotate(
                rt,
                &mall.id,
                &app.client_id,
                now,
                lifetimes(state),
                keep,
            );
            let Some(t) = rotated else {
                mall.stats.incr(Counter::RefreshTokenRejected);
                let status = StatusCode::from_u16(state.config.invalid_refresh_token_status)
                    .unwrap_or(StatusCode::UNAUTHORIZED);
                return Err(OAuthError::new(
                    status,
                    "invalid_grant",
                    "Invalid refresh_token",
                ));
            };
            mall.stats.incr(Counter::RefreshGrant);
            Ok((issued(mall, t), true))
        }
        Some(_) => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token",
        )),
        None => Err(OAuthError::invalid_request("grant_type is required")),
    }
}
