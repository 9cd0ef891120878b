//! Faults injected on demand, per endpoint: latency before or after the work, 500/503s,
//! 429 storms, dropped connections, and "rotate the refresh token but lose the response".
//!
//! Endpoint names: `authorize`, `token`, `revoke`, `admin` (every Admin route), and the
//! Admin routes `products`, `products_count`, `product`, `variants`, `variant`, `store`,
//! `webhooks_setting`, `webhooks_logs`. A route's own fault wins over the `admin` group.
//! `webhook` is the sandbox's own outgoing delivery: `drop_next`/`drop_rate` lose deliveries
//! (logged as sent, never sent) and `latency_ms` delays them.
//! Counted faults (`*_next`) are deterministic; rates draw from a seeded generator.
//! Whatever the fault, a request that reaches its handler is handled to the end even if the
//! client leaves (see `routes`), so a delayed response never undoes a rotation.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::state::lock;

/// Every endpoint name a fault can be set on.
pub const ENDPOINTS: &[&str] = &[
    "authorize",
    "token",
    "revoke",
    "admin",
    "products",
    "products_count",
    "product",
    "variants",
    "variant",
    "store",
    "webhooks_setting",
    "webhooks_logs",
    "webhook",
];

/// The fault set on one endpoint. All fields default to "no fault".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultSpec {
    /// Only requests for this mall are affected (all malls when absent).
    pub mall_id: Option<String>,
    /// Added before the request is handled.
    pub latency_ms: u64,
    /// Added after the request is handled (its changes are made) and before the response is
    /// sent: a caller that gives up meanwhile misses a change that happened.
    pub response_delay_ms: u64,
    /// When > 0, only the next N handled requests get `response_delay_ms`; with the last of
    /// them the delay ends (`response_delay_ms` goes back to 0).
    pub response_delay_next: u32,
    /// Fraction (0..=1) of requests answered with `error_status`.
    pub error_rate: f64,
    /// The next N requests are answered with `error_status`.
    pub error_next: u32,
    /// 500 or 503 (default 500).
    pub error_status: Option<u16>,
    /// The next N requests get 429.
    pub storm_next: u32,
    /// The next N requests have their connection closed without a response.
    pub drop_next: u32,
    /// Fraction (0..=1) of requests whose connection is closed without a response.
    pub drop_rate: f64,
    /// Token endpoint only: the next N successful refresh grants rotate the refresh token and
    /// then lose the response.
    pub lose_response_next: u32,
    /// Token endpoint only: fraction (0..=1) of successful refresh grants that rotate the
    /// refresh token and then lose the response.
    pub lose_response_rate: f64,
    /// How the response is lost: absent = connection dropped; 500/503 = that error instead.
    pub lose_response_status: Option<u16>,
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Proceed,
    Drop,
    Status(u16),
    Storm,
}

/// The decision for one request: wait, the outcome, and (when it proceeds) how long to hold
/// the response once the handler is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub latency: Option<Duration>,
    pub outcome: Outcome,
    pub response_delay: Option<Duration>,
}

impl Decision {
    const PROCEED: Decision = Decision {
        latency: None,
        outcome: Outcome::Proceed,
        response_delay: None,
    };
}

/// How a lost token response is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoseResponse {
    Drop,
    Status(u16),
}

#[derive(Debug)]
struct Inner {
    specs: HashMap<String, FaultSpec>,
    rng: StdRng,
}

/// The fault table.
#[derive(Debug)]
pub struct Faults {
    inner: Mutex<Inner>,
}

/// A fault could not be set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    #[error("unknown endpoint {0:?}; known: authorize, token, revoke, admin, products, products_count, product, variants, variant, store, webhooks_setting, webhooks_logs, webhook")]
    UnknownEndpoint(String),
    #[error("error_status and lose_response_status must be 500 or 503")]
    BadStatus,
    #[error("rates must be between 0 and 1")]
    BadRate,
}

