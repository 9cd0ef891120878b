//! The control and inspection API under `/_sandbox/` (JSON): health, stats, faults, clock,
//! malls and apps at run time, webhook trigger, launch URL builder.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::config::{AppConfig, MallConfig};
use crate::faults::FaultSpec;
use crate::launch::{launch_url, LaunchParams};
use crate::state::{lock, SandboxState};
use crate::stats::StatsSnapshot;
use crate::webhooks::{fire, FireOptions};

fn bad(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({"error": message.to_string()}))).into_response()
}

pub fn routes() -> Router<SandboxState> {
    Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/stats", get(stats))
        .route("/stats/reset", post(reset_stats))
        .route("/stats/{mall_id}", get(mall_stats))
        .route("/faults", get(list_faults).delete(clear_faults))
        .route("/faults/{endpoint}", put(set_fault).delete(clear_fault))
        .route("/clock", get(clock).post(move_clock))
        .route("/lifetimes", get(lifetimes).put(set_lifetimes))
        .route("/malls", get(list_malls).post(add_mall))
        .route("/malls/{mall_id}/uninstall", post(uninstall))
        .route("/apps", get(list_apps).post(add_app))
        .route("/webhooks/fire", post(fire_webhook))
        .route("/webhooks/logs/{mall_id}", get(webhook_logs))
        .route("/launch-url", get(launch))
}

/// Per-mall counters and their totals.
pub fn all_stats(state: &SandboxState) -> (BTreeMap<String, StatsSnapshot>, StatsSnapshot) {
    let mut totals = StatsSnapshot::default();
    let malls = state
        .malls()
        .iter()
        .map(|m| {
            let s = m.stats.snapshot();
            totals.add(&s);
            (m.id.clone(), s)
        })
        .collect();
    (malls, totals)
}

async fn stats(State(state): State<SandboxState>) -> Json<Value> {
    let (malls, totals) = all_stats(&state);
    Json(json!({"malls": malls, "totals": totals}))
}

async fn mall_stats(State(state): State<SandboxState>, Path(mall_id): Path<String>) -> Response {
    match state.existing_mall(&mall_id) {
        Some(m) => Json(m.stats.snapshot()).into_response(),
        None => bad(StatusCode::NOT_FOUND, "unknown mall"),
    }
}

async fn reset_stats(State(state): State<SandboxState>) -> StatusCode {
    for m in state.malls() {
        m.stats.reset();
    }
    StatusCode::NO_CONTENT
}

async fn list_faults(State(state): State<SandboxState>) -> Json<Value> {
    Json(json!({"faults": state.faults.list()}))
}

async fn set_fault(
    State(state): State<SandboxState>,
    Path(endpoint): Path<String>,
    Json(spec): Json<FaultSpec>,
) -> Response {
    match state.faults.set(&endpoint, spec) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => bad(StatusCode::BAD_REQUEST, e),
    }
}

async fn clear_fault(
    State(state): State<SandboxState>,
    Path(endpoint): Path<String>,
) -> StatusCode {
    state.faults.clear(&endpoint);
    StatusCode::NO_CONTENT
}

async fn clear_faults(State(state): State<SandboxState>) -> StatusCode {
    state.faults.clear_all();
    StatusCode::NO_CONTENT
}

fn clock_json(state: &SandboxState) -> Json<Value> {
    let now = state.now();
    Json(json!({
        "now": now.to_rfc3339(),
        "now_kst": crate::clock::resource_time(now),
        "offset_ms": state.clock.offset_ms(),
        "frozen": state.clock.is_frozen(),
    }))
}

async fn clock(State(state): State<SandboxState>) -> Json<Value> {
    clock_json(&state)
}

/// `{"advance_secs": 61}`, `{"freeze": true}`, or both.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ClockMove {
    advance_secs: f64,
    freeze: Option<bool>,
}

async fn move_clock(State(state): State<SandboxState>, Json(m): Json<ClockMove>) -> Response {
    if !m.advance_secs.is_finite() || m.advance_secs.abs() > 1e10 {
        return bad(StatusCode::BAD_REQUEST, "advance_secs out of range");
    }
    match m.freeze {
        Some(true) => state.clock.freeze(),
        Some(false) => state.clock.unfreeze(),
        None => {}
    }
    state.clock.advance(chrono::Duration::milliseconds(
        (m.advance_secs * 1000.0) as i64,
    ));
    clock_json(&state).into_response()
}

fn lifetimes_json(state: &SandboxState) -> Json<Value> {
    let (access, refresh) = state.token_lifetimes();
    Json(json!({"access_token_ttl_secs": access, "refresh_token_ttl_secs": refresh}))
}

async fn lifetimes(State(state): State<SandboxState>) -> Json<Value> {
    lifetimes_json(&state)
}

