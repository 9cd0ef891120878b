//! `POST /webhooks/cafe24`: verify (fail closed, 403), validate (400), dedupe, store, answer
//! 200 — fast, with no call to Cafe24 and no app logic on the request path. Acting on the event
//! is the dispatcher's job.

use std::net::SocketAddr;

use axum::body::to_bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::Json;
use cafe24_store::{NewWebhookEvent, WebhookInsert};
use cafe24_webhooks::{dedupe_key, Delivery};
use serde_json::{json, Value};

use crate::{ApiError, AppState};

pub async fn receive(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let (parts, body) = request.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let body = to_bytes(body, state.max_body_bytes).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "The request body is too large.",
        )
    })?;

    let intake = &state.webhooks;
    // Every line: a proxy may append the hop it saw as a line of its own.
    let forwarded_for = cafe24_webhooks::verify::forwarded_for(
        parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| v.as_bytes()),
    );
    if let Err(refusal) = intake
        .verifier
        .check(peer, forwarded_for.as_deref(), header, &body)
    {
        tracing::warn!(reason = %refusal, "webhook refused");
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "The delivery could not be verified.",
        ));
    }
    let delivery = Delivery::parse(&body)
        .map_err(|e| ApiError::bad_request("invalid_event", format!("Invalid event: {e}.")))?;
    let body_text = std::str::from_utf8(&body).map_err(|_| {
        ApiError::bad_request("invalid_event", "Invalid event: the body is not UTF-8.")
    })?;
    let trace = intake.trace_header.as_deref().and_then(header);
    let key = dedupe_key(trace.as_deref(), delivery.event_no, &body);
    let new = NewWebhookEvent {
        dedupe_key: &key,
        mall_id: &delivery.mall_id,
        event_no: delivery.event_no,
        trace_id: trace.as_deref(),
        body: body_text,
        occurred_at: None,
    };
    match state.store.insert_webhook_event(new).await {
        Ok(WebhookInsert::Stored { id }) => {
            intake.stored.notify_one();
            tracing::info!(event_id = id, event_no = delivery.event_no, mall_id = %delivery.mall_id, "webhook stored");
            Ok(Json(json!({ "ok": true, "id": id })))
        }
        Ok(WebhookInsert::Duplicate { id }) => {
            tracing::info!(
                event_id = id,
                event_no = delivery.event_no,
                "webhook delivered again; already stored"
            );
            Ok(Json(json!({ "ok": true, "id": id, "duplicate": true })))
        }
        Err(e) if e.is_unavailable() => {
            tracing::error!(error = %e, "database unreachable while storing a webhook");
            Err(ApiError::unavailable())
        }
        Err(e) => {
            tracing::error!(error = %e, "storing a webhook failed");
            Err(ApiError::internal())
        }
    }
}
