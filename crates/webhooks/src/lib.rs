//! Cafe24 webhooks, received safely and acted on:
//! - [`verify`]: the configured check (API key, HMAC of the raw body, sender addresses), fail
//!   closed, constant time;
//! - [`payload`]: the body validated (`event_no`, `resource.mall_id`) and a dedupe key per
//!   delivery, so Cafe24's retries are stored once;
//! - [`dispatch`]: stored events handed to in-process handlers and an optional signed forward,
//!   retried with backoff, dead-lettered after N failures; uninstall events revoke the mall;
//! - [`reconcile`]: Cafe24's delivery logs confirm what arrived and recover what did not.

pub mod dispatch;
pub mod forward;
pub mod payload;
pub mod reconcile;
pub mod verify;

pub use dispatch::{DispatchSummary, Dispatcher, WebhookHandler};
pub use forward::Forwarder;
pub use payload::{dedupe_key, Delivery, PayloadError};
pub use reconcile::{ReconcileSummary, Reconciler};
pub use verify::{Refusal, Verifier};

/// Cafe24's "app deleted" event (uninstall).
pub const EVENT_APP_DELETED: i32 = 90077;
/// Cafe24's "app expired" event.
pub const EVENT_APP_EXPIRED: i32 = 90078;
