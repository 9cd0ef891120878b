"""The refresh protocol against the real sandbox and PostgreSQL: one refresh per rotation
across tasks and processes, a cancelled caller never loses a rotation, a lost rotated answer
flags the mall instead of losing it silently."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import psycopg
import pytest

from auth.keepalive import keep_alive_pass
from auth.runtime import cafe24_runtime
from auth.token_manager import NeedsReauth, TokenUnavailable
from config.settings import Settings
from tests.conftest import Sandbox, install, wait_for_tokens


async def sql(database_url: str, query: str, *params: object) -> list[tuple[object, ...]]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cur = await conn.execute(query, params)
        return await cur.fetchall() if cur.description else []


@pytest.fixture
async def installed(client: httpx.AsyncClient, sandbox: Sandbox, mall_id: str, database_url: str) -> str:
    assert (await install(client, sandbox, mall_id)).status_code == 200
    await wait_for_tokens(database_url, mall_id)
    return mall_id


async def expire_access(database_url: str, mall_id: str) -> None:
    await sql(database_url, "UPDATE cafe24.tokens SET access_expires_at = now() WHERE mall_id = %s", mall_id)


async def test_many_tasks_in_two_processes_make_exactly_one_refresh(
    installed: str, settings: Settings, sandbox: Sandbox, database_url: str
) -> None:
    await expire_access(database_url, installed)
    async with cafe24_runtime(settings, run_worker=False) as one, cafe24_runtime(settings, run_worker=False) as two:
        calls = [rt.tokens.access_token(installed) for rt in (one, two) for _ in range(25)]
        tokens = {token.get_secret_value() for token in await asyncio.gather(*calls)}
    assert len(tokens) == 1
    assert sandbox.stats(installed)["refresh_grants"] == 1
    assert await sql(database_url, "SELECT version FROM cafe24.tokens WHERE mall_id = %s", installed) == [(2,)]


async def test_a_cancelled_caller_leaves_the_rotated_pair_stored(
    installed: str, settings: Settings, sandbox: Sandbox, database_url: str
) -> None:
    await expire_access(database_url, installed)
    sandbox.fault("token", mall_id=installed, response_delay_ms=1500, response_delay_next=1)
    try:
        async with cafe24_runtime(settings, run_worker=False) as runtime:
            caller = asyncio.create_task(runtime.tokens.access_token(installed))
            await asyncio.sleep(0.5)
            caller.cancel()
            with pytest.raises(asyncio.CancelledError):
                await caller
            assert await runtime.work.drain(10)
            rows = await sql(
                database_url, "SELECT version, refresh_started_at FROM cafe24.tokens WHERE mall_id = %s", installed
            )
            assert rows == [(2, None)]
            await runtime.tokens.access_token(installed)
    finally:
        sandbox.clear_faults()
    stats = sandbox.stats(installed)
    assert (stats["refresh_grants"], stats["refresh_tokens_rejected"]) == (1, 0)


async def test_a_lost_rotated_answer_is_fenced_then_flagged_needs_reauth(
    installed: str, settings: Settings, sandbox: Sandbox, database_url: str
) -> None:
    await expire_access(database_url, installed)
    sandbox.fault("token", mall_id=installed, lose_response_next=1)
    try:
        async with cafe24_runtime(settings, run_worker=False) as runtime:
            with pytest.raises(TokenUnavailable):
                await runtime.tokens.access_token(installed)
            journal = await sql(
                database_url, "SELECT refresh_started_at FROM cafe24.tokens WHERE mall_id = %s", installed
            )
            assert journal[0][0] is not None
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(NeedsReauth):
                await runtime.tokens.access_token(installed)
            # The journal fence (HTTP timeout + 2 s) held the second send back.
            assert loop.time() - started >= settings.http_timeout_secs
    finally:
        sandbox.clear_faults()
    stats = sandbox.stats(installed)
    assert (stats["responses_lost"], stats["refresh_tokens_rejected"]) == (1, 1)
    rows = await sql(database_url, "SELECT status, refresh_started_at FROM cafe24.tokens WHERE mall_id = %s", installed)
    assert rows == [("needs_reauth", None)]
    events = await sql(database_url, "SELECT kind FROM cafe24.mall_events WHERE mall_id = %s ORDER BY id", installed)
    assert events == [("installed",), ("needs_reauth",)]


async def test_keep_alive_refreshes_malls_whose_refresh_token_nears_its_end(
    installed: str, settings: Settings, sandbox: Sandbox, database_url: str
) -> None:
    await sql(
        database_url,
        "UPDATE cafe24.tokens SET refresh_expires_at = now() + interval '1 day' WHERE mall_id = %s",
        installed,
    )
    async with cafe24_runtime(settings, run_worker=False) as runtime:
        summary = await keep_alive_pass(
            tokens=runtime.tokens, store=runtime.store, settings=settings, stop=asyncio.Event()
        )
        assert summary.refreshed >= 1
        assert not await runtime.tokens.keep_alive(installed, window=timedelta(days=3))
    assert sandbox.stats(installed)["refresh_grants"] == 1


async def test_revoke_calls_cafe24_and_wipes_the_ciphertext(
    installed: str, settings: Settings, sandbox: Sandbox, database_url: str
) -> None:
    async with cafe24_runtime(settings, run_worker=False) as runtime:
        await runtime.tokens.revoke(installed)
    assert sandbox.stats(installed)["revokes"] == 2
    rows = await sql(
        database_url, "SELECT status, access_token, refresh_token FROM cafe24.tokens WHERE mall_id = %s", installed
    )
    assert rows == [("revoked", b"", b"")]
