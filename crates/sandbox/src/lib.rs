//! A faithful local Cafe24 for offline development and tests.
//!
//! The sandbox serves, for any number of malls and registered apps, Cafe24's OAuth endpoints
//! (consent page, codes, token rotation, revoke), a slice of the Admin API with seeded
//! products, the per-mall leaky bucket, app-launch URLs with their `hmac`, webhook deliveries,
//! and faults on demand. Because loopback has no per-mall host names, each mall lives under a
//! path prefix: `https://{mall_id}.cafe24api.com` becomes `http://127.0.0.1:PORT/malls/{mall_id}`.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use cafe24_sandbox::{start, SandboxConfig};
//! let sandbox = start(SandboxConfig::default(), "127.0.0.1:0".parse()?).await?;
//! println!("CAFE24_BASE_URL={}", sandbox.base_url_template());
//! let stats = sandbox.stats("sandboxmall");
//! # drop(stats); Ok(()) }
//! ```
//!
//! Facts follow `shared/CAFE24.md`; everything it marks unconfirmed is a [`SandboxConfig`]
//! setting. The control API under `/_sandbox/` exposes the same operations over HTTP.

#![recursion_limit = "512"]

pub mod admin;
pub mod cli;
pub mod clock;
pub mod config;
pub mod conn;
pub mod control;
pub mod error;
pub mod faults;
pub mod html;
pub mod launch;
pub mod oauth;
pub mod ratelimit;
pub mod routes;
pub mod secret;
pub mod server;
pub mod state;
pub mod stats;
pub mod tokens;
pub mod webhooks;

pub use config::{
    AppConfig, LaunchConfig, MallConfig, RateLimitConfig, SandboxConfig, TimestampUnit,
    WebhookAuth, WebhookAuthScheme, WebhookConfig,
};
pub use faults::FaultSpec;
pub use launch::LaunchParams;
pub use routes::router;
pub use secret::Secret;
pub use server::{start, RunningSandbox};
pub use state::SandboxState;
pub use stats::StatsSnapshot;
pub use tokens::{TokenInfo, TokenKind};
pub use webhooks::log::LogEntry;
pub use webhooks::{DeliveryReport, FireOptions, FireReport};
