"""The fleet-wide Admin API budget (contract §6.8) with the real PostgreSQL and the real sandbox,
on a small fast bucket (10 deep, 10 calls per second) so each test takes a few seconds.
Independent runtimes (pools, clients and pacers of their own, as separate processes would have)
share one bucket per mall; when the budget does not answer, each paces on its quarter of the
bucket, and the next call tries the budget again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager

import psycopg
import pytest

from auth.runtime import Cafe24Runtime, cafe24_runtime
from config.settings import Settings, get_settings
from main import create_app
from tests.conftest import Sandbox, SettingsFactory, install, running, start_sandbox, wait_for_tokens

BUCKET, DRAIN = 10, 10.0
TAKE_API_CALL = "cafe24.take_api_call(text, double precision, double precision, double precision)"
TAKEN_AWAY = "cafe24.take_api_call_away(text, double precision, double precision, double precision)"


@pytest.fixture(scope="module")
def fast_sandbox(cafe24_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    config = tmp_path_factory.mktemp("sandbox") / "sandbox.toml"
    config.write_text(f"[rate_limit]\nenabled = true\nbucket_size = {BUCKET}\ndrain_per_sec = {DRAIN}\n")
    with start_sandbox(cafe24_bin, "--config", str(config)) as running_sandbox:
        yield running_sandbox


@pytest.fixture
async def installed(make_settings: SettingsFactory, fast_sandbox: Sandbox, database_url: str, mall_id: str) -> Settings:
    """Settings for the fast sandbox, with ``mall_id`` installed through the app."""
    settings = make_settings(
        CAFE24_BASE_URL=fast_sandbox.base_url,
        CAFE24_API_BUCKET_SIZE=BUCKET,
        CAFE24_API_DRAIN_PER_SEC=DRAIN,
        DATABASE_MAX_CONNECTIONS=4,
    )
    app = create_app()
    app.dependency_overrides[get_settings] = lambda: settings
    async with running(app) as client:
        assert (await install(client, fast_sandbox, mall_id)).status_code == 200
        await wait_for_tokens(database_url, mall_id)
    return settings


@asynccontextmanager
async def fleet(settings: Settings, processes: int) -> AsyncIterator[list[Cafe24Runtime]]:
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(cafe24_runtime(settings, run_worker=False)) for _ in range(processes)]


async def hammer(runtimes: list[Cafe24Runtime], mall_id: str, calls_each: int) -> float:
    """Every runtime sends ``calls_each`` calls at once; the seconds it took."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(
        *(runtime.client.mall(mall_id).get("/products/count") for runtime in runtimes for _ in range(calls_each))
    )
    return loop.time() - started


def paced(runtimes: list[Cafe24Runtime], budget: str) -> list[int]:
    return [runtime.client.metrics.paced(budget) for runtime in runtimes]


async def test_independent_clients_share_one_bucket(installed: Settings, fast_sandbox: Sandbox, mall_id: str) -> None:
    async with fleet(installed, 3) as runtimes:
        elapsed = await hammer(runtimes, mall_id, 10)
    stats = fast_sandbox.stats(mall_id)
    assert (stats["api_calls"], stats["rate_limited"]) == (30, 0)
    # One bucket lets 30 calls through in (30 - 10) / 10 = 2 s at the earliest; three buckets
    # of their own would have sent all 30 at once, and 20 would have been refused.
    assert elapsed >= (30 - BUCKET) / DRAIN, elapsed
    assert paced(runtimes, "shared") == [10, 10, 10] and paced(runtimes, "fallback") == [0, 0, 0]


async def test_without_the_budget_each_process_paces_on_its_share(
    installed: Settings, fast_sandbox: Sandbox, mall_id: str, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        fleet(installed, 2) as runtimes,
        await psycopg.AsyncConnection.connect(database_url, autocommit=True) as admin,
    ):
        await admin.execute(f"ALTER FUNCTION {TAKE_API_CALL} RENAME TO take_api_call_away")
        try:
            with caplog.at_level(logging.WARNING, logger="auth.cafe24_client"):
                # 16 calls: two whole buckets of their own would send them at once, into a bucket
                # of 10; two quarters (2.5 deep, 2.5 per second each) fit it.
                await hammer(runtimes, mall_id, 8)
        finally:
            await admin.execute(f"ALTER FUNCTION {TAKEN_AWAY} RENAME TO take_api_call")
        stats = fast_sandbox.stats(mall_id)
        assert (stats["api_calls"], stats["rate_limited"]) == (16, 0)
        assert paced(runtimes, "fallback") == [8, 8] and paced(runtimes, "shared") == [0, 0]
        assert "UndefinedFunction" in caplog.text and "pacing on this process's share" in caplog.text
        await runtimes[0].client.mall(mall_id).get("/products/count")
        assert paced(runtimes, "shared") == [1, 0] and paced(runtimes, "fallback") == [8, 8]


async def test_a_budget_that_does_not_answer_within_a_second_is_passed_over(
    installed: Settings, fast_sandbox: Sandbox, mall_id: str, database_url: str
) -> None:
    loop = asyncio.get_running_loop()
    async with (
        fleet(installed, 1) as runtimes,
        await psycopg.AsyncConnection.connect(database_url, autocommit=True) as locker,
    ):
        shop = runtimes[0].client.mall(mall_id)
        await shop.get("/products/count")
        # Another session holds the mall's row: take_api_call waits for it.
        async with locker.transaction():
            await locker.execute("SELECT 1 FROM cafe24.api_budgets WHERE mall_id = %s FOR UPDATE", (mall_id,))
            started = loop.time()
            await shop.get("/products/count")
            elapsed = loop.time() - started
        await shop.get("/products/count")
    assert 1.0 <= elapsed < 3.0, elapsed
    assert paced(runtimes, "shared") == [2] and paced(runtimes, "fallback") == [1]
    assert fast_sandbox.stats(mall_id)["rate_limited"] == 0
