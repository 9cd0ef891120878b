"""Keep-alive (docs/contract.md §10.3): a refresh token unused for 14 days dies and the mall
must install again, so every active mall whose refresh token expires within the window is
refreshed through the full protocol, with bounded concurrency and rate."""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta

from auth.database import is_unavailable
from auth.store import Store
from auth.token_manager import TokenError, TokenManager
from config.settings import Settings

logger = logging.getLogger(__name__)

MAX_DUE_PER_PASS = 10_000


@dataclass
class KeepAliveSummary:
    due: int = 0
    refreshed: int = 0
    skipped: int = 0
    failed: int = 0


async def keep_alive_pass(
    *, tokens: TokenManager, store: Store, settings: Settings, stop: asyncio.Event
) -> KeepAliveSummary:
    """Refreshes the malls due now; on ``stop`` no new refresh starts (those sent finish)."""
    window = timedelta(seconds=settings.keepalive_window_secs)
    due = await store.malls_due(before=tokens.now() + window, limit=MAX_DUE_PER_PASS)
    summary = KeepAliveSummary(due=len(due))
    permits = asyncio.Semaphore(settings.keepalive_concurrency)
    interval = 1.0 / settings.keepalive_rate

    async def refresh(mall_id: str) -> None:
        try:
            if await tokens.keep_alive(mall_id, window=window):
                summary.refreshed += 1
            else:
                summary.skipped += 1
        except TokenError as error:
            logger.warning("keep-alive refresh of mall %s failed: %s", mall_id, error)
            summary.failed += 1
        finally:
            permits.release()

    started: list[asyncio.Task[None]] = []
    for mall_id in due:
        if stop.is_set():
            break
        await permits.acquire()
        started.append(asyncio.create_task(refresh(mall_id)))
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
    await asyncio.gather(*started)
    return summary


async def run_keepalive(*, tokens: TokenManager, store: Store, settings: Settings, stop: asyncio.Event) -> None:
    """A keep-alive pass every ``CAFE24_KEEPALIVE_INTERVAL_SECS`` until ``stop`` is set."""
    while not stop.is_set():
        try:
            summary = await keep_alive_pass(tokens=tokens, store=store, settings=settings, stop=stop)
            if summary.due:
                logger.info("keep-alive pass: %s", summary)
        except Exception as error:
            if not is_unavailable(error):
                raise
            logger.warning("keep-alive pass failed (%s); retrying next interval", type(error).__name__)
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.keepalive_interval_secs)
