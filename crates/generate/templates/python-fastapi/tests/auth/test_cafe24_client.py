"""The Admin API client with ``httpx.MockTransport``, a virtual timer and a scripted shared
budget (fast, exact). The real budget, sandbox and PostgreSQL: ``test_api_budget.py``."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from auth.cafe24_client import Cafe24Client, Cafe24Deadline, Cafe24Refused, Cafe24Unreachable, InvalidApiRequest
from auth.cafe24_models import VariantUpdate
from auth.crypto import generate_key_entry
from auth.pacer import MAX_PAUSE_SECS, LimitReport
from config.settings import Settings

Handler = Callable[[httpx.Request], httpx.Response]


class VirtualTimer:
    """Jumps instead of sleeping."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


class Tokens:
    def __init__(self) -> None:
        self.refreshes = 0

    async def access_token(self, mall_id: str) -> SecretStr:
        return SecretStr(f"token-{self.refreshes}")

    async def refresh_rejected(self, mall_id: str, rejected: SecretStr) -> SecretStr:
        self.refreshes += 1
        return SecretStr(f"token-{self.refreshes}")


def unit_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "CAFE24_CLIENT_ID": "cid",
        "CAFE24_CLIENT_SECRET": "secret",
        "CAFE24_REDIRECT_URI": "https://app.example.com/cb",
        "CAFE24_SCOPES": "mall.read_product",
        "EXPECTED_STATE_SECRET": "s" * 32,
        "TOKEN_ENCRYPTION_KEYS": generate_key_entry(),
        "DATABASE_URL": "postgresql://unused@127.0.0.1/unused",
        **overrides,
    }
    return Settings(_env_file=None, **values)


class Budget:
    """A scripted fleet-wide budget: each take answers the next of ``takes`` (an exception is
    raised), then ``(0, 1)``; ``down`` fails every take."""

    def __init__(self, *takes: tuple[float, float] | Exception, down: bool = False) -> None:
        self.takes = list(takes)
        self.down = down
        self.asked: list[tuple[float, float, float]] = []
        self.observed: list[tuple[float | None, float | None]] = []

    async def take_api_call(
        self, mall_id: str, *, size: float, drain_per_sec: float, max_wait_secs: float
    ) -> tuple[float, float]:
        self.asked.append((size, drain_per_sec, max_wait_secs))
        take = self.takes.pop(0) if self.takes else (0.0, 1.0)
        if self.down:
            raise RuntimeError("connection to 'db' failed: password=hunter2")
        if isinstance(take, Exception):
            raise take
        return take

    async def observe_api_limit(
        self, mall_id: str, *, used: float | None, drain_per_sec: float, pause_secs: float | None
    ) -> None:
        self.observed.append((used, pause_secs))


def make(
    handler: Handler, budget: Budget | None = None, **settings: object
) -> tuple[Cafe24Client, VirtualTimer, Tokens, httpx.AsyncClient]:
    timer, tokens = VirtualTimer(), Tokens()
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client = Cafe24Client(
        http=http,
        tokens=tokens,
        settings=unit_settings(**settings),
        budget=budget,
        timer=timer,
        rng=random.Random(7),
    )
    return client, timer, tokens, http


def answer(status: int, body: object = None, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body if body is not None else {}, headers=headers)


async def test_calls_beyond_the_bucket_wait_for_it_to_drain() -> None:
    client, timer, _, http = make(lambda r: answer(200, {"count": 1}))
    async with http:
        shop = client.mall("shop1")
        for _ in range(42):
            await shop.get("/products/count")
    assert shop.pacer.stats.granted == 42 and shop.pacer.stats.delayed == 2
    assert sum(timer.slept) == pytest.approx(1.0)


async def test_the_mirror_is_raised_by_x_api_call_limit_and_paused_by_remain_headers() -> None:
    client, timer, _, http = make(
        lambda r: answer(200, {}, **{"X-Api-Call-Limit": "40/40", "X-Cafe24-Call-Remain": "3"})
    )
    async with http:
        shop = client.mall("shop1")
        await shop.get("/store")
        before = timer.t
        await shop.get("/store")
    assert shop.pacer.stats.corrections >= 1 and timer.t - before >= 3
    assert LimitReport.from_headers(httpx.Headers({"X-Cafe24-Time-Remain": "1e9"})).remain_secs == MAX_PAUSE_SECS
    assert LimitReport.from_headers(httpx.Headers({"X-Cafe24-Call-Remain": "-5"})).remain_secs is None
    assert LimitReport.from_headers(httpx.Headers({"X-Cafe24-Call-Remain": "inf"})).remain_secs is None


