//! The cases, in the order they run, each naming the part of the contract it checks. A case
//! that needs something the target does not offer fails (with that section in the message);
//! nothing is skipped.

mod callback;
mod exchange;
mod health;
mod install;
mod proxy;
mod refresh;
mod secrets;
mod state;
mod tokens;
mod webhooks;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use crate::check::{Failure, Outcome};
use crate::world::World;

/// The longest a case may run before it is failed (every wait inside is bounded far below).
const CASE_TIMEOUT: Duration = Duration::from_secs(90);

pub type CaseFuture<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

pub struct Case {
    pub name: &'static str,
    /// The section of the contract (docs/contract.md) the case checks.
    pub section: &'static str,
    pub run: for<'a> fn(&'a World<'a>) -> CaseFuture<'a>,
}

macro_rules! case {
    ($name:literal, $section:literal, $f:path) => {
        Case {
            name: $name,
            section: $section,
            run: |w| Box::pin($f(w)),
        }
    };
}

/// Every case, in order. `secrets.*` runs last: it searches what everything before produced.
pub fn all() -> Vec<Case> {
    vec![
        case!(
            "health.healthz_and_readyz",
            "HTTP: GET /healthz, GET /readyz",
            health::healthz_and_readyz
        ),
        case!(
            "install.valid_launch_redirects_to_authorize",
            "HTTP: GET /install; Signed state",
            install::valid_launch_redirects_to_authorize
        ),
        case!(
            "install.bad_launch_hmac_is_403",
            "HTTP: GET /install (launch hmac, CAFE24.md §6)",
            install::bad_launch_hmac_is_403
        ),
        case!(
            "install.hostile_mall_id_is_400",
            "HTTP: GET /install (mall_id)",
            install::hostile_mall_id_is_400
        ),
        case!(
            "state.forged_states_are_400_and_store_nothing",
            "Signed state; HTTP: GET /oauth/callback",
            state::forged_states_are_refused
        ),
        case!(
            "state.a_state_is_accepted_once_then_409",
            "Signed state (single use); HTTP: GET /oauth/callback",
            state::a_state_is_accepted_once
        ),
        case!(
            "state.concurrent_replay_has_one_winner",
            "Signed state (single use across processes)",
            state::concurrent_replay_has_one_winner
        ),
        case!(
            "callback.success_is_the_contract_json",
            "HTTP: GET /oauth/callback",
            callback::success_is_the_contract_json
        ),
        case!(
            "callback.missing_or_malformed_parameters_are_400",
            "HTTP: GET /oauth/callback",
            callback::missing_or_malformed_parameters_are_400
        ),
        case!(
            "callback.denied_consent_is_403",
            "HTTP: GET /oauth/callback (error=access_denied)",
            callback::denied_consent_is_403
        ),
        case!(
            "callback.oversized_input_is_4xx",
            "HTTP: GET /oauth/callback (limits)",
            callback::oversized_input_is_4xx
        ),
        case!(
            "exchange.code_is_exchanged_within_one_second",
            "Exchange (within 1 s of the callback)",
            exchange::code_is_exchanged_within_one_second
        ),
        case!(
            "exchange.code_from_another_writer_is_exchanged",
            "Database: authorization_codes; Exchange",
            exchange::code_from_another_writer_is_exchanged
        ),
        case!(
            "exchange.expired_code_is_never_sent",
            "Exchange (code lifetime)",
            exchange::expired_code_is_never_sent
        ),
        case!(
            "tokens.stored_encrypted_with_the_key_ring",
            "Tokens at rest (ciphertext layout); Database: tokens",
            tokens::stored_encrypted_with_the_key_ring
        ),
        case!(
            "tokens.expiry_is_korea_time_and_refreshed_before_use",
            "Tokens: expires_at in KST; Refresh protocol (margin)",
            tokens::expiry_is_korea_time_and_refreshed_before_use
        ),
        case!(
            "refresh.one_refresh_per_rotation_across_processes",
            "Refresh protocol (lock, one refresh per rotation)",
            refresh::one_refresh_per_rotation_across_processes
        ),
        case!(
            "refresh.lost_rotation_flags_needs_reauth",
            "Refresh protocol (a lost rotation is never silent)",
            refresh::lost_rotation_flags_needs_reauth
        ),
        case!(
            "refresh.keepalive_renews_a_refresh_token_near_its_end",
            "Keep-alive",
            refresh::keepalive_renews_a_refresh_token_near_its_end
        ),
        case!(
            "proxy.requires_the_admin_credential",
            "Admin API proxy (CAFE24_ADMIN_TOKEN)",
            proxy::requires_the_admin_credential
        ),
        case!(
            "proxy.pacing_keeps_a_burst_under_the_bucket",
            "Admin API proxy: pacing (CAFE24.md §5)",
            proxy::pacing_keeps_a_burst_under_the_bucket
        ),
        case!(
            "proxy.get_is_retried_after_503",
            "Admin API proxy: retries",
            proxy::get_is_retried_after_503
        ),
        case!(
            "proxy.post_is_not_retried",
            "Admin API proxy: retries (POST)",
            proxy::post_is_not_retried
        ),
        case!(
            "proxy.unauthorized_from_cafe24_refreshes_once",
            "Admin API proxy: 401 → one refresh",
            proxy::unauthorized_from_cafe24_refreshes_once
        ),
        case!(
            "webhooks.verified_delivery_is_stored_once",
            "HTTP: POST /webhooks/cafe24 (verify, dedupe)",
            webhooks::verified_delivery_is_stored_once
        ),
        case!(
            "webhooks.unverified_delivery_is_403",
            "HTTP: POST /webhooks/cafe24 (fail closed)",
            webhooks::unverified_delivery_is_403
        ),
        case!(
            "webhooks.oversized_body_is_413",
            "HTTP: POST /webhooks/cafe24 (body limit)",
            webhooks::oversized_body_is_413
        ),
        case!(
            "webhooks.uninstall_event_revokes_the_mall",
            "Webhooks: 90077 → revoked",
            webhooks::uninstall_event_revokes_the_mall
        ),
        case!(
            "webhooks.unconfigured_receiver_refuses_everything",
            "Webhooks: unconfigured → 403",
            webhooks::unconfigured_receiver_refuses_everything
        ),
        case!(
            "secrets.nothing_secret_in_the_output",
            "Logs: no code, token, state, secret or key",
            secrets::nothing_secret_in_the_output
        ),
    ]
}