/// `{"access_token_ttl_secs": 60}` and/or `{"refresh_token_ttl_secs": 86400}`: lifetimes of
/// the tokens issued from now on.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct LifetimesChange {
    access_token_ttl_secs: Option<i64>,
    refresh_token_ttl_secs: Option<i64>,
}

async fn set_lifetimes(
    State(state): State<SandboxState>,
    Json(c): Json<LifetimesChange>,
) -> Response {
    let (access, refresh) = state.token_lifetimes();
    let access = c.access_token_ttl_secs.unwrap_or(access);
    let refresh = c.refresh_token_ttl_secs.unwrap_or(refresh);
    match state.set_token_lifetimes(access, refresh) {
        Ok(()) => lifetimes_json(&state).into_response(),
        Err(e) => bad(StatusCode::BAD_REQUEST, e),
    }
}

async fn list_malls(State(state): State<SandboxState>) -> Json<Value> {
    let malls: Vec<Value> = state
        .malls()
        .iter()
        .map(|m| {
            json!({"mall_id": m.id, "shop_no": m.shop_no, "shops": m.shops,
                   "products": lock(&m.catalog).count(), "user_id": m.user_id})
        })
        .collect();
    Json(json!({"malls": malls}))
}

async fn add_mall(State(state): State<SandboxState>, Json(cfg): Json<MallConfig>) -> Response {
    match state.add_mall(cfg) {
        Ok(m) => (StatusCode::CREATED, Json(json!({"mall_id": m.id}))).into_response(),
        Err(e) => bad(StatusCode::BAD_REQUEST, e),
    }
}

async fn list_apps(State(state): State<SandboxState>) -> Json<Value> {
    let apps: Vec<Value> = state
        .apps()
        .iter()
        .map(|a| {
            json!({"client_id": a.client_id, "name": a.name, "redirect_uris": a.redirect_uris,
                   "scopes": a.scopes, "app_url": a.app_url, "webhook_url": a.webhook_url})
        })
        .collect();
    Json(json!({"apps": apps}))
}

async fn add_app(State(state): State<SandboxState>, Json(app): Json<AppConfig>) -> Response {
    let id = app.client_id.clone();
    match state.add_app(app) {
        Ok(()) => (StatusCode::CREATED, Json(json!({"client_id": id}))).into_response(),
        Err(e) => bad(StatusCode::BAD_REQUEST, e),
    }
}

/// Body of `POST /_sandbox/webhooks/fire`.
#[derive(Debug, Deserialize)]
pub struct FireRequest {
    pub mall_id: String,
    pub event_no: u32,
    /// Extra `resource` fields (e.g. `{"product_no": 12}`).
    #[serde(default)]
    pub resource: Value,
    #[serde(flatten)]
    pub options: FireOptions,
}

async fn fire_webhook(State(state): State<SandboxState>, Json(req): Json<FireRequest>) -> Response {
    let Some(mall) = state.mall(&req.mall_id) else {
        return bad(StatusCode::NOT_FOUND, "unknown mall");
    };
    let report = fire(&state, &mall, req.event_no, req.resource, req.options).await;
    Json(report).into_response()
}

async fn webhook_logs(State(state): State<SandboxState>, Path(mall_id): Path<String>) -> Response {
    let Some(mall) = state.existing_mall(&mall_id) else {
        return bad(StatusCode::NOT_FOUND, "unknown mall");
    };
    let logs: Vec<Value> = lock(&mall.webhook)
        .logs
        .iter()
        .map(|l| {
            let mut v = json!(l);
            if let Some(o) = v.as_object_mut() {
                o.insert("client_id".into(), json!(l.client_id));
            }
            v
        })
        .collect();
    Json(json!({"logs": logs})).into_response()
}

async fn launch(State(state): State<SandboxState>, Query(p): Query<LaunchParams>) -> Response {
    match launch_url(&state, &p) {
        Ok(url) => Json(json!({"url": url})).into_response(),
        Err(e) => bad(StatusCode::NOT_FOUND, e),
    }
}

/// `{"client_id": "…"}`: the merchant removes the app; its tokens die and 90077 is sent.
#[derive(Debug, Deserialize)]
struct Uninstall {
    client_id: String,
}

async fn uninstall(
    State(state): State<SandboxState>,
    Path(mall_id): Path<String>,
    Json(u): Json<Uninstall>,
) -> Response {
    let Some(mall) = state.existing_mall(&mall_id) else {
        return bad(StatusCode::NOT_FOUND, "unknown mall");
    };
    lock(&state.tokens).revoke_all(&mall.id, &u.client_id);
    let opts = FireOptions {
        client_id: Some(u.client_id.clone()),
        wait: true,
        ..FireOptions::default()
    };
    let report = fire(
        &state,
        &mall,
        90077,
        json!({"client_id": u.client_id}),
        opts,
    )
    .await;
    Json(report).into_response()
}
