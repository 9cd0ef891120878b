"""Webhook intake and dispatch: fail closed, verify in constant time, dedupe as the runtime
does, store before 200, and uninstall events revoke the mall unless older than its grant."""

from __future__ import annotations

import asyncio
import json

import httpx
import psycopg
import pytest

from config.settings import Settings, get_settings
from main import create_app
from tests.conftest import Sandbox, install, running, wait_for_tokens
from tests.webhooks.conftest import WEBHOOK_KEY
from webhooks.handler import dedupe_key
from webhooks.settings import WebhookSettings, get_webhook_settings
from webhooks.store import WebhookEvent
from webhooks.verify import Verifier, WebhookRefused, sign_hex

VECTOR_BODY = b'{"event_no":90077,"resource":{"mall_id":"shop1","event_shop_no":"1"}}'
VECTOR_KEY = "sha256:f43d7c88fea8aa0dade4f33906c40e0c8a5a8c56676bd057002df4b874b049a6"


def delivery(mall_id: str, event_no: int = 90001, **resource: object) -> bytes:
    return json.dumps(
        {"event_no": event_no, "resource": {"mall_id": mall_id, "event_shop_no": "1", **resource}}
    ).encode()


@pytest.mark.parametrize("trace", [None, "", "has space", "café", "t" * 129])
def test_the_dedupe_key_is_the_runtimes(trace: str | None) -> None:
    assert dedupe_key(trace, 90077, VECTOR_BODY) == VECTOR_KEY
    assert dedupe_key("abc-123", 90077, VECTOR_BODY) == "trace:abc-123"


def test_hmac_schemes_verify_in_constant_time_and_unconfigured_refuses_all() -> None:
    key = "hmac-key-0123456789"
    hexed = Verifier(WebhookSettings(_env_file=None, CAFE24_WEBHOOK_AUTH="hmac-hex", CAFE24_WEBHOOK_KEY=key))
    tag = sign_hex(key, b"body")
    hexed.check(peer=None, forwarded_for=None, header=lambda _: f"sha256={tag}", body=b"body")
    with pytest.raises(WebhookRefused):
        hexed.check(peer=None, forwarded_for=None, header=lambda _: tag, body=b"bodY")
    with pytest.raises(WebhookRefused):
        Verifier(WebhookSettings(_env_file=None)).check(peer=None, forwarded_for=None, header=lambda _: key, body=b"")
    allow = WebhookSettings(
        _env_file=None,
        CAFE24_WEBHOOK_AUTH="insecure-none",
        CAFE24_WEBHOOK_ALLOWED_SENDERS="119.205.223.208/31",
        CAFE24_TRUSTED_PROXIES="10.0.0.0/8",
    )
    Verifier(allow).check(peer="10.1.2.3", forwarded_for="1.2.3.4, 119.205.223.209", header=lambda _: None, body=b"")
    with pytest.raises(WebhookRefused):
        Verifier(allow).check(
            peer="10.1.2.3", forwarded_for="119.205.223.209, unknown", header=lambda _: None, body=b""
        )


async def test_unconfigured_verification_refuses_every_delivery(settings: Settings, mall_id: str) -> None:
    app = create_app()
    app.dependency_overrides[get_settings] = lambda: settings
    app.dependency_overrides[get_webhook_settings] = lambda: WebhookSettings(_env_file=None)
    async with running(app) as client:
        refused = await client.post("/webhooks/cafe24", content=delivery(mall_id), headers={"X-Api-Key": WEBHOOK_KEY})
    assert (refused.status_code, refused.json()["error"]) == (403, "forbidden")


async def test_a_verified_delivery_is_stored_once_and_handed_to_the_app(
    client: httpx.AsyncClient, mall_id: str, handled: list[WebhookEvent]
) -> None:
    body = delivery(mall_id, product_no=12)
    wrong = await client.post("/webhooks/cafe24", content=body, headers={"X-Api-Key": "wrong-key-0123456789"})
    assert wrong.status_code == 403
    first = await client.post("/webhooks/cafe24", content=body, headers={"X-Api-Key": WEBHOOK_KEY})
    again = await client.post("/webhooks/cafe24", content=body, headers={"X-Api-Key": WEBHOOK_KEY})
    assert first.json() == {"ok": True, "id": first.json()["id"]}
    assert again.json() == {"ok": True, "id": first.json()["id"], "duplicate": True}
    traced = await client.post(
        "/webhooks/cafe24", content=body, headers={"X-Api-Key": WEBHOOK_KEY, "X-Trace-Id": "t-1"}
    )
    assert traced.json()["id"] != first.json()["id"]
    for _ in range(100):
        if len(handled) >= 2:
            break
        await asyncio.sleep(0.05)
    assert sorted(event.id for event in handled) == sorted([first.json()["id"], traced.json()["id"]])
    assert handled[0].payload()["resource"]["product_no"] == 12


@pytest.mark.parametrize(
    "body", [b"not json", b'{"resource":{"mall_id":"shop1"}}', b'{"event_no":1,"resource":{"mall_id":"evil.com"}}']
)
async def test_invalid_events_are_refused(client: httpx.AsyncClient, body: bytes) -> None:
    refused = await client.post("/webhooks/cafe24", content=body, headers={"X-Api-Key": WEBHOOK_KEY})
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_event")


async def test_an_oversized_body_is_refused(client: httpx.AsyncClient, settings: Settings) -> None:
    body = b"x" * (settings.http_max_body_bytes + 1)
    refused = await client.post("/webhooks/cafe24", content=body, headers={"X-Api-Key": WEBHOOK_KEY})
    assert (refused.status_code, refused.json()["error"]) == (413, "body_too_large")


async def test_app_deleted_revokes_the_mall_unless_older_than_its_grant(
    client: httpx.AsyncClient, sandbox: Sandbox, mall_id: str, database_url: str
) -> None:
    await install(client, sandbox, mall_id)
    await wait_for_tokens(database_url, mall_id)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        # A delivery that happened before the current grant (a retry arriving after a reinstall).
        await conn.execute(
            "INSERT INTO cafe24.webhook_events (dedupe_key, mall_id, event_no, body, occurred_at) "
            "VALUES (%s, %s, 90077, '{}', now() - interval '1 hour')",
            (f"old-{mall_id}", mall_id),
        )
        for _ in range(100):
            old = await (
                await conn.execute(
                    "SELECT status FROM cafe24.webhook_events WHERE dedupe_key = %s", (f"old-{mall_id}",)
                )
            ).fetchone()
            if old == ("dispatched",):
                break
            await asyncio.sleep(0.05)
        kept = await (await conn.execute("SELECT status FROM cafe24.tokens WHERE mall_id = %s", (mall_id,))).fetchone()
        assert (old, kept) == (("dispatched",), ("active",))
        stored = await client.post(
            "/webhooks/cafe24", content=delivery(mall_id, 90077), headers={"X-Api-Key": WEBHOOK_KEY}
        )
        assert stored.status_code == 200
        status = None
        for _ in range(100):
            row = await (
                await conn.execute("SELECT status, access_token FROM cafe24.tokens WHERE mall_id = %s", (mall_id,))
            ).fetchone()
            status = row[0] if row else None
            if status == "revoked":
                break
            await asyncio.sleep(0.05)
        assert row == ("revoked", b"")
        events = await (
            await conn.execute("SELECT kind FROM cafe24.mall_events WHERE mall_id = %s ORDER BY id", (mall_id,))
        ).fetchall()
    assert events == [("installed",), ("revoked",)]
