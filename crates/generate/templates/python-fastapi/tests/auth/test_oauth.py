"""Install and callback against the real sandbox and PostgreSQL, through the app's lifespan."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg

from auth.crypto import FORMAT, NONCE_LEN, TAG_LEN
from auth.runtime import cafe24_runtime
from config.settings import Settings
from tests.conftest import Sandbox, install, wait_for_tokens


async def test_a_genuine_launch_redirects_to_consent_with_a_signed_state(
    client: httpx.AsyncClient, sandbox: Sandbox, mall_id: str, settings: Settings
) -> None:
    response = await client.get(f"/install?{sandbox.launch_query(mall_id)}")
    assert response.status_code == 302
    assert response.headers["cache-control"] == "no-store"
    location = urlsplit(response.headers["location"])
    assert location.path == f"/malls/{mall_id}/api/v2/oauth/authorize"
    query = parse_qs(location.query)
    assert query["scope"] == ["mall.read_product,mall.write_product,mall.read_store"]
    assert query["state"][0].startswith(f"v1.{mall_id}.")
    assert "%2C" in location.query


async def test_a_tampered_or_missing_launch_hmac_is_refused(
    client: httpx.AsyncClient, sandbox: Sandbox, mall_id: str
) -> None:
    tampered = sandbox.launch_query(mall_id).replace(f"mall_id={mall_id}", "mall_id=othermall")
    refused = await client.get(f"/install?{tampered}")
    assert (refused.status_code, refused.json()["error"]) == (403, "launch_invalid")
    missing = await client.get(f"/install?mall_id={mall_id}")
    assert (missing.status_code, missing.json()["error"]) == (403, "launch_hmac_required")
    assert missing.json()["ok"] is False and set(missing.json()) == {"ok", "error", "message"}


async def test_install_callback_and_prompt_exchange_store_encrypted_tokens(
    client: httpx.AsyncClient, sandbox: Sandbox, mall_id: str, database_url: str
) -> None:
    saved = await install(client, sandbox, mall_id)
    assert saved.status_code == 200
    body = saved.json()
    assert body["ok"] is True and body["message"] == "Saved" and isinstance(body["id"], int)
    assert saved.headers["cache-control"] == "no-store" and saved.headers["pragma"] == "no-cache"
    row = await wait_for_tokens(database_url, mall_id)
    assert (row["status"], row["version"], row["key_id"]) == ("active", 1, "k1")
    for sealed in (row["access_token"], row["refresh_token"]):
        assert sealed[0] == FORMAT and len(sealed) > 1 + NONCE_LEN + TAG_LEN
    assert sandbox.stats(mall_id)["authorization_code_grants"] == 1
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        code = await (
            await conn.execute("SELECT code, status FROM cafe24.authorization_codes WHERE id = %s", (body["id"],))
        ).fetchone()
    assert code == ("", "exchanged")


async def test_a_replayed_forged_or_incomplete_callback_stores_nothing(
    client: httpx.AsyncClient, sandbox: Sandbox, mall_id: str
) -> None:
    started = await client.get(f"/install?{sandbox.launch_query(mall_id)}")
    code, state = sandbox.approve(started.headers["location"])
    first = await client.get("/oauth/callback", params={"code": code, "state": state})
    assert first.status_code == 200
    replay = await client.get("/oauth/callback", params={"code": code, "state": state})
    assert (replay.status_code, replay.json()["error"]) == (409, "state_already_used")
    forged = await client.get("/oauth/callback", params={"code": code, "state": state[:-2] + "AA"})
    assert (forged.status_code, forged.json()["error"]) == (400, "invalid_state")
    missing = await client.get("/oauth/callback", params={"state": state})
    assert (missing.status_code, missing.json()["error"]) == (400, "missing_parameter")
    denied = await client.get("/oauth/callback", params={"error": "access_denied", "state": state})
    assert (denied.status_code, denied.json()["error"]) == (403, "access_denied")
    twice = await client.get(f"/oauth/callback?code=a&code=b&state={state}")
    assert (twice.status_code, twice.json()["error"]) == (400, "duplicate_parameter")
    for answer in (replay, forged, missing, denied, twice):
        assert answer.headers["cache-control"] == "no-store"
        assert code not in answer.text and state not in answer.text
    page = await client.get("/oauth/callback", params={"state": state}, headers={"Accept": "text/html"})
    assert page.headers["content-type"].startswith("text/html") and 'data-ok="false"' in page.text


async def test_health_readiness_and_unknown_routes(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"ok": True}
    assert (await client.get("/readyz")).json() == {"ok": True, "database": "up"}
    missing = await client.get("/nope")
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    assert "cafe24_oauth_callback_outcomes_total" in (await client.get("/metrics")).text


async def test_the_rust_runtime_reads_the_tokens_this_module_stored(
    client: httpx.AsyncClient, sandbox: Sandbox, mall_id: str, settings: Settings, database_url: str
) -> None:
    await install(client, sandbox, mall_id)
    await wait_for_tokens(database_url, mall_id)
    ours = await client.get(
        f"/internal/malls/{mall_id}/api/v2/admin/products/count",
        headers={"Authorization": f"Bearer {settings.admin_token.get_secret_value() if settings.admin_token else ''}"},
    )
    assert ours.status_code == 200 and ours.json()["count"] > 0
    metrics = (await client.get("/metrics")).text
    assert 'cafe24_api_paced_total{budget="shared"} 1' in metrics and metrics.endswith("# EOF\n")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "CAFE24_CLIENT_ID": settings.client_id,
        "CAFE24_CLIENT_SECRET": settings.client_secret.get_secret_value(),
        "CAFE24_REDIRECT_URI": settings.redirect_uri,
        "CAFE24_SCOPES": ",".join(settings.scopes),
        "CAFE24_BASE_URL": settings.base_url,
        "TOKEN_ENCRYPTION_KEYS": settings.token_encryption_keys.get_secret_value(),
        "DATABASE_URL": database_url,
        "EXPECTED_STATE_SECRET": settings.state_secret.get_secret_value(),
    }
    binary = os.environ.get("CAFE24_SANDBOX_BIN", "cafe24-oauth")
    command = [binary, "api", mall_id, "GET", "/products/count"]
    result = await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-500:]
    assert json.loads(result.stdout) == ours.json()


async def test_the_client_reads_every_product_in_order_without_a_429(
    client: httpx.AsyncClient, sandbox: Sandbox, mall_id: str, settings: Settings, database_url: str
) -> None:
    await install(client, sandbox, mall_id)
    await wait_for_tokens(database_url, mall_id)
    async with cafe24_runtime(settings, run_worker=False) as runtime:
        shop = runtime.client.mall(mall_id)
        numbers = [p.product_no async for page in shop.iter_products() for p in page]
        count = await shop.products_count()
        for _ in range(42):
            await shop.products(limit=1)
    assert numbers == sorted(numbers) and len(numbers) == len(set(numbers)) == count
    assert sandbox.stats(mall_id)["rate_limited"] == 0
