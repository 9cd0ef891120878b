//! The Admin API client against the real sandbox over HTTP: pacing, retries, pagination,
//! token refresh, and the server's forwarding proxy.

mod fake;
mod fleet;
mod misbehaving;
mod pacing;
mod pages;
mod proxy;
mod retries;
mod support;