fn error_status(s: Option<u16>) -> u16 {
    s.unwrap_or(500)
}

impl Faults {
    pub fn new(seed: u64) -> Self {
        Self {
            inner: Mutex::new(Inner {
                specs: HashMap::new(),
                rng: StdRng::seed_from_u64(seed),
            }),
        }
    }

    /// Sets (replaces) the fault of an endpoint.
    pub fn set(&self, endpoint: &str, spec: FaultSpec) -> Result<(), FaultError> {
        if !ENDPOINTS.contains(&endpoint) {
            return Err(FaultError::UnknownEndpoint(crate::html::truncate(
                endpoint, 40,
            )));
        }
        let ok_status = |s: Option<u16>| s.is_none_or(|s| s == 500 || s == 503);
        if !ok_status(spec.error_status) || !ok_status(spec.lose_response_status) {
            return Err(FaultError::BadStatus);
        }
        let ok_rate = |r: f64| (0.0..=1.0).contains(&r);
        if !ok_rate(spec.error_rate)
            || !ok_rate(spec.drop_rate)
            || !ok_rate(spec.lose_response_rate)
        {
            return Err(FaultError::BadRate);
        }
        lock(&self.inner).specs.insert(endpoint.to_string(), spec);
        Ok(())
    }

    pub fn clear(&self, endpoint: &str) {
        lock(&self.inner).specs.remove(endpoint);
    }

    pub fn clear_all(&self) {
        lock(&self.inner).specs.clear();
    }

    /// Re-seeds the random error/drop rates (for reproducible runs).
    pub fn reseed(&self, seed: u64) {
        lock(&self.inner).rng = StdRng::seed_from_u64(seed);
    }

    pub fn list(&self) -> HashMap<String, FaultSpec> {
        lock(&self.inner).specs.clone()
    }

    /// Decides the fate of one request to `endpoint` for `mall_id`, consuming counted faults.
    pub fn decide(&self, endpoint: &str, is_admin: bool, mall_id: &str) -> Decision {
        let mut guard = lock(&self.inner);
        let inner = &mut *guard;
        let applies = |s: &FaultSpec| s.mall_id.as_deref().is_none_or(|m| m == mall_id);
        let key = if inner.specs.get(endpoint).is_some_and(applies) {
            endpoint
        } else if is_admin && inner.specs.get("admin").is_some_and(applies) {
            "admin"
        } else {
            return Decision::PROCEED;
        };
        let Some(spec) = inner.specs.get_mut(key) else {
            return Decision::PROCEED;
        };
        let latency = (spec.latency_ms > 0).then(|| Duration::from_millis(spec.latency_ms));
        let outcome = if spec.drop_next > 0 {
            spec.drop_next -= 1;
            Outcome::Drop
        } else if spec.storm_next > 0 {
            spec.storm_next -= 1;
            Outcome::Storm
        } else if spec.error_next > 0 {
            spec.error_next -= 1;
            Outcome::Status(error_status(spec.error_status))
        } else if spec.drop_rate > 0.0 && inner.rng.gen_bool(spec.drop_rate) {
            Outcome::Drop
        } else if spec.error_rate > 0.0 && inner.rng.gen_bool(spec.error_rate) {
            Outcome::Status(error_status(spec.error_status))
        } else {
            Outcome::Proceed
        };
        let response_delay = if outcome == Outcome::Proceed {
            take_response_delay(spec)
        } else {
            None
        };
        Decision {
            latency,
            outcome,
            response_delay,
        }
    }

    /// Token endpoint: whether this successful refresh must lose its response.
    pub fn take_lose_response(&self, mall_id: &str) -> Option<LoseResponse> {
        let mut guard = lock(&self.inner);
        let inner = &mut *guard;
        let spec = inner.specs.get_mut("token")?;
        if spec.mall_id.as_deref().is_some_and(|m| m != mall_id) {
            return None;
        }
        if spec.lose_response_next > 0 {
            spec.lose_response_next -= 1;
        } else if !(spec.lose_response_rate > 0.0 && inner.rng.gen_bool(spec.lose_response_rate)) {
            return None;
        }
        Some(match spec.lose_response_status {
            Some(s) => LoseResponse::Status(s),
            None => LoseResponse::Drop,
        })
    }
}

