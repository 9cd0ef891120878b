"""Per-mall pacing (docs/client.md). Cafe24 meters each mall in one leaky bucket (40 deep,
draining 2 calls per second) whatever process calls, so every call is drawn from the mall's
fleet-wide budget in PostgreSQL (contract §6.8, :class:`BudgetStore`), shared by every process
of every implementation. While that budget does not answer, a call is paced on this process's
:class:`MallPacer`, a client-side mirror of a quarter of the bucket (:data:`FALLBACK_SHARE`),
raised by every ``X-Api-Call-Limit: used/size`` answer and paused for the seconds
``X-Cafe24-Call-Remain``/``X-Cafe24-Time-Remain`` say (at most 10 minutes). Calls wait for room
in arrival order; nothing is refused. Malls never wait for each other."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Protocol

import httpx

MAX_PAUSE_SECS = 600.0
# While the shared budget cannot be reached, a process paces itself on this share of the bucket
# (depth and drain): four processes falling back together still stay within it.
FALLBACK_SHARE = 0.25
# Calls of headroom the shared budget keeps below Cafe24's bucket: calls leave on the
# database's schedule but reach Cafe24 with some jitter, so its bucket may run a fraction of a
# call ahead of the budget.
SHARED_HEADROOM = 1.0
# How long drawing from (or correcting) the shared budget may take before it is given up.
BUDGET_TIMEOUT_SECS = 1.0
_EPSILON = 1e-9


class Timer(Protocol):
    """Monotonic time and sleeping; tests pass a virtual one that jumps instead of sleeping."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemTimer:
    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class BudgetStore(Protocol):
    """The mall's fleet-wide budget (the :class:`auth.store.Store`; contract §6.8)."""

    async def take_api_call(
        self, mall_id: str, *, size: float, drain_per_sec: float, max_wait_secs: float
    ) -> tuple[float, float]: ...

    async def observe_api_limit(
        self, mall_id: str, *, used: float | None, drain_per_sec: float, pause_secs: float | None
    ) -> None: ...


class PastDeadline(Exception):
    """No room in the mall's budget before the call's deadline."""


@dataclass(frozen=True)
class LimitReport:
    """What one answer said about the bucket."""

    call_limit: tuple[int, int] | None = None
    # The larger of the *-Remain headers in whole seconds, at most MAX_PAUSE_SECS.
    remain_secs: int | None = None

    @classmethod
    def from_headers(cls, headers: httpx.Headers) -> LimitReport:
        call_limit = None
        used, slash, size = headers.get("x-api-call-limit", "").partition("/")
        if slash and used.strip().isdigit() and size.strip().isdigit():
            call_limit = (int(used), int(size))
        remains: list[int] = []
        for name in ("x-cafe24-call-remain", "x-cafe24-time-remain"):
            try:
                seconds = float(headers.get(name, "nan"))
            except ValueError:
                continue
            if math.isfinite(seconds) and seconds > 0:
                remains.append(math.ceil(min(seconds, MAX_PAUSE_SECS)))
        return cls(call_limit, max(remains) if remains else None)


@dataclass
class PaceStats:
    granted: int = 0
    delayed: int = 0
    waited_secs: float = 0.0
    corrections: int = 0
    pauses: int = 0


class MallPacer:
    """One mall's bucket mirror in this process."""

    def __init__(self, *, size: float, drain_per_sec: float, timer: Timer) -> None:
        self._size = size
        self._drain = drain_per_sec
        self._timer = timer
        self._level = 0.0
        self._at = timer.now()
        self._paused_until = 0.0
        self._turn = asyncio.Lock()
        self.stats = PaceStats()

    def __repr__(self) -> str:
        return f"MallPacer(level={self.level:.2f}, stats={self.stats})"

    @property
    def level(self) -> float:
        self._drain_to(self._timer.now())
        return self._level

    def _drain_to(self, now: float) -> None:
        if now > self._at:
            self._level = max(self._level - (now - self._at) * self._drain, 0.0)
            self._at = now

    async def acquire(self, *, deadline: float | None = None) -> None:
        """Waits until one more call fits and no pause holds, then charges it."""
        async with self._turn:
            started = self._timer.now()
            while True:
                now = self._timer.now()
                self._drain_to(now)
                if self._paused_until > now:
                    wake = self._paused_until
                elif self._level + 1.0 <= self._size + _EPSILON:
                    self._level += 1.0
                    self.stats.granted += 1
                    if now > started:
                        self.stats.delayed += 1
                        self.stats.waited_secs += now - started
                    return
                else:
                    wake = now + (self._level + 1.0 - self._size) / self._drain
                if deadline is not None and wake > deadline:
                    raise PastDeadline
                await self._timer.sleep(wake - now)

    def observe(self, report: LimitReport) -> None:
        """Never below what Cafe24 reports (other processes share the bucket)."""
        now = self._timer.now()
        self._drain_to(now)
        if report.call_limit is not None:
            used = min(float(report.call_limit[0]), self._size)
            if used > math.ceil(self._level):
                self.stats.corrections += 1
            self._level = max(self._level, used)
        if report.remain_secs is not None:
            self._pause(now, float(report.remain_secs))

    def limited(self, at_least: float) -> None:
        """A 429: the bucket is full whatever the mirror thought; pause the whole mall."""
        now = self._timer.now()
        self._drain_to(now)
        self._level = max(self._level, self._size)
        self._pause(now, at_least)

    def _pause(self, now: float, seconds: float) -> None:
        until = now + min(max(seconds, 0.0), MAX_PAUSE_SECS)
        if until > self._paused_until:
            self._paused_until = until
            self.stats.pauses += 1


class Pacers:
    """Every mall's pacer, created on first use; one registry per process."""

    def __init__(self, *, size: float, drain_per_sec: float, timer: Timer) -> None:
        self._size = size
        self._drain = drain_per_sec
        self.timer = timer
        self._malls: dict[str, MallPacer] = {}

    def mall(self, mall_id: str) -> MallPacer:
        pacer = self._malls.get(mall_id)
        if pacer is None:
            pacer = self._malls[mall_id] = MallPacer(size=self._size, drain_per_sec=self._drain, timer=self.timer)
        return pacer