async def test_a_get_is_retried_after_server_errors_and_transport_failures() -> None:
    script = iter(["503", "drop", "200"])

    def handler(request: httpx.Request) -> httpx.Response:
        step = next(script)
        if step == "drop":
            raise httpx.ConnectError("refused", request=request)
        return answer(int(step), {"store": {"shop_name": "x"}})

    client, timer, _, http = make(handler)
    async with http:
        response = await client.mall("shop1").send("GET", "/store")
    assert response.attempts == 3 and len(timer.slept) == 2


async def test_a_post_is_not_retried_after_a_server_error_or_a_lost_answer() -> None:
    calls: list[str] = []

    def failing(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        return answer(500, {"error": {"code": 500, "message": "boom"}})

    client, _, _, http = make(failing)
    async with http:
        with pytest.raises(Cafe24Refused) as refused:
            await client.mall("shop1").send("POST", "/products", json_body={"request": {}})
    assert refused.value.status == 500 and calls == ["POST"]

    def dropping(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        raise httpx.ReadTimeout("slow", request=request)

    client, _, _, http = make(dropping)
    async with http:
        with pytest.raises(Cafe24Unreachable):
            await client.mall("shop1").send("POST", "/products", json_body={})
        with pytest.raises(Cafe24Unreachable):
            await client.mall("shop1").send("POST", "/products", json_body={}, retry_safe=True)
    assert calls == ["POST", "POST", *["POST"] * 6]


async def test_a_429_pauses_the_mall_and_is_retried_for_every_method() -> None:
    script = iter([429, 200])
    client, timer, _, http = make(lambda r: answer(next(script), {"ok": 1}, **{"X-Cafe24-Call-Remain": "2"}))
    async with http:
        response = await client.mall("shop1").send("POST", "/products", json_body={})
    assert response.attempts == 2 and timer.t >= 1002


async def test_a_401_refreshes_once_and_retries_with_the_new_token() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        if len(seen) == 1:
            return answer(401, {"error": {"code": 401, "message": "access_token time expired. (invalid_token)"}})
        return answer(200, {"count": 3})

    client, _, tokens, http = make(handler)
    async with http:
        assert await client.mall("shop1").products_count() == 3
    assert seen == ["Bearer token-0", "Bearer token-1"] and tokens.refreshes == 1


async def test_attempts_are_bounded_and_errors_never_carry_the_token() -> None:
    client, _, _, http = make(
        lambda r: answer(503, {"error": {"code": 503, "message": "down"}}), CAFE24_API_MAX_ATTEMPTS=3
    )
    async with http:
        with pytest.raises(Cafe24Refused) as refused:
            await client.mall("shop1").get("/store")
    assert refused.value.attempts == 3 and "token-0" not in str(refused.value) + repr(refused.value)


@pytest.mark.parametrize("path", ["/../oauth/token", "/products/%2e%2e/x", "//x", "/products?x=1", "/"])
async def test_paths_cannot_leave_the_admin_api(path: str) -> None:
    client, _, _, http = make(lambda r: answer(200))
    async with http:
        with pytest.raises(InvalidApiRequest):
            await client.mall("shop1").get(path)


async def test_typed_helpers_send_cafe24s_shapes() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return answer(200, {"variant": {"variant_code": "P000000R000C", "quantity": 5, "extra": "kept"}})

    client, _, _, http = make(handler, CAFE24_API_VERSION="2025-12-01")
    async with http:
        variant = await client.mall("shop1", shop_no=2).update_variant(12, "P000000R000C", VariantUpdate(quantity=5))
    assert variant.quantity == 5 and variant.model_extra == {"extra": "kept"}
    assert json.loads(sent[0].content) == {"shop_no": 2, "request": {"quantity": 5}}
    assert sent[0].headers["x-cafe24-api-version"] == "2025-12-01"
    assert sent[0].url.path.endswith("/api/v2/admin/products/12/variants/P000000R000C")


async def test_products_page_by_offset_then_by_key_past_the_offset_cap() -> None:
    total = 5350

    def handler(request: httpx.Request) -> httpx.Response:
        q = request.url.params
        if "since_product_no" in q:
            assert "offset" not in q and "order" not in q
            start = int(q["since_product_no"]) + 1
        else:
            assert q["order"] == "asc" and int(q["offset"]) <= 5000
            start = int(q["offset"]) + 1
        numbers = range(start, min(start + int(q["limit"]), total + 1))
        return answer(200, {"products": [{"product_no": n} for n in numbers]})

    client, _, _, http = make(handler, CAFE24_API_BUCKET_SIZE=1000)
    async with http:
        seen = [p.product_no async for page in client.mall("shop1").iter_products(display="T") for p in page]
    assert seen == list(range(1, total + 1))


async def test_calls_draw_from_the_shared_budget_and_wait_what_it_says() -> None:
    budget = Budget((0.0, 1.0), (1.5, 9.0), (0.0, 3.0))
    limits = iter(["2/40", "12/40", "4/40"])
    client, timer, _, http = make(lambda r: answer(200, {"count": 1}, **{"X-Api-Call-Limit": next(limits)}), budget)
    async with http:
        shop = client.mall("shop1")
        for _ in range(3):
            await shop.get("/products/count")
    # One call of headroom below the bucket; the call's whole deadline is the longest wait.
    assert budget.asked[0] == (39.0, 2.0, 120.0) and timer.slept == [1.5]
    # Only the answer showing more than the level it went at plus one corrects the budget.
    assert budget.observed == [(12.0, None)]
    assert (client.metrics.paced("shared"), client.metrics.paced("fallback")) == (3, 0)
    assert shop.pacer.stats.granted == 0


async def test_pauses_and_429s_correct_the_shared_budget() -> None:
    script = iter(
        [
            answer(429, {}, **{"X-Api-Call-Limit": "40/40", "X-Cafe24-Call-Remain": "3"}),
            answer(200, {"ok": 1}, **{"X-Api-Call-Limit": "40/40", "X-Cafe24-Time-Remain": "2"}),
        ]
    )
    budget = Budget((0.0, 38.0), (3.0, 39.0))
    client, _, _, http = make(lambda r: next(script), budget)
    async with http:
        response = await client.mall("shop1").send("POST", "/products", json_body={})
    assert response.attempts == 2
    # A 429: the bucket is full and paused; then a pause alone (40 is not above 39 + 1).
    assert budget.observed == [(40.0, 3.0), (None, 2.0)]


async def test_a_call_the_budget_cannot_fit_before_the_deadline_is_not_sent() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return answer(200)

    client, _, _, http = make(handler, Budget((-1.0, 40.0)))
    async with http:
        with pytest.raises(Cafe24Deadline) as late:
            await client.mall("shop1").get("/store")
    assert late.value.attempts == 0 and sent == []


async def test_without_the_budget_a_call_is_paced_on_a_quarter_of_the_bucket(caplog: pytest.LogCaptureFixture) -> None:
    budget = Budget(down=True)
    client, timer, _, http = make(lambda r: answer(200, {"count": 1}), budget)
    with caplog.at_level(logging.WARNING, logger="auth.cafe24_client"):
        async with http:
            shop = client.mall("shop1")
            for _ in range(11):
                await shop.get("/products/count")
            # 10 deep, draining 0.5 per second: the 11th call waits 2 s.
            assert sum(timer.slept) == pytest.approx(2.0) and shop.pacer.stats.granted == 11
            assert (client.metrics.paced("shared"), client.metrics.paced("fallback")) == (0, 11)
            budget.down = False
            await shop.get("/products/count")
    assert (client.metrics.paced("shared"), client.metrics.paced("fallback")) == (1, 11)
    assert "pacing on this process's share" in caplog.text and "RuntimeError" in caplog.text
    assert "hunter2" not in caplog.text
