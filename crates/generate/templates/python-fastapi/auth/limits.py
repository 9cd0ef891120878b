"""Limits every request meets before routing (contract §3.1): a request URI longer than 8 KiB
is refused with ``414 uri_too_long``, and a request not answered within
``HTTP_REQUEST_TIMEOUT_SECS`` gets ``408 timeout``. Work the module has decided (a refresh, an
exchange) runs detached and is not cancelled with the request.

Also here: the filter that keeps codes and states out of the server's access log. Uvicorn logs
each request line with its query string, and the callback's query *is* the code and the state.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_URI_BYTES = 8192


async def _send_json(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"ok": False, "error": code, "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestLimits:
    """Pure ASGI middleware: the URI limit, then the time limit. ``timeout_secs`` is read per
    request, so settings loaded at start-up apply."""

    def __init__(self, app: ASGIApp, *, timeout_secs: Callable[[], float]) -> None:
        self.app = app
        self.timeout_secs = timeout_secs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        uri_bytes = len(scope.get("raw_path") or scope["path"].encode()) + len(scope.get("query_string", b""))
        if uri_bytes > MAX_URI_BYTES:
            await _send_json(send, 414, "uri_too_long", "The request URI is too long.")
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            async with asyncio.timeout(self.timeout_secs()):
                await self.app(scope, receive, tracking_send)
        except TimeoutError:
            if started:
                raise
            await _send_json(send, 408, "timeout", "The request took too long.")


class RedactQueryStrings(logging.Filter):
    """Drops the query string from uvicorn's access-log lines (``uvicorn.access``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args: Any = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path, _, _ = args[2].partition("?")
            record.args = (*args[:2], path, *args[3:])
        return True


def redact_access_log() -> None:
    """Installs [`RedactQueryStrings`] on uvicorn's access logger, once."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactQueryStrings) for f in access.filters):
        access.addFilter(RedactQueryStrings())
