//! The fleet-wide Admin API budget of a mall (contract §6.8): Cafe24's leaky bucket mirrored in
//! `cafe24.api_budgets` and drawn from by every process, one statement per call.

use std::time::Duration;

/// The bucket being mirrored: `size` calls deep, draining `drain_per_sec`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ApiBudget {
    pub size: f64,
    pub drain_per_sec: f64,
}

/// The answer of [`crate::Store::take_api_call`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BudgetTake {
    /// The call is charged: send it after `wait`. `level` is what the bucket holds when it goes,
    /// the call itself included; an answer showing more use than that corrects the budget.
    Go { wait: Duration, level: f64 },
    /// The call could not go within the caller's `max_wait`; nothing was charged.
    TooLong,
}

impl BudgetTake {
    /// From the statement's `(wait_secs, level)`; a negative wait means refused.
    pub(crate) fn from_row(wait_secs: f64, level: f64) -> Self {
        if !wait_secs.is_finite() || wait_secs < 0.0 {
            return Self::TooLong;
        }
        Self::Go {
            // Bounded: a wait never exceeds the caller's max_wait, itself a Duration.
            wait: Duration::from_secs_f64(wait_secs.min(86_400.0)),
            level: if level.is_finite() {
                level.max(0.0)
            } else {
                0.0
            },
        }
    }
}
