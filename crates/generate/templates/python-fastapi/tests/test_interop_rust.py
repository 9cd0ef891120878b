"""Interoperation with the Rust runtime on one database (docs/contract.md): ``cafe24-oauth serve``
(callback, worker and Admin API proxy in one real process) runs next to this module's app
(uvicorn, in process, on a real loopback port) with the same settings, against the real
sandbox and PostgreSQL.

1. Codes stored by either callback (and by a bare insert, as the serverless callback does)
   are exchanged exactly once, by whichever worker claims them first.
2. Both refreshing the same malls at once, with access tokens living a few seconds: exactly
   one refresh per rotation and none refused — every token either side was handed is one
   rotation, and no rotation is wasted. A module that took another lock key (or none) fails
   here: both sides would send the same refresh token.

Bounded (well under a minute), loopback only; every process started here is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import re
import secrets
import socket
import sys
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import urlencode

import httpx
import psycopg
import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from auth.runtime import Cafe24Runtime
from auth.token_endpoint import TokenSet
from auth.token_manager import TokenError
from config.settings import Settings, get_settings
from main import create_app
from tests.conftest import REDIRECT_URI, Sandbox, SettingsFactory

ACCESS_TTL_SECS = 3  # the sandbox's access-token lifetime during the run
MARGIN_SECS = 2  # CAFE24_REFRESH_MARGIN_SECS of both: a rotation about every second per mall
RUN_SECS = 10.0
TEST_BOUND_SECS = 55.0
STOP_BOUND_SECS = 10.0
LISTENING = re.compile(r"listening addr=(\S+)")

# Who installs each mall: (the /install that signs the state, the /oauth/callback that stores
# the code), or a bare insert into cafe24.authorization_codes (code, state, mall_id).
ROUTES = (
    ("rust", "rust"),
    ("rust", "rust"),
    ("python", "python"),
    ("python", "python"),
    ("rust", "python"),
    ("python", "rust"),
    ("bare", "bare"),
    ("bare", "bare"),
)


def rust_environment(settings: Settings) -> dict[str, str]:
    """Every setting of the Python app, as the environment variables the runtime reads."""
    env = {"PATH": os.environ.get("PATH", ""), "LISTEN_ADDR": "127.0.0.1:0", "RUST_LOG": "info"}
    for name, info in Settings.model_fields.items():
        value = getattr(settings, name)
        if not isinstance(info.validation_alias, str) or value is None or name == "listen_addr":
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, bool):
            env[info.validation_alias] = "true" if value else "false"
        elif isinstance(value, tuple):
            env[info.validation_alias] = ",".join(value)
        else:
            env[info.validation_alias] = str(value)
    return env


async def sql(database_url: str, query: str, *params: object) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cur = await conn.execute(query, params)
        return await cur.fetchall() if cur.description else []


async def stop_process(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL after a bound."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), STOP_BOUND_SECS)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await asyncio.wait_for(process.wait(), STOP_BOUND_SECS)


@dataclass
class Rust:
    """``cafe24-oauth serve`` running, and the CLI with the same environment."""

    binary: str
    env: dict[str, str]
    url: str
    log: list[str]

    async def token(self, mall_id: str) -> str:
        """``cafe24-oauth token MALL``: a valid access token, refreshed by Rust if due."""
        process = await asyncio.create_subprocess_exec(
            self.binary,
            "token",
            mall_id,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), 20)
        finally:
            await stop_process(process)
        assert process.returncode == 0, f"cafe24-oauth token {mall_id}: {err.decode()[-500:]}"
        return out.decode().strip()

    def tail(self) -> str:
        return "".join(self.log[-30:])


@asynccontextmanager
async def rust_serve(binary: str, env: dict[str, str]) -> AsyncIterator[Rust]:
    process = await asyncio.create_subprocess_exec(
        binary,
        "serve",
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    log: list[str] = []
    address: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def read_log() -> None:
        assert process.stderr is not None
        async for raw in process.stderr:
            line = raw.decode(errors="replace")
            log.append(line)
            found = LISTENING.search(line)
            if found and not address.done():
                address.set_result(found.group(1))

    reader = asyncio.create_task(read_log())
    try:
        try:
            addr = await asyncio.wait_for(asyncio.shield(address), 20)
        except TimeoutError:
            pytest.fail("cafe24-oauth serve did not listen within 20 s:\n" + "".join(log[-30:]))
        yield Rust(binary=binary, env=env, url=f"http://{addr}", log=log)
    finally:
        await stop_process(process)
        await asyncio.wait_for(reader, STOP_BOUND_SECS)


@asynccontextmanager
async def python_serve(settings: Settings) -> AsyncIterator[tuple[str, Cafe24Runtime]]:
    """The app under uvicorn on a free loopback port; its lifespan's runtime comes with it."""
    app = create_app()
    app.dependency_overrides[get_settings] = lambda: settings
    state: dict[str, Any] = {}
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Mapping[str, Any]]:
        async with inner(app) as started:
            state.update(started or {})
            yield state

    app.router.lifespan_context = lifespan
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", log_config=None, access_log=False, timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(20):
            while not server.started:
                if serving.done():
                    pytest.fail("the Python app did not start")
                await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}", cast(Cafe24Runtime, state["cafe24"])
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(serving, 30)
        finally:
            sock.close()


