"""What the module holds while the app runs: the database pools, the one shared
``httpx.AsyncClient``, the token manager, the exchange worker and keep-alive. Created by the
app's lifespan (:func:`cafe24_runtime`), never at import or per request; on shutdown it stops
starting work, then waits for work in flight (``CAFE24_HTTP_TIMEOUT_SECS`` + 62 s at most)
before closing the HTTP client and the database."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from auth.cafe24_client import Cafe24Client
from auth.crypto import Sealer
from auth.database import PERSIST_FOR_SECS, Database
from auth.exchange import Exchanger
from auth.keepalive import run_keepalive
from auth.metrics import CallbackMetrics
from auth.migrate import migrate
from auth.state import StateSigner
from auth.store import Store
from auth.tasks import TrackedWork
from auth.token_endpoint import TokenEndpoint
from auth.token_manager import JOURNAL_SLACK_SECS, Clock, TokenManager, utc_now
from config.settings import Settings

logger = logging.getLogger(__name__)

USER_AGENT = "cafe24-oauth-python"


@dataclass(frozen=True)
class Cafe24Runtime:
    settings: Settings
    db: Database
    store: Store
    http: httpx.AsyncClient
    signer: StateSigner
    endpoint: TokenEndpoint
    tokens: TokenManager
    exchanger: Exchanger
    client: Cafe24Client
    metrics: CallbackMetrics
    work: TrackedWork

    def drain_bound_secs(self) -> float:
        """Long enough for work already sent: one token call, then the persist window."""
        return self.settings.http_timeout_secs + JOURNAL_SLACK_SECS + PERSIST_FOR_SECS


@asynccontextmanager
async def cafe24_runtime(
    settings: Settings, *, run_worker: bool = True, clock: Clock = utc_now
) -> AsyncIterator[Cafe24Runtime]:
    """Migrates, builds everything, runs the worker (unless ``run_worker`` is false), and on
    exit shuts down in order. Compose it into an app's own lifespan."""
    db = Database(settings)
    await db.open()
    try:
        async with await db.connect() as conn:
            await migrate(conn)
        async with httpx.AsyncClient(follow_redirects=False, headers={"User-Agent": USER_AGENT}) as http:
            runtime = _build(settings, db, http, clock)
            stop = asyncio.Event()
            loops: list[asyncio.Task[None]] = []
            if run_worker:
                loops.append(asyncio.create_task(runtime.exchanger.run(stop)))
                loops.append(
                    asyncio.create_task(
                        run_keepalive(tokens=runtime.tokens, store=runtime.store, settings=settings, stop=stop)
                    )
                )
            try:
                yield runtime
            finally:
                stop.set()
                for loop in loops:
                    loop.cancel()
                await asyncio.gather(*loops, return_exceptions=True)
                if len(runtime.work):
                    logger.info("waiting for %d token task(s) in flight", len(runtime.work))
                await runtime.work.drain(runtime.drain_bound_secs())
    finally:
        await db.close()


def _build(settings: Settings, db: Database, http: httpx.AsyncClient, clock: Clock) -> Cafe24Runtime:
    store = Store(db)
    work = TrackedWork()
    endpoint = TokenEndpoint(http=http, settings=settings)
    tokens = TokenManager(
        store=store, endpoint=endpoint, sealer=Sealer(settings.key_ring), settings=settings, work=work, clock=clock
    )
    return Cafe24Runtime(
        settings=settings,
        db=db,
        store=store,
        http=http,
        signer=StateSigner(secret=settings.state_secret, ttl_secs=settings.state_ttl_secs),
        endpoint=endpoint,
        tokens=tokens,
        exchanger=Exchanger(store=store, endpoint=endpoint, tokens=tokens, settings=settings, work=work),
        client=Cafe24Client(http=http, tokens=tokens, settings=settings, budget=store),
        metrics=CallbackMetrics(),
        work=work,
    )
