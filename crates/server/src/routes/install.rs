//! `GET /install`: the App URL. Verifies Cafe24's launch `hmac` when present (or always, when
//! `CAFE24_LAUNCH_HMAC_REQUIRED` is set), validates the mall, and sends the browser to Cafe24's
//! consent page with a fresh signed state.

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cafe24_core::launch::{self, LaunchError};
use cafe24_core::MallId;

use super::single_param;
use crate::{ApiError, AppState};

pub async fn install(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = query.unwrap_or_default();
    let now = state.clock.now();
    if launch::has_hmac(&query) {
        launch::verify(&query, &state.app.client_secret, now, state.launch.window).map_err(
            |e| {
                tracing::warn!(reason = %e, "launch hmac refused");
                launch_error(e)
            },
        )?;
    } else if state.launch.require_hmac {
        return Err(launch_error(LaunchError::Missing));
    }

    let raw_mall = single_param(&query, "mall_id")?
        .ok_or_else(|| ApiError::bad_request("missing_parameter", "mall_id is required."))?;
    let mall = MallId::parse(&raw_mall)
        .map_err(|e| ApiError::bad_request("invalid_mall_id", format!("Invalid mall_id: {e}.")))?;

    let signed = state.signer.issue(&mall, now);
    let location = state.app.base_url.authorize_url(
        &mall,
        &state.app.client_id,
        signed.as_str(),
        &state.app.redirect_uri,
        &state.app.scopes,
    );
    let location = HeaderValue::from_str(&location).map_err(|_| ApiError::internal())?;
    tracing::info!(mall_id = %mall, "install redirect issued");
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response())
}

fn launch_error(e: LaunchError) -> ApiError {
    let (code, message) = match e {
        LaunchError::Missing => (
            "launch_hmac_required",
            "This app must be opened from the Cafe24 admin.",
        ),
        LaunchError::Stale => (
            "launch_expired",
            "This launch link has expired; open the app again from Cafe24.",
        ),
        LaunchError::BadTimestamp => (
            "launch_invalid",
            "The launch request has no valid timestamp.",
        ),
        LaunchError::Malformed | LaunchError::Mismatch => {
            ("launch_invalid", "The launch request signature is invalid.")
        }
    };
    ApiError::new(StatusCode::FORBIDDEN, code, message)
}