@dataclass
class Sent:
    """What this process sent to Cafe24's token endpoint, per mall."""

    exchanges: Counter[str] = field(default_factory=Counter)
    refreshes: Counter[str] = field(default_factory=Counter)


def count_token_calls(runtime: Cafe24Runtime, monkeypatch: pytest.MonkeyPatch) -> Sent:
    sent = Sent()
    endpoint = runtime.endpoint

    def counting(kind: Counter[str], call: Callable[..., Awaitable[TokenSet]]) -> Callable[..., Awaitable[TokenSet]]:
        async def wrapper(*, mall_id: str, **kwargs: Any) -> TokenSet:
            kind[mall_id] += 1
            return await call(mall_id=mall_id, **kwargs)

        return wrapper

    monkeypatch.setattr(endpoint, "exchange", counting(sent.exchanges, endpoint.exchange))
    monkeypatch.setattr(endpoint, "refresh", counting(sent.refreshes, endpoint.refresh))
    return sent


async def stored_access_token(runtime: Cafe24Runtime, mall_id: str) -> str:
    row = await runtime.store.read_tokens(mall_id)
    assert row is not None
    return runtime.tokens.sealer.open(mall_id=mall_id, kind="access", key_id=row.key_id, sealed=row.access_token)


def set_access_ttl(sandbox: Sandbox, secs: int) -> int:
    """Sets the lifetime of access tokens issued from now on; returns the previous one."""
    before = sandbox.http.get("/_sandbox/lifetimes")
    before.raise_for_status()
    sandbox.http.put("/_sandbox/lifetimes", json={"access_token_ttl_secs": secs}).raise_for_status()
    return int(before.json()["access_token_ttl_secs"])


def report(capsys: pytest.CaptureFixture[str], text: str) -> None:
    with capsys.disabled():
        sys.stdout.write(f"\n[interop] {text}")
        sys.stdout.flush()


