"""Fixtures: a fresh PostgreSQL database per test session (``CAFE24_TEST_DATABASE_URL``, a
superuser URL), the real Cafe24 sandbox (``cafe24-oauth sandbox``, from ``CAFE24_SANDBOX_BIN``
or PATH), settings built in code, and the app running inside its lifespan."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from auth.crypto import generate_key_entry
from config.settings import Settings, get_settings
from main import create_app

CLIENT_ID = "sandbox-client-id"
CLIENT_SECRET = "sandbox-client-secret"
REDIRECT_URI = "http://127.0.0.1:8080/oauth/callback"
STATE_SECRET = "test-state-secret-0123456789abcdef-0123"
ADMIN_TOKEN = "test-admin-token-0123456789abcdef-0123"


def _require(name: str, how: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        pytest.fail(f"{name} is not set: {how}", pytrace=False)
    return value


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh database for the session, dropped at the end."""
    admin = _require(
        "CAFE24_TEST_DATABASE_URL",
        "point it at a PostgreSQL superuser URL (the repository's scripts/pg.sh starts one: "
        ". scripts/pg.sh && pg_start)",
    )
    name = f"cafe24_py_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield with_database(admin, name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def with_database(url: str, name: str) -> str:
    """``url`` (a postgres:// URL) naming another database."""
    return str(urlunsplit(urlsplit(url)._replace(path=f"/{name}")))


@dataclass
class Sandbox:
    """The local Cafe24 and its control API (docs/sandbox.md)."""

    url: str
    http: httpx.Client

    @property
    def base_url(self) -> str:
        return self.url + "/malls/{mall_id}"

    def stats(self, mall_id: str) -> dict[str, int]:
        response = self.http.get(f"/_sandbox/stats/{mall_id}")
        response.raise_for_status()
        data: dict[str, int] = response.json()
        return data

    def fault(self, endpoint: str, **spec: Any) -> None:
        self.http.put(f"/_sandbox/faults/{endpoint}", json=spec).raise_for_status()

    def clear_faults(self) -> None:
        self.http.delete("/_sandbox/faults").raise_for_status()

    def launch_query(self, mall_id: str) -> str:
        response = self.http.get("/_sandbox/launch-url", params={"mall_id": mall_id})
        response.raise_for_status()
        url: str = response.json()["url"]
        return urlsplit(url).query

    def approve(self, authorize_url: str) -> tuple[str, str]:
        """Opens the consent page (auto-approved) and returns ``(code, state)`` from the redirect."""
        response = self.http.get(authorize_url)
        assert response.status_code == 302, response.text
        query = parse_qs(urlsplit(response.headers["location"]).query)
        return query["code"][0], query["state"][0]


@pytest.fixture(scope="session")
def cafe24_bin() -> str:
    """The cafe24-oauth binary: the sandbox, and the Rust runtime this module interoperates with."""
    binary = os.environ.get("CAFE24_SANDBOX_BIN") or shutil.which("cafe24-oauth")
    if not binary or not os.access(binary, os.X_OK):
        pytest.fail(
            "the Cafe24 sandbox is needed: set CAFE24_SANDBOX_BIN to the cafe24-oauth binary or put it "
            "on PATH (build it in the cafe24-oauth repository: cargo build -p cafe24-cli)",
            pytrace=False,
        )
    return binary


@pytest.fixture(scope="session")
def sandbox(cafe24_bin: str) -> Iterator[Sandbox]:
    with start_sandbox(cafe24_bin, "--products", "250") as running:
        yield running


@contextmanager
def start_sandbox(cafe24_bin: str, *extra: str) -> Iterator[Sandbox]:
    """A sandbox of its own on a free loopback port (``extra``: more arguments, ``--config``...)."""
    args = [cafe24_bin, "sandbox", "--listen", "127.0.0.1:0", "--auto-approve", "--auto-create-malls"]
    process = subprocess.Popen(
        [*args, "--redirect-uri", REDIRECT_URI, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    first: list[str] = []
    reader = threading.Thread(target=lambda: first.append(process.stdout.readline() if process.stdout else ""))
    reader.start()
    reader.join(timeout=20)
    if not first or "listening on " not in first[0]:
        process.kill()
        pytest.fail("the sandbox did not start within 20 s", pytrace=False)
    url = first[0].rsplit("listening on ", 1)[1].strip()
    with httpx.Client(base_url=url, timeout=10) as http:
        try:
            yield Sandbox(url, http)
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@pytest.fixture
def mall_id() -> str:
    """A mall of its own for each test (the sandbox creates it on first use)."""
    return f"m{secrets.token_hex(5)}"


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(database_url: str, sandbox: Sandbox) -> SettingsFactory:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "CAFE24_CLIENT_ID": CLIENT_ID,
            "CAFE24_CLIENT_SECRET": CLIENT_SECRET,
            "CAFE24_REDIRECT_URI": REDIRECT_URI,
            "CAFE24_SCOPES": "mall.read_product,mall.write_product,mall.read_store",
            "CAFE24_BASE_URL": sandbox.base_url,
            "EXPECTED_STATE_SECRET": STATE_SECRET,
            "TOKEN_ENCRYPTION_KEYS": generate_key_entry("k1"),
            "DATABASE_URL": database_url,
            "CAFE24_HTTP_TIMEOUT_SECS": 3,
            "CAFE24_ADMIN_TOKEN": ADMIN_TOKEN,
            "CAFE24_API_BACKOFF_MS": 10,
            "CAFE24_API_BACKOFF_MAX_MS": 50,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    return make_settings()


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app inside its lifespan, reached in process (its lifespan state included)."""
    async with app.router.lifespan_context(app) as state:

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            scope["state"] = dict(state or {})
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app()
    app.dependency_overrides[get_settings] = lambda: settings
    async with running(app) as client:
        yield client


async def wait_for_tokens(database_url: str, mall_id: str, *, within: float = 10.0) -> dict[str, Any]:
    """The mall's token row once the worker has stored it."""
    loop = asyncio.get_running_loop()
    until = loop.time() + within
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        while loop.time() < until:
            cur = await conn.execute(
                "SELECT mall_id, key_id, access_token, refresh_token, version, status, scopes "
                "FROM cafe24.tokens WHERE mall_id = %s",
                (mall_id,),
            )
            row = await cur.fetchone()
            if row is not None:
                names = ("mall_id", "key_id", "access_token", "refresh_token", "version", "status", "scopes")
                return dict(zip(names, row, strict=True))
            await asyncio.sleep(0.05)
    pytest.fail(f"no tokens for mall {mall_id} within {within} s")


async def install(client: httpx.AsyncClient, sandbox: Sandbox, mall_id: str) -> httpx.Response:
    """Cafe24's launch → /install → consent (auto-approved) → /oauth/callback."""
    started = await client.get(f"/install?{sandbox.launch_query(mall_id)}")
    assert started.status_code == 302, started.text
    code, state = sandbox.approve(started.headers["location"])
    return await client.get("/oauth/callback", params={"code": code, "state": state})
