"""The callback outcome counter the contract asks for (§3.7), served at ``/metrics`` as
OpenMetrics text under the runtime's name."""

from __future__ import annotations

from collections import Counter

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


_SAMPLE = "cafe24_oauth_callback_outcomes_total"


class CallbackMetrics:
    def __init__(self) -> None:
        self._outcomes: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"CallbackMetrics({dict(self._outcomes)!r})"

    def record(self, outcome: str) -> None:
        self._outcomes[outcome] += 1

    def count(self, outcome: str) -> int:
        return self._outcomes[outcome]

    def render(self) -> str:
        lines = [
            "# TYPE cafe24_oauth_callback_outcomes counter",
            "# HELP cafe24_oauth_callback_outcomes Answers of /oauth/callback by outcome.",
        ]
        lines += [_SAMPLE + '{outcome="' + o + '"} ' + str(self._outcomes[o]) for o in OUTCOMES]
        return "\n".join([*lines, "# EOF", ""])