async def test_python_and_rust_share_codes_and_rotations(
    make_settings: SettingsFactory,
    sandbox: Sandbox,
    database_url: str,
    cafe24_bin: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(CAFE24_REFRESH_MARGIN_SECS=MARGIN_SECS, CAFE24_API_DEADLINE_SECS=20)
    env = rust_environment(settings)
    malls = [f"i{secrets.token_hex(5)}" for _ in ROUTES]
    previous_ttl = set_access_ttl(sandbox, ACCESS_TTL_SECS)
    try:
        async with (
            asyncio.timeout(TEST_BOUND_SECS),
            rust_serve(cafe24_bin, env) as rust,
            python_serve(settings) as (python_url, runtime),
            httpx.AsyncClient(timeout=20) as http,
        ):
            sent = count_token_calls(runtime, monkeypatch)
            try:
                await codes_are_exchanged_once(
                    http,
                    sandbox,
                    database_url,
                    malls,
                    sent,
                    urls={"rust": rust.url, "python": python_url},
                    capsys=capsys,
                )
                await rotations_are_shared(
                    http, sandbox, database_url, malls, sent, rust=rust, runtime=runtime, capsys=capsys
                )
            except BaseException:
                report(capsys, "cafe24-oauth serve, last lines:\n" + rust.tail())
                raise
    finally:
        set_access_ttl(sandbox, previous_ttl)


async def codes_are_exchanged_once(
    http: httpx.AsyncClient,
    sandbox: Sandbox,
    database_url: str,
    malls: list[str],
    sent: Sent,
    *,
    urls: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    for mall_id, (installer, callback) in zip(malls, ROUTES, strict=True):
        if installer == "bare":
            query = {
                "response_type": "code",
                "client_id": "sandbox-client-id",
                "state": f"bare-{secrets.token_hex(8)}",
                "redirect_uri": REDIRECT_URI,
                "scope": "mall.read_product",
            }
            code, state = sandbox.approve(f"{sandbox.url}/malls/{mall_id}/api/v2/oauth/authorize?{urlencode(query)}")
            await sql(
                database_url,
                "INSERT INTO cafe24.authorization_codes (code, state, mall_id) VALUES (%s, %s, %s)",
                code,
                state,
                mall_id,
            )
            continue
        started = await http.get(f"{urls[installer]}/install?{sandbox.launch_query(mall_id)}")
        assert started.status_code == 302, f"{installer} /install: {started.text}"
        code, state = sandbox.approve(started.headers["location"])
        saved = await http.get(f"{urls[callback]}/oauth/callback", params={"code": code, "state": state})
        assert saved.status_code == 200, f"{callback} /oauth/callback of a {installer} state: {saved.text}"
        assert saved.json()["message"] == "Saved"

    loop = asyncio.get_running_loop()
    until = loop.time() + 15
    while True:
        rows = await sql(
            database_url,
            "SELECT mall_id, status, last_error FROM cafe24.authorization_codes WHERE mall_id = ANY(%s)",
            malls,
        )
        if len(rows) == len(malls) and all(status == "exchanged" for _, status, _ in rows):
            break
        unfinished = [row for row in rows if row[1] in ("pending", "processing")]
        if loop.time() > until or (len(rows) == len(malls) and not unfinished):
            pytest.fail(f"codes not all exchanged: {rows}")
        await asyncio.sleep(0.05)

    tokens = await sql(
        database_url, "SELECT mall_id, status, version FROM cafe24.tokens WHERE mall_id = ANY(%s)", malls
    )
    assert sorted(tokens) == sorted((m, "active", 1) for m in malls)
    for mall_id in malls:
        stats = sandbox.stats(mall_id)
        counts = {k: stats[k] for k in ("codes_issued", "authorization_code_grants", "codes_rejected")}
        assert counts == {"codes_issued": 1, "authorization_code_grants": 1, "codes_rejected": 0}, mall_id
    by_python = sum(sent.exchanges[m] for m in malls)
    report(
        capsys,
        f"codes: {len(malls)} stored ({Counter(c for _, c in ROUTES)}), all exchanged once "
        f"(python worker {by_python}, rust worker {len(malls) - by_python}); "
        "sandbox: authorization_code_grants=1 codes_rejected=0 for every mall",
    )


@dataclass
class Load:
    """What both sides saw while refreshing the same malls."""

    python_seen: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    rust_seen: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    python_calls: int = 0
    rust_cli_calls: int = 0
    proxy: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


async def rotations_are_shared(
    http: httpx.AsyncClient,
    sandbox: Sandbox,
    database_url: str,
    malls: list[str],
    sent: Sent,
    *,
    rust: Rust,
    runtime: Cafe24Runtime,
    capsys: pytest.CaptureFixture[str],
) -> None:
    load = Load()
    initial = {m: await stored_access_token(runtime, m) for m in malls}
    assert all(sandbox.stats(m)["refresh_grants"] == 0 for m in malls)
    stop = asyncio.Event()
    admin_token = runtime.settings.admin_token
    assert admin_token is not None
    headers = {"Authorization": f"Bearer {admin_token.get_secret_value()}"}

    async def pause(secs: float) -> bool:
        """Sleeps; ``True`` once the run is over."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(secs, 0))
        return stop.is_set()

    async def python_call(mall_id: str) -> None:
        load.python_calls += 1
        try:
            token = await runtime.tokens.access_token(mall_id)
        except TokenError as error:
            load.errors.append(f"python {mall_id}: {error!r}")
        else:
            load.python_seen[mall_id].add(token.get_secret_value())

    async def proxy_call(mall_id: str) -> None:
        answer = await http.get(f"{rust.url}/internal/malls/{mall_id}/api/v2/admin/products/count", headers=headers)
        load.proxy[answer.status_code] += 1
        if answer.status_code != 200:
            load.errors.append(f"rust proxy {mall_id}: {answer.status_code} {answer.text[:200]}")

    async def python_poller(mall_id: str) -> None:
        while not await pause(random.uniform(0.02, 0.1)):
            await python_call(mall_id)

    async def proxy_poller(mall_id: str) -> None:
        while not await pause(random.uniform(0.3, 0.8)):
            await proxy_call(mall_id)

    async def rust_cli() -> None:
        for mall_id in itertools.cycle(malls):
            if await pause(0.05):
                return
            load.rust_cli_calls += 1
            try:
                load.rust_seen[mall_id].add(await rust.token(mall_id))
            except AssertionError as error:
                load.errors.append(str(error))

    async def herd(mall_id: str) -> None:
        """Both sides ask at the instant the token enters the margin: the moment they race."""
        while not stop.is_set():
            row = await runtime.store.read_tokens(mall_id)
            assert row is not None
            due = row.access_expires_at - timedelta(seconds=MARGIN_SECS)
            wait = (due - datetime.now(UTC)).total_seconds()
            if wait <= 0:  # this rotation is under way
                if await pause(0.05):
                    return
                continue
            if await pause(wait + random.uniform(0.001, 0.01)):
                return
            await asyncio.gather(*(python_call(mall_id) for _ in range(4)), *(proxy_call(mall_id) for _ in range(2)))

    loop = asyncio.get_running_loop()
    started = loop.time()
    workers = [
        *(python_poller(m) for m in malls for _ in range(2)),
        *(proxy_poller(m) for m in malls),
        *(herd(m) for m in malls),
        rust_cli(),
    ]
    tasks = [asyncio.create_task(w) for w in workers]
    await pause(RUN_SECS)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 25)
    elapsed = loop.time() - started

    final = {m: await stored_access_token(runtime, m) for m in malls}
    stats = {m: sandbox.stats(m) for m in malls}
    python_refreshes = sum(sent.refreshes[m] for m in malls)
    grants = sum(s["refresh_grants"] for s in stats.values())
    lines = [
        f"run: {elapsed:.1f} s, {len(malls)} malls, access tokens living {ACCESS_TTL_SECS} s, margin {MARGIN_SECS} s; "
        f"python access_token calls {load.python_calls}, rust proxy calls {sum(load.proxy.values())} "
        f"{dict(load.proxy)}, rust `token` CLI calls {load.rust_cli_calls}",
        f"refreshes: {grants} granted, {sum(s['refresh_tokens_rejected'] for s in stats.values())} refused; "
        f"python sent {python_refreshes}, so rust sent {grants - python_refreshes} (when none was refused)",
    ]
    for mall_id in malls:
        python, rust_side = load.python_seen[mall_id], load.rust_seen[mall_id]
        distinct = python | rust_side | {initial[mall_id], final[mall_id]}
        lines.append(
            f"  {mall_id}: refresh_grants={stats[mall_id]['refresh_grants']} "
            f"refresh_tokens_rejected={stats[mall_id]['refresh_tokens_rejected']} distinct tokens={len(distinct)} "
            f"(python saw {len(python)}, rust saw {len(rust_side)}, both {len(python & rust_side)})"
        )
    report(capsys, "\n".join(lines))

    assert {m: s["refresh_tokens_rejected"] for m, s in stats.items()} == dict.fromkeys(malls, 0)
    assert load.errors == []
    assert python_refreshes > 0 and grants - python_refreshes > 0, "both sides must have refreshed"
    for mall_id in malls:
        distinct = load.python_seen[mall_id] | load.rust_seen[mall_id] | {initial[mall_id], final[mall_id]}
        grants_of_mall = stats[mall_id]["refresh_grants"]
        # One refresh per rotation: every rotated token was handed to someone, none wasted.
        assert grants_of_mall == len(distinct) - 1, mall_id
        # A rotation at most once a token entered the margin, plus the first (expired) one.
        assert 3 <= grants_of_mall <= elapsed / (ACCESS_TTL_SECS - MARGIN_SECS) + 1, mall_id
        assert load.rust_seen[mall_id] <= distinct and load.rust_seen[mall_id], mall_id

    await every_grant_still_refreshes(sandbox, database_url, malls, rust=rust, runtime=runtime, capsys=capsys)


async def every_grant_still_refreshes(
    sandbox: Sandbox,
    database_url: str,
    malls: list[str],
    *,
    rust: Rust,
    runtime: Cafe24Runtime,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """After the run, each side refreshes every mall once more, from the pair the other stored."""
    set_access_ttl(sandbox, 7200)  # no rotation falls due while this runs
    for mall_id in malls:
        before = sandbox.stats(mall_id)["refresh_grants"]
        (version,) = (await sql(database_url, "SELECT version FROM cafe24.tokens WHERE mall_id = %s", mall_id))[0]
        assert await runtime.tokens.keep_alive(mall_id, window=timedelta(days=30)), mall_id
        by_python = await stored_access_token(runtime, mall_id)
        await sql(database_url, "UPDATE cafe24.tokens SET access_expires_at = now() WHERE mall_id = %s", mall_id)
        by_rust = await rust.token(mall_id)
        assert by_rust != by_python and by_rust == await stored_access_token(runtime, mall_id), mall_id
        stats = sandbox.stats(mall_id)
        assert (stats["refresh_grants"] - before, stats["refresh_tokens_rejected"]) == (2, 0), mall_id
        rows = await sql(database_url, "SELECT status, version FROM cafe24.tokens WHERE mall_id = %s", mall_id)
        assert rows == [("active", version + 2)], mall_id
    report(capsys, "final: every mall refreshed once by python, then once by rust: 2 grants each, 0 refused\n")
