"""The counters served at ``/metrics`` as OpenMetrics text under the runtime's names: the
callback outcomes the contract asks for (§3.7) and the Admin API attempts by the budget that
paced them (§6.8)."""

from __future__ import annotations

from collections import Counter
from typing import Protocol

CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
OUTCOMES = (
    "saved",
    "denied",
    "bad_request",
    "missing_parameter",
    "invalid_code",
    "invalid_state",
    "state_expired",
    "state_replayed",
    "too_many_pending",
    "database_unavailable",
    "internal_error",
)
# shared: the mall's fleet-wide budget in PostgreSQL; fallback: this process's share of the
# bucket while that budget did not answer.
BUDGETS = ("shared", "fallback")


class MetricFamilies(Protocol):
    def lines(self) -> list[str]: ...


def render(*families: MetricFamilies) -> str:
    """One OpenMetrics exposition of every family."""
    lines = [line for family in families for line in family.lines()]
    return "\n".join([*lines, "# EOF", ""])


class CallbackMetrics:
    def __init__(self) -> None:
        self._outcomes: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"CallbackMetrics({dict(self._outcomes)!r})"

    def record(self, outcome: str) -> None:
        self._outcomes[outcome] += 1

    def count(self, outcome: str) -> int:
        return self._outcomes[outcome]

    def lines(self) -> list[str]:
        return [
            "# TYPE cafe24_oauth_callback_outcomes counter",
            "# HELP cafe24_oauth_callback_outcomes Answers of /oauth/callback by outcome.",
            *(f'cafe24_oauth_callback_outcomes_total{{outcome="{o}"}} {self._outcomes[o]}' for o in OUTCOMES),
        ]


class ClientMetrics:
    """The Admin API client's counters (one set per :class:`auth.cafe24_client.Cafe24Client`)."""

    def __init__(self) -> None:
        self._paced: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"ClientMetrics(paced={dict(self._paced)!r})"

    def record_paced(self, budget: str) -> None:
        self._paced[budget] += 1

    def paced(self, budget: str) -> int:
        """Attempts paced by ``budget`` (``"shared"`` or ``"fallback"``)."""
        return self._paced[budget]

    def lines(self) -> list[str]:
        return [
            "# TYPE cafe24_api_paced counter",
            "# HELP cafe24_api_paced Admin API attempts by the budget that paced them (shared: the mall's "
            "fleet-wide budget in PostgreSQL; fallback: this process's share while that did not answer).",
            *(f'cafe24_api_paced_total{{budget="{b}"}} {self._paced[b]}' for b in BUDGETS),
        ]
