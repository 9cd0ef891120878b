//! `POST /api/v2/oauth/revoke`: `token` + `token_hint` (not RFC 7009's `token_type_hint`);
//! revoking either token kills the pair. `200` with an empty body.

use axum::body::to_bytes;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::client_auth::{authenticate, parse_form};
use super::token::MAX_FORM_BYTES;
use crate::error::{AdminError, OAuthError};
use crate::state::{lock, SandboxState};
use crate::stats::Counter;

pub async fn revoke(
    State(state): State<SandboxState>,
    Path(mall_id): Path<String>,
    req: Request,
) -> Response {
    let Some(mall) = state.mall(&mall_id) else {
        return AdminError::unknown_mall(&mall_id).into_response();
    };
    let (parts, body) = req.into_parts();
    let Ok(body) = to_bytes(body, MAX_FORM_BYTES).await else {
        return OAuthError::invalid_request("The request body is too large").into_response();
    };
    let form = parse_form(&body);
    let app = match authenticate(&state, &parts.headers, &form) {
        Ok(app) => app,
        Err(e) => return e.into_response(),
    };
    let Some(token) = form.get("token").filter(|t| !t.is_empty()) else {
        return OAuthError::invalid_request("token is required").into_response();
    };
    let hint = form.get("token_hint").map(String::as_str);
    if hint.is_some_and(|h| h != "access_token" && h != "refresh_token") {
        return OAuthError::invalid_request("token_hint must be access_token or refresh_token")
            .into_response();
    }
    // Unknown tokens are answered 200 too, so revoking twice is harmless.
    lock(&state.tokens).revoke(token, &mall.id, &app.client_id);
    mall.stats.incr(Counter::Revoke);
    StatusCode::OK.into_response()
}
