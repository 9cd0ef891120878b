//! Counters of the token lifecycle, registered into the server's Prometheus registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: String,
}

#[derive(Clone, Default, Debug)]
pub struct TokenMetrics {
    exchanges: Family<Outcome, Counter>,
    refreshes: Family<Outcome, Counter>,
    needs_reauth: Counter,
    store_retries: Counter,
    incomplete_responses: Counter,
}

impl TokenMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "code_exchanges",
            "Authorization code exchanges by outcome",
            self.exchanges.clone(),
        );
        registry.register(
            "token_refreshes",
            "Token refreshes by outcome",
            self.refreshes.clone(),
        );
        registry.register(
            "malls_needs_reauth",
            "Malls whose grant died and need a new install",
            self.needs_reauth.clone(),
        );
        registry.register(
            "token_store_retries",
            "Writes of tokens Cafe24 issued that failed and were retried",
            self.store_retries.clone(),
        );
        registry.register(
            "token_responses_incomplete",
            "Token responses that did not fully parse and were kept with conservative expiries",
            self.incomplete_responses.clone(),
        );
    }

    pub fn exchange(&self, outcome: &'static str) {
        self.exchanges
            .get_or_create(&Outcome {
                outcome: outcome.into(),
            })
            .inc();
    }

    pub fn refresh(&self, outcome: &'static str) {
        self.refreshes
            .get_or_create(&Outcome {
                outcome: outcome.into(),
            })
            .inc();
    }

    pub fn needs_reauth(&self) {
        self.needs_reauth.inc();
    }

    pub fn store_retry(&self) {
        self.store_retries.inc();
    }

    pub fn incomplete_response(&self) {
        self.incomplete_responses.inc();
    }

    pub fn store_retries(&self) -> u64 {
        self.store_retries.get()
    }
}