/// What happened to one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub name: &'static str,
    pub section: &'static str,
    pub outcome: Result<String, String>,
    pub duration: Duration,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.outcome.is_ok()
    }
}

/// A failure message cut to a readable length.
fn bounded(message: &str) -> String {
    match message.char_indices().nth(600) {
        Some((at, _)) => format!("{}…", &message[..at]),
        None => message.to_owned(),
    }
}

/// Runs one case within its time limit, then puts the sandbox back as the case found it
/// (faults, token lifetimes, clock), whatever the outcome.
pub async fn run_one(world: &World<'_>, case: &Case) -> CaseResult {
    let sandbox = world.sandbox;
    let offset = sandbox.state().clock.offset_ms();
    let lifetimes = sandbox.token_lifetimes();
    let started = Instant::now();
    let outcome = match tokio::time::timeout(CASE_TIMEOUT, (case.run)(world)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(Failure::new(format!(
            "did not finish within {} s",
            CASE_TIMEOUT.as_secs()
        ))),
    };
    let duration = started.elapsed();
    sandbox.clear_faults();
    let _ = sandbox.set_token_lifetimes(lifetimes.0, lifetimes.1);
    let drift = offset - sandbox.state().clock.offset_ms();
    if drift != 0 {
        sandbox.advance_clock(chrono::Duration::milliseconds(drift));
    }
    CaseResult {
        name: case.name,
        section: case.section,
        outcome: outcome.map_err(|f| bounded(f.message())),
        duration,
    }
}
