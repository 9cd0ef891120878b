//! `GET|PUT /webhooks/setting` and `GET /webhooks/logs`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::query::shop_no;
use super::AdminCtx;
use crate::error::AdminError;
use crate::state::lock;
use crate::webhooks::log::LogQuery;

fn tf(b: bool) -> &'static str {
    if b {
        "T"
    } else {
        "F"
    }
}

pub async fn setting(
    Extension(ctx): Extension<AdminCtx>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, AdminError> {
    shop_no(&params)?;
    let reception = lock(&ctx.mall.webhook).reception;
    Ok(Json(json!({"webhook": {
        "scopes": ctx.grant.scopes,
        "reception_status": tf(reception)
    }})))
}

pub async fn update_setting(
    Extension(ctx): Extension<AdminCtx>,
    body: Bytes,
) -> Result<Json<Value>, AdminError> {
    let body: Value = serde_json::from_slice(&body).map_err(|_| {
        AdminError::new(
            StatusCode::BAD_REQUEST,
            "The request body is not valid JSON.",
        )
    })?;
    let status = body
        .get("request")
        .and_then(|r| r.get("reception_status"))
        .and_then(Value::as_str)
        .filter(|s| *s == "T" || *s == "F")
        .ok_or_else(|| {
            AdminError::bad_parameter("reception_status", "reception_status must be T or F.")
        })?;
    let mut w = lock(&ctx.mall.webhook);
    w.reception = status == "T";
    if w.reception {
        w.consecutive_failures = 0;
    }
    Ok(Json(
        json!({"webhook": {"reception_status": tf(w.reception)}}),
    ))
}

pub async fn logs(
    Extension(ctx): Extension<AdminCtx>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, AdminError> {
    let q = LogQuery::parse(&params)?;
    let w = lock(&ctx.mall.webhook);
    // An app sees the deliveries made to it.
    let mine: Vec<_> = w
        .logs
        .iter()
        .filter(|l| l.client_id == ctx.grant.client_id)
        .cloned()
        .collect();
    let selected = q.select(&mine);
    Ok(Json(json!({ "logs": selected })))
}
