//! Errors of an Admin API call. Cafe24's refusals keep the HTTP status and the `error.code` /
//! `error.message` of its envelope (and the envelope itself, which never holds our token).

use cafe24_tokens::TokenError;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Cafe24 answered with a non-success status (after any retries the status allowed).
    #[error("Cafe24 answered {status}{}: {message}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Cafe24 {
        status: u16,
        /// `error.code` (a number or a string at Cafe24; kept as text).
        code: Option<String>,
        message: String,
        /// The response body as JSON (`{"error":{…}}`), or `null` if it was not JSON.
        body: Value,
        attempts: u32,
    },
    /// No answer (connection refused or dropped, timeout) after the allowed attempts.
    #[error("could not reach Cafe24 after {attempts} attempt(s): {message}")]
    Transport { message: String, attempts: u32 },
    /// The overall deadline passed before a success.
    #[error("gave up after {attempts} attempt(s): the call's deadline passed{}", last.as_deref().map(|l| format!(" (last: {l})")).unwrap_or_default())]
    Deadline { attempts: u32, last: Option<String> },
    /// No usable token for the mall (not installed, needs a new install, revoked, store down).
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The request itself is not acceptable (a path outside the Admin API, a bad body).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A success whose body is not the JSON expected.
    #[error("Cafe24's answer was unreadable: {0}")]
    Malformed(String),
    /// Paging made no progress: a full page brought nothing new (Cafe24 ignored the cursor),
    /// so reading on would repeat it for ever.
    #[error("paging {path} made no progress: page {page} brought nothing new")]
    NoProgress { path: String, page: u64 },
}

impl ApiError {
    /// The HTTP status Cafe24 answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Cafe24 { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Attempts made before the error.
    pub fn attempts(&self) -> u32 {
        match self {
            ApiError::Cafe24 { attempts, .. }
            | ApiError::Transport { attempts, .. }
            | ApiError::Deadline { attempts, .. } => *attempts,
            _ => 0,
        }
    }

    /// Builds the error of a refused call from its status and body.
    pub(crate) fn from_response(status: u16, body: &[u8], attempts: u32) -> Self {
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let error = &body["error"];
        let code = match &error["code"] {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        let message = error["message"]
            .as_str()
            // OAuth-shaped errors (`{"error":"…","error_description":"…"}`) also occur.
            .or_else(|| body["error_description"].as_str())
            .unwrap_or("no error message")
            .to_owned();
        ApiError::Cafe24 {
            status,
            code,
            message,
            body,
            attempts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cafe24_envelopes_keep_status_code_and_message() {
        let e = ApiError::from_response(
            422,
            br#"{"error":{"code":422,"message":"limit must be between 1 and 100.","more_info":{}}}"#,
            1,
        );
        assert_eq!(e.status(), Some(422));
        assert_eq!(
            e.to_string(),
            "Cafe24 answered 422 (422): limit must be between 1 and 100."
        );
        let e = ApiError::from_response(503, b"<html>", 3);
        assert!(matches!(
            e,
            ApiError::Cafe24 {
                code: None,
                attempts: 3,
                ..
            }
        ));
    }
}
