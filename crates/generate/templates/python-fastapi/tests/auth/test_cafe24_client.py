"""The Admin API client with ``httpx.MockTransport`` and a virtual timer (fast, exact), plus
paging through the real sandbox."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from auth.cafe24_client import Cafe24Client, Cafe24Refused, Cafe24Unreachable, InvalidApiRequest
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


def make(handler: Handler, **settings: object) -> tuple[Cafe24Client, VirtualTimer, Tokens, httpx.AsyncClient]:
    timer, tokens = VirtualTimer(), Tokens()
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client = Cafe24Client(
        http=http, tokens=tokens, settings=unit_settings(**settings), timer=timer, rng=random.Random(7)
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
