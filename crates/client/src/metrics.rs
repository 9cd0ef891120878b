//! Counters of the Admin API client, registered into the server's Prometheus registry and
//! readable directly (tests compare them with the sandbox's own counters).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Status {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Source {
    budget: String,
}

#[derive(Clone, Default, Debug)]
pub struct ClientMetrics {
    attempts: Family<Status, Counter>,
    retries: Family<Reason, Counter>,
    gave_up: Family<Reason, Counter>,
    paced: Family<Source, Counter>,
}

impl ClientMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "cafe24_api_attempts",
            "Admin API attempts by answer (status, or transport)",
            self.attempts.clone(),
        );
        registry.register(
            "cafe24_api_retries",
            "Admin API retries by reason (rate_limited, server_error, transport, unauthorized)",
            self.retries.clone(),
        );
        registry.register(
            "cafe24_api_gave_up",
            "Admin API calls abandoned by reason (attempts, deadline)",
            self.gave_up.clone(),
        );
        registry.register(
            "cafe24_api_paced",
            "Admin API attempts by the budget that paced them (shared: the mall's fleet-wide \
             budget in PostgreSQL; fallback: this process's share while that did not answer)",
            self.paced.clone(),
        );
    }

    pub(crate) fn budget(&self, budget: &str) {
        self.paced
            .get_or_create(&Source {
                budget: budget.into(),
            })
            .inc();
    }

    /// Attempts paced by `budget` (`"shared"` or `"fallback"`; none on SQLite).
    pub fn paced(&self, budget: &str) -> u64 {
        self.paced
            .get_or_create(&Source {
                budget: budget.into(),
            })
            .get()
    }

    pub(crate) fn attempt(&self, status: &str) {
        self.attempts
            .get_or_create(&Status {
                status: status.into(),
            })
            .inc();
    }

    pub(crate) fn retry(&self, reason: &str) {
        self.retries
            .get_or_create(&Reason {
                reason: reason.into(),
            })
            .inc();
    }

    pub(crate) fn give_up(&self, reason: &str) {
        self.gave_up
            .get_or_create(&Reason {
                reason: reason.into(),
            })
            .inc();
    }

    /// Attempts answered with `status` (`"200"`, `"429"`, …, or `"transport"`).
    pub fn attempts(&self, status: &str) -> u64 {
        self.attempts
            .get_or_create(&Status {
                status: status.into(),
            })
            .get()
    }

    /// Retries made for `reason`.
    pub fn retries(&self, reason: &str) -> u64 {
        self.retries
            .get_or_create(&Reason {
                reason: reason.into(),
            })
            .get()
    }

    pub fn gave_up(&self, reason: &str) -> u64 {
        self.gave_up
            .get_or_create(&Reason {
                reason: reason.into(),
            })
            .get()
    }
}
