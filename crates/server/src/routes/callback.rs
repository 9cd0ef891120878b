//! `GET /oauth/callback?code=…&state=…`: the serverless spec's public endpoint. Verifies the
//! signed state, stores the code (once per state), and answers
//! `200 {"ok":true,"message":"Saved","id":…}`. Nothing is stored unless the state is valid.
//! Every answer, success or refusal, JSON or HTML, carries `Cache-Control: no-store`.

use axum::extract::{RawQuery, State};
use axum::http::header::{CACHE_CONTROL, PRAGMA};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cafe24_core::secret::AuthorizationCode;
use cafe24_core::state::StateError;
use cafe24_store::{CodeInsert, NewAuthorizationCode};
use serde_json::json;

use super::single_param;
use crate::page::View;
use crate::{ApiError, AppState};

/// Longest code accepted; Cafe24's are far shorter.
pub const MAX_CODE_LEN: usize = 512;

pub async fn callback(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let mut response = answer(&state, query.as_deref().unwrap_or_default()).await;
    // Every answer concerns a one-time code: no browser or proxy may keep it.
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

async fn answer(state: &AppState, query: &str) -> Response {
    match handle(state, query).await {
        Ok((id, response)) => {
            state.code_stored.notify_one();
            state.metrics.callback("saved");
            tracing::info!(code_id = id, "authorization code stored");
            response
        }
        Err((outcome, error)) => {
            state.metrics.callback(outcome);
            tracing::info!(outcome, status = error.status.as_u16(), "callback refused");
            error.into_response()
        }
    }
}

type Refusal = (&'static str, ApiError);

async fn handle(state: &AppState, query: &str) -> Result<(i64, Response), Refusal> {
    let param = |name| single_param(query, name).map_err(|e| ("bad_request", e));

    // Cafe24 sends the merchant back with `error=` when consent is refused.
    if let Some(error) = param("error")? {
        let known = error.len() <= 64 && error.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        let reason = if known {
            error.as_str()
        } else {
            "authorization_error"
        };
        return Err((
            "denied",
            ApiError::new(
                StatusCode::FORBIDDEN,
                "access_denied",
                format!("The app was not authorized by the mall ({reason}). Start the install again to retry."),
            ),
        ));
    }

    let (Some(code), Some(raw_state)) = (param("code")?, param("state")?) else {
        return Err((
            "missing_parameter",
            ApiError::bad_request("missing_parameter", "Both code and state are required."),
        ));
    };
    if code.len() > MAX_CODE_LEN || !code.bytes().all(|b| b.is_ascii_graphic()) {
        return Err((
            "invalid_code",
            ApiError::bad_request("invalid_parameter", "The code is malformed."),
        ));
    }

    let verified = state
        .signer
        .verify(&raw_state, state.clock.now())
        .map_err(|e| match e {
            StateError::Expired => (
                "state_expired",
                ApiError::bad_request(
                    "state_expired",
                    "This authorization took too long; start the install again.",
                ),
            ),
            StateError::Malformed | StateError::BadSignature => (
                "invalid_state",
                ApiError::bad_request(
                    "invalid_state",
                    "The state parameter is not one this server issued.",
                ),
            ),
        })?;

    let code = AuthorizationCode::new(code);
    let new = NewAuthorizationCode {
        code: &code,
        state: &raw_state,
        mall_id: &verified.mall_id,
        max_pending: state.launch.max_pending_codes,
    };
    match state.store.insert_authorization_code(new).await {
        Ok(CodeInsert::Stored { id }) => {
            let body = Json(json!({ "ok": true, "message": "Saved", "id": id }));
            let mut response = (StatusCode::OK, body).into_response();
            response.extensions_mut().insert(View::success(
                "App installed",
                format!(
                    "Authorization for mall {} was received. You can close this window.",
                    verified.mall_id
                ),
            ));
            Ok((id, response))
        }
        Ok(CodeInsert::StateAlreadyUsed) => Err((
            "state_replayed",
            ApiError::new(
                StatusCode::CONFLICT,
                "state_already_used",
                "This authorization was already completed.",
            ),
        )),
        Ok(CodeInsert::TooManyPending) => {
            tracing::warn!(mall_id = %verified.mall_id, "too many codes waiting for this mall; refused");
            Err((
                "too_many_pending",
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_pending",
                    "Too many installs of this mall are in progress; try again in a minute.",
                ),
            ))
        }
        Err(e) if e.is_unavailable() => {
            tracing::error!(error = %e, "database unreachable while storing a code");
            Err(("database_unavailable", ApiError::unavailable()))
        }
        Err(e) => {
            tracing::error!(error = %e, "storing a code failed");
            Err(("internal_error", ApiError::internal()))
        }
    }
}
