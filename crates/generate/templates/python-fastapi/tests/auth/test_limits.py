"""The request limits and the access-log redaction (contract §3.1, logs)."""

from __future__ import annotations

import asyncio
import logging

import httpx
from fastapi import FastAPI

from auth.limits import MAX_URI_BYTES, RedactQueryStrings, RequestLimits


def limited_app(*, timeout_secs: float) -> FastAPI:
    app = FastAPI()

    @app.get("/slow")
    async def slow() -> dict[str, bool]:
        await asyncio.sleep(5)
        return {"ok": True}

    @app.get("/fast")
    async def fast() -> dict[str, bool]:
        return {"ok": True}

    app.add_middleware(RequestLimits, timeout_secs=lambda: timeout_secs)
    return app


async def get(app: FastAPI, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path)


async def test_a_uri_over_8_kib_is_414_before_routing() -> None:
    app = limited_app(timeout_secs=5)
    response = await get(app, "/fast?code=" + "a" * MAX_URI_BYTES)
    assert response.status_code == 414
    assert response.json() == {"ok": False, "error": "uri_too_long", "message": "The request URI is too long."}
    assert (await get(app, "/fast?code=abc")).status_code == 200


async def test_a_request_not_answered_in_time_is_408() -> None:
    response = await get(limited_app(timeout_secs=0.1), "/slow")
    assert response.status_code == 408
    assert response.json()["error"] == "timeout"


def test_access_log_lines_lose_their_query_string() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/oauth/callback?code=SECRETCODE&state=v1.x", "1.1", 200),
        None,
    )
    assert RedactQueryStrings().filter(record)
    assert "SECRETCODE" not in record.getMessage()
    assert "/oauth/callback" in record.getMessage()
