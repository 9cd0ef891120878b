"""Acting on stored events, off the request path (contract §6.7): 90077 (app deleted) and 90078
(app expired) revoke the mall through the token lifecycle, unless older than its current grant;
then the app's handlers run. Failures are retried with exponential backoff (1 s doubling, at
most 300 s) and dead-lettered after ``CAFE24_WEBHOOK_MAX_ATTEMPTS``. Delivery is at least once:
handlers must be idempotent (the event id and dedupe key are given for that)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from auth.database import is_unavailable
from auth.token_manager import TokenManager
from webhooks.store import WebhookEvent, WebhookStore

logger = logging.getLogger(__name__)

APP_DELETED = 90077
APP_EXPIRED = 90078
CLAIM_LEASE_SECS = 60.0
BATCH = 32
POLL_SECS = 0.5

WebhookHandler = Callable[[WebhookEvent], Awaitable[None]]


@dataclass
class DispatchSummary:
    dispatched: int = 0
    retried: int = 0
    dead_lettered: int = 0


class Dispatcher:
    def __init__(
        self,
        *,
        store: WebhookStore,
        tokens: TokenManager,
        handlers: Sequence[WebhookHandler] = (),
        max_attempts: int = 8,
        backoff_secs: float = 1.0,
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._handlers = tuple(handlers)
        self._max_attempts = max_attempts
        self._backoff = backoff_secs
        self._wake = asyncio.Event()

    def __repr__(self) -> str:
        return f"Dispatcher(handlers={len(self._handlers)}, max_attempts={self._max_attempts})"

    def wake(self) -> None:
        self._wake.set()

    async def run_once(self) -> DispatchSummary:
        """Dispatches every event that is due now."""
        summary = DispatchSummary()
        while events := await self._store.claim(lease_secs=CLAIM_LEASE_SECS, batch=BATCH):
            for event in events:
                try:
                    await self._act(event)
                except Exception as error:  # noqa: BLE001 - any failure is retried, then dead-lettered
                    reason = f"{type(error).__name__}: {error}"[:500]
                    if event.attempts >= self._max_attempts:
                        logger.error("webhook event %d (mall %s) dead-lettered: %s", event.id, event.mall_id, reason)
                        summary.dead_lettered += 1
                        await self._store.dead_letter(event.id, error=reason)
                    else:
                        wait = min(self._backoff * 2 ** min(event.attempts - 1, 16), 300.0)
                        logger.warning("webhook event %d failed (attempt %d): %s", event.id, event.attempts, reason)
                        summary.retried += 1
                        await self._store.retry(event.id, error=reason, at=datetime.now(UTC) + timedelta(seconds=wait))
                else:
                    summary.dispatched += 1
                    await self._store.dispatched(event.id)
        return summary

    async def _act(self, event: WebhookEvent) -> None:
        if event.event_no in (APP_DELETED, APP_EXPIRED):
            what = "deleted" if event.event_no == APP_DELETED else "expired"
            reason = f"app {what} (event {event.event_no})"
            await self._tokens.uninstalled(event.mall_id, reason=reason, occurred_at=event.occurred_at)
        for handler in self._handlers:
            await handler(event)

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatches as events arrive and as retries fall due, until ``stop`` is set."""
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception as error:
                if not is_unavailable(error):
                    raise
                logger.warning("webhook dispatch pass failed (%s)", type(error).__name__)
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECS)
            self._wake.clear()
