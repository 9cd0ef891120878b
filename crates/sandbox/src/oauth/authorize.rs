//! `GET|POST /api/v2/oauth/authorize`: checks the request, shows the consent page (or
//! auto-approves), then redirects with a code, or with `error=access_denied` on deny.
//!
//! Errors before a trustworthy redirect target is known (bad client, redirect URI, response
//! type, state or scope) are shown as JSON in the browser and never redirect.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use chrono::Duration;

use super::consent;
use crate::config::AppConfig;
use crate::error::{AdminError, OAuthError};
use crate::html::percent_encode;
use crate::state::{lock, Mall, SandboxState};
use crate::stats::Counter;
use crate::tokens::Grant;

/// A checked authorize request.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    pub mall: Arc<Mall>,
    pub app: Arc<AppConfig>,
    pub redirect_uri: String,
    pub state: String,
    pub scopes: Vec<String>,
}

/// Splits a scope list on commas and/or whitespace.
pub fn parse_scopes(raw: &str) -> Vec<String> {
    raw.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Why an authorize request is refused (shown in the browser, never redirected).
#[derive(Debug)]
enum Refusal {
    UnknownMall(String),
    OAuth(OAuthError),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::UnknownMall(id) => AdminError::unknown_mall(&id).into_response(),
            Refusal::OAuth(e) => e.into_response(),
        }
    }
}

fn validate(
    state: &SandboxState,
    mall_id: &str,
    p: &HashMap<String, String>,
) -> Result<AuthorizeRequest, Refusal> {
    let mall = state
        .mall(mall_id)
        .ok_or_else(|| Refusal::UnknownMall(mall_id.to_string()))?;
    let err = Refusal::OAuth;
    let app = p
        .get("client_id")
        .and_then(|id| state.app(id))
        .ok_or_else(|| {
            err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "invalid_client",
                "Invalid client_id",
            ))
        })?;
    let redirect_uri = p
        .get("redirect_uri")
        .filter(|r| app.redirect_uris.iter().any(|reg| reg == *r))
        .cloned()
        .ok_or_else(|| err(OAuthError::redirect_uri_mismatch()))?;
    if p.get("response_type").map(String::as_str) != Some("code") {
        return Err(err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_response_type",
            "response_type must be code",
        )));
    }
    let st = p
        .get("state")
        .filter(|s| !s.is_empty())
        .cloned()
        .ok_or_else(|| err(OAuthError::invalid_request("state is required")))?;
    let scopes = parse_scopes(p.get("scope").map(String::as_str).unwrap_or_default());
    if scopes.is_empty() {
        return Err(err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "scope is required",
        )));
    }
    if let Some(bad) = scopes.iter().find(|s| !app.scopes.contains(s)) {
        return Err(err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            format!(
                "The scope {} is not allowed for this app",
                crate::html::truncate(bad, 60)
            ),
        )));
    }
    Ok(AuthorizeRequest {
        mall,
        app,
        redirect_uri,
        state: st,
        scopes,
    })
}

fn redirect(uri: &str, query: &str) -> Response {
    let sep = if uri.contains('?') { '&' } else { '?' };
    let location = format!("{uri}{sep}{query}");
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

fn approve(state: &SandboxState, req: &AuthorizeRequest) -> Response {
    let grant = Grant {
        mall_id: req.mall.id.clone(),
        client_id: req.app.client_id.clone(),
        user_id: req.mall.user_id.clone(),
        shop_no: req.mall.shop_no,
        scopes: req.scopes.clone(),
    };
    let ttl = Duration::seconds(state.config.code_ttl_secs);
    let code = lock(&state.tokens).issue_code(grant, &req.redirect_uri, state.now(), ttl);
    req.mall.stats.incr(Counter::CodeIssued);
    redirect(
        &req.redirect_uri,
        &format!(
            "code={}&state={}",
            percent_encode(&code),
            percent_encode(&req.state)
        ),
    )
}

fn deny(req: &AuthorizeRequest) -> Response {
    redirect(
        &req.redirect_uri,
        &format!("error=access_denied&state={}", percent_encode(&req.state)),
    )
}

pub async fn show(
    State(state): State<SandboxState>,
    Path(mall_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let req = match validate(&state, &mall_id, &params) {
        Ok(r) => r,
        Err(refusal) => return refusal.into_response(),
    };
    if state.config.auto_approve {
        return approve(&state, &req);
    }
    Html(consent::page(&req, &params)).into_response()
}

pub async fn decide(
    State(state): State<SandboxState>,
    Path(mall_id): Path<String>,
    Form(params): Form<HashMap<String, String>>,
) -> Response {
    let req = match validate(&state, &mall_id, &params) {
        Ok(r) => r,
        Err(refusal) => return refusal.into_response(),
    };
    match params.get("decision").map(String::as_str) {
        Some("approve") => approve(&state, &req),
        Some("deny") => deny(&req),
        _ => OAuthError::invalid_request("decision must be approve or deny").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_split_on_commas_and_spaces() {
        assert_eq!(
            parse_scopes("mall.read_product, mall.read_store mall.read_order"),
            vec!["mall.read_product", "mall.read_store", "mall.read_order"]
        );
    }
}
