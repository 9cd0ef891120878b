"""Work that must finish even if whoever asked for it stops waiting (docs/contract.md §10.4).

Cafe24 rotates a refresh token (or consumes a code) the moment it answers, so a refresh or an
exchange that has been decided runs on a task of its own; the caller awaits it through
``asyncio.shield``. Cancelling the caller (a client disconnect, a timeout, shutdown) stops the
waiting, never the work, and shutdown waits for the work with :meth:`TrackedWork.drain`.
:func:`within` is the opposite: a bounded wait for work that may be given up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Work run by :func:`within`, referenced until it ends (work given up winds down on its own).
_bounded: set[asyncio.Task[Any]] = set()


class TrackedWork:
    """The module's detached tasks, tracked so shutdown can wait for them."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Runs ``work`` detached and waits for it; cancelling this wait leaves it running."""
        return await asyncio.shield(self.spawn(work))

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        # Retrieve the outcome so a task whose caller left does not warn "never retrieved";
        # the work itself logs what went wrong.
        if not task.cancelled() and task.exception() is not None:
            logger.debug("detached work ended with %s", type(task.exception()).__name__)

    async def drain(self, bound_secs: float) -> bool:
        """Waits up to ``bound_secs`` for the work in flight (and what it starts) to finish."""
        loop = asyncio.get_running_loop()
        until = loop.time() + bound_secs
        while self._tasks:
            left = until - loop.time()
            if left <= 0:
                logger.error("%d token task(s) still in flight at the end of the shutdown bound", len(self._tasks))
                return False
            await asyncio.wait(set(self._tasks), timeout=left)
        return True


async def within(seconds: float, work: Coroutine[Any, Any, T]) -> T:
    """``work``'s result, or :class:`TimeoutError` after ``seconds`` at the latest. Work still
    running then is cancelled and left to wind down on its own (psycopg first cancels its
    statement at the server, which an unreachable server makes slow): the caller never waits
    for it."""
    task = asyncio.create_task(work)
    _bounded.add(task)
    task.add_done_callback(_wound_down)
    try:
        done, _ = await asyncio.wait((task,), timeout=seconds)
    finally:
        if not task.done():
            task.cancel()
    if not done:
        raise TimeoutError
    return task.result()


def _wound_down(task: asyncio.Task[Any]) -> None:
    _bounded.discard(task)
    # Retrieved so that given-up work does not warn "exception was never retrieved".
    if not task.cancelled():
        task.exception()
