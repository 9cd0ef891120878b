//! The token lifecycle — the heart of cafe24-oauth. A Cafe24 shop, once installed, must never be
//! lost:
//! - [`exchange`]: every stored code is exchanged promptly (woken by NOTIFY), claimed with
//!   `FOR UPDATE SKIP LOCKED`, retried within the 60-second window, never sent once expired;
//! - [`crypto`]: tokens are stored as AES-256-GCM ciphertext bound to their mall;
//! - [`manager`]: a valid access token on request, refreshed ahead of expiry — single-flight in
//!   a process, exclusive across processes, compare-and-swap on write, re-read before a grant is
//!   declared dead;
//! - [`keepalive`]: malls never used are refreshed before their 14 days run out;
//! - [`worker`]: the loop that runs both.

pub mod crypto;
pub mod events;
pub mod exchange;
pub mod keepalive;
pub mod manager;
pub mod metrics;
pub mod oauth_client;
mod ops;
pub mod worker;

pub use crypto::{CryptoError, Sealer, TokenKind};
pub use events::{LifecycleEvent, LifecycleHook};
pub use exchange::{ExchangeSummary, Exchanger};
pub use manager::{TokenError, TokenManager};
pub use metrics::TokenMetrics;
pub use oauth_client::{OAuthClient, OAuthError};
pub use worker::Worker;
