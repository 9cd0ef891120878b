//! One error type for every route, mapped to a status and a JSON body in one place:
//! `{"ok":false,"error":"…","message":"…"}`. Causes are logged, never sent; 5xx bodies are opaque.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::page::View;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// A stable machine-readable code, e.g. `invalid_state`.
    pub code: &'static str,
    /// A human sentence that never contains a submitted value or a secret.
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "The database is unreachable; please retry shortly.",
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Something went wrong on our side.",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "ok": false, "error": self.code, "message": self.message });
        let mut response = (self.status, axum::Json(body)).into_response();
        response
            .extensions_mut()
            .insert(View::failure(self.status, self.message));
        response
    }
}
