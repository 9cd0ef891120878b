//! Exact per-mall counters that tests read to assert "exactly one refresh happened".

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// Live counters of one mall. Every field counts events since start (or the last reset).
#[derive(Debug, Default)]
pub struct MallStats {
    authorization_code_grants: AtomicU64,
    refresh_grants: AtomicU64,
    refresh_tokens_issued: AtomicU64,
    refresh_tokens_rejected: AtomicU64,
    access_tokens_issued: AtomicU64,
    token_errors: AtomicU64,
    codes_issued: AtomicU64,
    codes_rejected: AtomicU64,
    revokes: AtomicU64,
    api_calls: AtomicU64,
    rate_limited: AtomicU64,
    faults_injected: AtomicU64,
    webhook_attempts: AtomicU64,
    webhook_failures: AtomicU64,
    responses_lost: AtomicU64,
}

/// What can be counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Successful `authorization_code` grants.
    AuthorizationCodeGrant,
    /// Successful `refresh_token` grants (rotations).
    RefreshGrant,
    /// Refresh tokens handed out (by either grant).
    RefreshTokenIssued,
    /// `refresh_token` grants refused because the token was unknown, used, revoked or expired.
    RefreshTokenRejected,
    AccessTokenIssued,
    /// Any token-endpoint error response.
    TokenError,
    CodeIssued,
    /// `authorization_code` grants refused (expired, reused, unknown, wrong client/redirect).
    CodeRejected,
    Revoke,
    /// Admin API requests that reached a mall (any outcome except an injected fault).
    ApiCall,
    /// 429 answers (bucket overflow or injected storm).
    RateLimited,
    /// Requests answered (or dropped) by the fault injector.
    FaultInjected,
    WebhookAttempt,
    WebhookFailure,
    /// Token responses deliberately lost after the rotation was applied.
    ResponseLost,
}

impl MallStats {
    pub fn incr(&self, counter: Counter) {
        self.cell(counter).fetch_add(1, Ordering::Relaxed);
    }

    fn cell(&self, counter: Counter) -> &AtomicU64 {
        match counter {
            Counter::AuthorizationCodeGrant => &self.authorization_code_grants,
            Counter::RefreshGrant => &self.refresh_grants,
            Counter::RefreshTokenIssued => &self.refresh_tokens_issued,
            Counter::RefreshTokenRejected => &self.refresh_tokens_rejected,
            Counter::AccessTokenIssued => &self.access_tokens_issued,
            Counter::TokenError => &self.token_errors,
            Counter::CodeIssued => &self.codes_issued,
            Counter::CodeRejected => &self.codes_rejected,
            Counter::Revoke => &self.revokes,
            Counter::ApiCall => &self.api_calls,
            Counter::RateLimited => &self.rate_limited,
            Counter::FaultInjected => &self.faults_injected,
            Counter::WebhookAttempt => &self.webhook_attempts,
            Counter::WebhookFailure => &self.webhook_failures,
            Counter::ResponseLost => &self.responses_lost,
        }
    }

    /// A consistent-enough copy (each counter is exact; they are read one after another).
    pub fn snapshot(&self) -> StatsSnapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            authorization_code_grants: g(&self.authorization_code_grants),
            refresh_grants: g(&self.refresh_grants),
            refresh_tokens_issued: g(&self.refresh_tokens_issued),
            refresh_tokens_rejected: g(&self.refresh_tokens_rejected),
            access_tokens_issued: g(&self.access_tokens_issued),
            token_errors: g(&self.token_errors),
            codes_issued: g(&self.codes_issued),
            codes_rejected: g(&self.codes_rejected),
            revokes: g(&self.revokes),
            api_calls: g(&self.api_calls),
            rate_limited: g(&self.rate_limited),
            faults_injected: g(&self.faults_injected),
            webhook_attempts: g(&self.webhook_attempts),
            webhook_failures: g(&self.webhook_failures),
            responses_lost: g(&self.responses_lost),
        }
    }

    pub fn reset(&self) {
        for c in [
            &self.authorization_code_grants,
            &self.refresh_grants,
            &self.refresh_tokens_issued,
            &self.refresh_tokens_rejected,
            &self.access_tokens_issued,
            &self.token_errors,
            &self.codes_issued,
            &self.codes_rejected,
            &self.revokes,
            &self.api_calls,
            &self.rate_limited,
            &self.faults_injected,
            &self.webhook_attempts,
            &self.webhook_failures,
            &self.responses_lost,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// Plain copy of a mall's counters, as served by `GET /_sandbox/stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    pub authorization_code_grants: u64,
    pub refresh_grants: u64,
    pub refresh_tokens_issued: u64,
    pub refresh_tokens_rejected: u64,
    pub access_tokens_issued: u64,
    pub token_errors: u64,
    pub codes_issued: u64,
    pub codes_rejected: u64,
    pub revokes: u64,
    pub api_calls: u64,
    pub rate_limited: u64,
    pub faults_injected: u64,
    pub webhook_attempts: u64,
    pub webhook_failures: u64,
    pub responses_lost: u64,
}

impl StatsSnapshot {
    /// Field-wise sum, for the totals line.
    pub fn add(&mut self, o: &StatsSnapshot) {
        self.authorization_code_grants += o.authorization_code_grants;
        self.refresh_grants += o.refresh_grants;
        self.refresh_tokens_issued += o.refresh_tokens_issued;
        self.refresh_tokens_rejected += o.refresh_tokens_rejected;
        self.access_tokens_issued += o.access_tokens_issued;
        self.token_errors += o.token_errors;
        self.codes_issued += o.codes_issued;
        self.codes_rejected += o.codes_rejected;
        self.revokes += o.revokes;
        self.api_calls += o.api_calls;
        self.rate_limited += o.rate_limited;
        self.faults_injected += o.faults_injected;
        self.webhook_attempts += o.webhook_attempts;
        self.webhook_failures += o.webhook_failures;
        self.responses_lost += o.responses_lost;
    }
}
