//! The domain of cafe24-oauth: validated types (`MallId`, `Scope`, secrets), typed settings,
//! the signed OAuth `state`, Cafe24's launch `hmac`, and the base-URL template that every
//! Cafe24 call is built from. Nothing here does I/O beyond reading configuration.

pub mod base_url;
pub mod clock;
pub mod launch;
pub mod mall;
pub mod oauth;
pub mod scope;
pub mod secret;
pub mod settings;
pub mod state;

pub use base_url::BaseUrlTemplate;
pub use clock::{Clock, SystemClock};
pub use mall::MallId;
pub use scope::{Scope, Scopes};
pub use settings::{ConfigError, Settings};
pub use state::{SignedState, StateError, StateSigner, VerifiedState};
