"""The PostgreSQL pools: one for statements, one of its own for the sessions that hold per-mall
refresh locks (so a refresh waiting on Cafe24 never holds a connection the callback needs).
Background work may not take the last ``DATABASE_RESERVED_CONNECTIONS`` connections."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from config.settings import Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")
Connection = psycopg.AsyncConnection[Any]

PERSIST_FOR_SECS = 60.0


class DatabaseUnavailable(Exception):
    """No connection within ``DATABASE_ACQUIRE_TIMEOUT_SECS``, or the connection failed."""


DATABASE_ERRORS = (psycopg.Error, DatabaseUnavailable, PoolTimeout)


def is_unavailable(error: BaseException) -> bool:
    """Connection-class failures: the database is down or unreachable (503, not 500)."""
    return isinstance(error, DatabaseUnavailable | psycopg.OperationalError | PoolTimeout)


class Database:
    """Owns the pools; opened and closed by the app's lifespan."""

    def __init__(self, settings: Settings) -> None:
        self._conninfo = settings.conninfo()
        self._timeout = float(settings.db_acquire_timeout_secs)
        max_size = settings.db_max_connections
        self._pool = AsyncConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=max_size,
            kwargs={"autocommit": True},
            timeout=self._timeout,
            open=False,
            name="cafe24",
        )
        self.lock_pool = AsyncConnectionPool(
            self._conninfo,
            min_size=0,
            max_size=settings.db_lock_connections,
            kwargs={"autocommit": True},
            timeout=self._timeout,
            open=False,
            name="cafe24-locks",
        )
        self._background = asyncio.Semaphore(max(max_size - settings.reserved_connections, 1))

    def __repr__(self) -> str:
        return "Database(conninfo=[redacted])"

    async def open(self) -> None:
        try:
            await self._pool.open(wait=True, timeout=self._timeout)
        except PoolTimeout:
            await self._pool.close()
            raise DatabaseUnavailable("the database is unreachable") from None
        await self.lock_pool.open()

    async def close(self) -> None:
        await self.lock_pool.close()
        await self._pool.close()

    async def connect(self) -> Connection:
        """A connection of its own, outside the pools (``LISTEN``, migrations)."""
        return await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)

    @asynccontextmanager
    async def connection(self, *, background: bool = False) -> AsyncIterator[Connection]:
        """A pooled connection; background work leaves the reserved ones to the request path."""
        if background:
            async with self._background, self._pooled() as conn:
                yield conn
        else:
            async with self._pooled() as conn:
                yield conn

    @asynccontextmanager
    async def _pooled(self) -> AsyncIterator[Connection]:
        try:
            conn = await self._pool.getconn()
        except PoolTimeout:
            raise DatabaseUnavailable("no database connection became free in time") from None
        try:
            yield conn
        finally:
            await self._pool.putconn(conn)


async def persist(write: Callable[[], Awaitable[T]], *, what: str, mall_id: str) -> T:
    """Retries a write that must not be lost (a pair Cafe24 already issued) on fresh
    connections, with backoff from 50 ms to 5 s, for up to 60 s."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + PERSIST_FOR_SECS
    backoff = 0.05
    while True:
        try:
            return await write()
        except (psycopg.Error, DatabaseUnavailable, PoolTimeout) as error:
            if loop.time() + backoff >= give_up:
                logger.error(
                    "could not store %s for mall %s (%s); the mall will need a new install",
                    what,
                    mall_id,
                    type(error).__name__,
                )
                raise
            logger.warning(
                "storing %s for mall %s failed (%s); retrying in %d ms",
                what,
                mall_id,
                type(error).__name__,
                backoff * 1000,
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
