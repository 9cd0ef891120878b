//! The HTTP face of cafe24-oauth: one axum [`Router`](axum::Router) used by `serve`, the tests
//! and the Lambda function alike. Public routes: `/install` (the App URL), `/oauth/callback`
//! (the serverless spec's endpoint), `/healthz`, `/readyz`, `/metrics`, `/openapi.json`.

mod app;
mod error;
mod metrics;
mod negotiate;
mod observe;
mod page;
mod routes;
pub mod shutdown;
pub mod telemetry;

pub use app::{router, AppState, Application, WebhookIntake};
pub use error::ApiError;
pub use metrics::Metrics;
pub use routes::proxy::Proxy;

/// The OpenAPI 3 description of every route, served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");