/// The response delay of one handled request, consuming a counted one.
fn take_response_delay(spec: &mut FaultSpec) -> Option<Duration> {
    let delay = (spec.response_delay_ms > 0).then(|| Duration::from_millis(spec.response_delay_ms));
    if spec.response_delay_next > 0 {
        spec.response_delay_next -= 1;
        if spec.response_delay_next == 0 {
            spec.response_delay_ms = 0;
        }
    }
    delay
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_faults_are_consumed_in_order() {
        let f = Faults::new(1);
        let spec = FaultSpec {
            storm_next: 1,
            error_next: 1,
            error_status: Some(503),
            ..FaultSpec::default()
        };
        assert!(f.set("admin", spec).is_ok());
        assert_eq!(f.decide("products", true, "m").outcome, Outcome::Storm);
        assert_eq!(f.decide("store", true, "m").outcome, Outcome::Status(503));
        assert_eq!(f.decide("store", true, "m").outcome, Outcome::Proceed);
        assert_eq!(f.decide("token", false, "m").outcome, Outcome::Proceed);
    }

    #[test]
    fn unknown_endpoints_and_statuses_are_refused() {
        let f = Faults::new(1);
        assert!(f.set("nope", FaultSpec::default()).is_err());
        let bad = FaultSpec {
            error_status: Some(404),
            ..FaultSpec::default()
        };
        assert_eq!(f.set("token", bad), Err(FaultError::BadStatus));
    }

    #[test]
    fn counted_response_delay_ends_with_its_last_request() {
        let f = Faults::new(1);
        let spec = FaultSpec {
            response_delay_ms: 300,
            response_delay_next: 2,
            ..FaultSpec::default()
        };
        assert!(f.set("token", spec).is_ok());
        let delay = Some(Duration::from_millis(300));
        assert_eq!(f.decide("token", false, "m").response_delay, delay);
        assert_eq!(f.decide("token", false, "m").response_delay, delay);
        assert_eq!(f.decide("token", false, "m").response_delay, None);
        assert_eq!(f.list()["token"].response_delay_ms, 0);
    }

    #[test]
    fn faulted_requests_do_not_use_up_a_counted_response_delay() {
        let f = Faults::new(1);
        let spec = FaultSpec {
            error_next: 1,
            response_delay_ms: 300,
            response_delay_next: 1,
            ..FaultSpec::default()
        };
        assert!(f.set("token", spec).is_ok());
        let faulted = f.decide("token", false, "m");
        assert_eq!(faulted.outcome, Outcome::Status(500));
        assert_eq!(faulted.response_delay, None);
        let handled = f.decide("token", false, "m");
        assert_eq!(handled.response_delay, Some(Duration::from_millis(300)));
    }

    #[test]
    fn lose_response_rate_respects_the_mall_filter() {
        let f = Faults::new(1);
        let spec = FaultSpec {
            mall_id: Some("a".into()),
            lose_response_rate: 1.0,
            ..FaultSpec::default()
        };
        assert!(f.set("token", spec).is_ok());
        assert_eq!(f.take_lose_response("a"), Some(LoseResponse::Drop));
        assert_eq!(f.take_lose_response("b"), None);
    }

    #[test]
    fn rates_outside_zero_to_one_are_refused() {
        let f = Faults::new(1);
        for rate in [-0.1, 1.5] {
            let bad = FaultSpec {
                lose_response_rate: rate,
                ..FaultSpec::default()
            };
            assert_eq!(f.set("token", bad), Err(FaultError::BadRate));
        }
    }
}
