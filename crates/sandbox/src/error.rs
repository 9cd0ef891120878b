//! The two error shapes Cafe24 answers with, each with one `IntoResponse`.
//!
//! OAuth endpoints: `{"error":"invalid_grant","error_description":"…"}`.
//! Admin API: `{"error":{"code":401,"message":"…","more_info":{}}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// An OAuth-shaped error (authorize, token, revoke).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {error}: {description}")]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    /// The redirect_uri mismatch page, exactly as integrators report it.
    pub fn redirect_uri_mismatch() -> Self {
        Self::invalid_request("The redirect_uri added by Cafe24 Developers is invalid.")
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.error, "error_description": self.description});
        (self.status, Json(body)).into_response()
    }
}

/// An Admin-API error in the `{"error":{code,message,more_info}}` envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct AdminError {
    pub status: StatusCode,
    pub message: String,
}

impl AdminError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn expired_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "access_token time expired. (invalid_token)",
        )
    }

    pub fn invalid_token() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Invalid access_token")
    }

    pub fn insufficient_scope(scope: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            format!("[{scope}] scope is required. (insufficient_scope)"),
        )
    }

    /// 422 for a bad parameter, naming it the way Cafe24 does (`(parameter.limit)`).
    pub fn bad_parameter(param: &str, why: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{why} (parameter.{param})"),
        )
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("{what} not found."))
    }

    pub fn too_many_requests() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Too Many Requests. API call limit exceeded.",
        )
    }

    pub fn unknown_mall(mall_id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!(
                "Mall '{}' does not exist.",
                crate::html::truncate(mall_id, 40)
            ),
        )
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "code": self.status.as_u16(),
            "message": self.message,
            "more_info": {}
        }});
        (self.status, Json(body)).into_response()
    }
}
