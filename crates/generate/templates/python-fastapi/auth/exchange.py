"""The exchange queue (docs/contract.md §6.3): every stored code is swapped for tokens while it
is still valid. A pass expires what is too old (never sent), claims a batch newest first with
``FOR UPDATE SKIP LOCKED`` (any number of workers, in any language, share the queue), and
exchanges each claimed code on a detached task, fenced by its claim ``(id, attempts)``. The
worker wakes on the callback (in process), on ``NOTIFY cafe24_authorization_codes`` (codes
stored by any writer) and on a poll, because notifications are lost while reconnecting."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import Literal

import psycopg
from psycopg_pool import PoolTimeout

from auth.database import DatabaseUnavailable, persist
from auth.store import ClaimedCode, Store
from auth.tasks import TrackedWork
from auth.token_endpoint import OAuthError, TokenEndpoint
from auth.token_manager import TokenManager, sealed_pair
from config.settings import Settings

logger = logging.getLogger(__name__)

CHANNEL = "cafe24_authorization_codes"
BATCH = 32
SEND_MARGIN_SECS = 2.0
MAX_BACKOFF_SECS = 4.0
LEASE_SLACK_SECS = 10.0
POLL_LISTENING_SECS = 2.0
POLL_NOT_LISTENING_SECS = 0.2
_STORE_ERRORS = (psycopg.Error, DatabaseUnavailable, PoolTimeout)

Outcome = Literal["exchanged", "failed", "retried", "expired"]


@dataclass
class ExchangeSummary:
    expired: int = 0
    claimed: int = 0
    exchanged: int = 0
    failed: int = 0
    retried: int = 0


def claim_lease_secs(settings: Settings) -> float:
    """How long a claim is held before another worker may take the code over: the token call,
    the longest retry backoff and time for the writes, so a live worker is never overtaken."""
    return settings.http_timeout_secs + MAX_BACKOFF_SECS + LEASE_SLACK_SECS


class Exchanger:
    """Claims stored codes and exchanges them; one per process, owned by the lifespan."""

    def __init__(
        self, *, store: Store, endpoint: TokenEndpoint, tokens: TokenManager, settings: Settings, work: TrackedWork
    ) -> None:
        self._store = store
        self._endpoint = endpoint
        self._tokens = tokens
        self._settings = settings
        self._work = work
        self._wake = asyncio.Event()
        self._listening = False

    def __repr__(self) -> str:
        return f"Exchanger(listening={self._listening})"

    def wake(self) -> None:
        """A code was stored: run a pass now."""
        self._wake.set()

    async def run_once(self) -> ExchangeSummary:
        lifetime = float(self._settings.code_lifetime_secs)
        summary = ExchangeSummary(expired=await self._store.expire_codes(lifetime_secs=lifetime))
        claimed = await self._store.claim_codes(
            lifetime_secs=lifetime, lease_secs=claim_lease_secs(self._settings), batch=BATCH
        )
        summary.claimed = len(claimed)
        started = time.monotonic()
        # Each exchange is detached: a pass that is cancelled stops waiting, and a code already
        # sent to Cafe24 is still exchanged and its tokens stored.
        tasks = [self._work.spawn(self._exchange_one(code, started)) for code in claimed]
        for outcome in await asyncio.gather(*(asyncio.shield(t) for t in tasks), return_exceptions=True):
            if isinstance(outcome, BaseException):
                logger.error("recording an exchange failed (%s); the claim will be retried", type(outcome).__name__)
                summary.failed += 1
            else:
                setattr(summary, outcome, getattr(summary, outcome) + 1)
        return summary

    async def drain(self) -> ExchangeSummary:
        """Passes until nothing is claimed (retries included)."""
        total = ExchangeSummary()
        while True:
            summary = await self.run_once()
            for name in ("expired", "claimed", "exchanged", "failed", "retried"):
                setattr(total, name, getattr(total, name) + getattr(summary, name))
            if summary.claimed == 0:
                return total

    async def run(self, stop: asyncio.Event) -> None:
        """Exchanges codes as they arrive until ``stop`` is set."""
        listener = asyncio.create_task(self._listen(stop))
        try:
            while not stop.is_set():
                try:
                    await self.run_once()
                except _STORE_ERRORS as error:
                    logger.warning("exchange pass failed (%s); retrying", type(error).__name__)
                poll = POLL_LISTENING_SECS if self._listening else POLL_NOT_LISTENING_SECS
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), poll)
                self._wake.clear()
        finally:
            listener.cancel()
            with suppress(asyncio.CancelledError):
                await listener

    async def _listen(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with await self._store.db.connect() as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._listening = True
                    async for _ in conn.notifies():
                        self._wake.set()
            except psycopg.Error as error:
                logger.warning("listening for stored codes failed (%s); polling meanwhile", type(error).__name__)
            finally:
                self._listening = False
            await asyncio.sleep(1.0)

    async def _exchange_one(self, code: ClaimedCode, claimed_at: float) -> Outcome:
        lifetime = float(self._settings.code_lifetime_secs)

        def age() -> float:
            return code.age_secs + time.monotonic() - claimed_at

        if age() + SEND_MARGIN_SECS >= lifetime:
            return await self._finish(code, "expired", "not exchanged within the code lifetime")
        try:
            tokens = await self._endpoint.exchange(mall_id=code.mall_id, code=code.code)
        except OAuthError as error:
            if not error.retryable:
                logger.warning("exchange of code %d (mall %s) refused: %s", code.id, code.mall_id, error)
                return await self._finish(code, "failed", str(error))
            backoff = min(0.25 * 2 ** (min(max(code.attempts, 1), 5) - 1), MAX_BACKOFF_SECS)
            if age() + backoff + SEND_MARGIN_SECS >= lifetime:
                return await self._finish(code, "expired", f"Cafe24 unreachable within the code lifetime: {error}")
            logger.warning("exchange of code %d (mall %s) failed, retrying: %s", code.id, code.mall_id, error)
            await asyncio.sleep(backoff)
            if not await self._store.retry_code(code, error=str(error)):
                logger.warning("the claim of code %d was taken over before it was put back", code.id)
            return "retried"
        if tokens.mall_id is not None and tokens.mall_id != code.mall_id:
            return await self._finish(code, "failed", "Cafe24 issued tokens for a different mall")
        new = sealed_pair(self._tokens.sealer, mall_id=code.mall_id, tokens=tokens, client_id=self._settings.client_id)
        # Cafe24 has consumed the code: these tokens are the only copy of the grant.
        version = await persist(
            lambda: self._store.complete_exchange(code, new), what="the exchanged grant", mall_id=code.mall_id
        )
        await self._tokens.flag_incomplete(code.mall_id, tokens)
        logger.info("code %d exchanged: mall %s installed (version %d)", code.id, code.mall_id, version)
        return "exchanged"

    async def _finish(self, code: ClaimedCode, outcome: Literal["expired", "failed"], error: str) -> Outcome:
        if not await self._store.finish_code(code, outcome=outcome, error=error):
            logger.warning("the claim of code %d was taken over; its outcome is the new holder's", code.id)
        return outcome
