"""Migrations: the runtime's files byte for byte, recorded with its checksums, in either order."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import AsyncIterator

import psycopg
import pytest

from auth.migrate import MigrationError, migrate, migrations
from tests.conftest import with_database

CHECKSUMS = {
    1: ("initial", "18cb46d3f7efbed3ca05ad6f638325331e4797f33399ee7bedecda577a8c476e"),
    2: ("lifecycle", "34e1344f1f079b81ab199b95df1cab2e85b62d07cc4a57c910a4c68561bdcc2c"),
    3: ("webhooks", "c8b374513672ac21548d3399fb19b3222710ecaae8a31361f6cd98b15af7307d"),
    4: ("reliability", "ab06bfd0e8739d5ec8f57f221f98b52f04331084570b7a3c7d2f8201bcc9bfcb"),
    5: ("fleet", "da9f590c9a8a90b2589e1ee6b23f72520e71b6452a723ed618def516dbc3f314"),
}


@pytest.fixture
async def empty_database() -> AsyncIterator[str]:
    admin = os.environ["CAFE24_TEST_DATABASE_URL"]
    name = f"cafe24_mig_{secrets.token_hex(4)}"
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        await conn.execute(f"CREATE DATABASE {name}")
    yield with_database(admin, name)
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        await conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


async def recorded(url: str) -> dict[int, tuple[str, str]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        rows = await (await conn.execute("SELECT version, name, checksum FROM cafe24.schema_migrations")).fetchall()
    return {v: (n, c) for v, n, c in rows}


def rust_migrate(url: str) -> subprocess.CompletedProcess[str]:
    binary = os.environ.get("CAFE24_SANDBOX_BIN", "cafe24-oauth")
    env = {"PATH": os.environ.get("PATH", ""), "DATABASE_URL": url}
    return subprocess.run([binary, "migrate"], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_the_files_are_the_runtimes_byte_for_byte() -> None:
    assert {m.version: (m.name, m.checksum) for m in migrations()} == CHECKSUMS


async def test_migrating_twice_applies_once_and_records_the_runtimes_checksums(empty_database: str) -> None:
    async with await psycopg.AsyncConnection.connect(empty_database, autocommit=True) as conn:
        assert await migrate(conn) == [1, 2, 3, 4, 5]
        assert await migrate(conn) == []
    assert await recorded(empty_database) == CHECKSUMS


async def test_the_rust_runtime_accepts_this_modules_schema(empty_database: str) -> None:
    async with await psycopg.AsyncConnection.connect(empty_database, autocommit=True) as conn:
        await migrate(conn)
    result = rust_migrate(empty_database)
    assert result.returncode == 0, result.stderr[-500:]
    assert await recorded(empty_database) == CHECKSUMS


async def test_this_module_accepts_the_rust_runtimes_schema(empty_database: str) -> None:
    result = rust_migrate(empty_database)
    assert result.returncode == 0, result.stderr[-500:]
    async with await psycopg.AsyncConnection.connect(empty_database, autocommit=True) as conn:
        assert await migrate(conn) == []


async def test_a_newer_or_edited_schema_is_refused(empty_database: str) -> None:
    async with await psycopg.AsyncConnection.connect(empty_database, autocommit=True) as conn:
        await migrate(conn)
        await conn.execute("UPDATE cafe24.schema_migrations SET checksum = 'x' WHERE version = 2")
        with pytest.raises(MigrationError, match="different contents"):
            await migrate(conn)
        await conn.execute("INSERT INTO cafe24.schema_migrations (version, name, checksum) VALUES (99, 'n', 'c')")
        with pytest.raises(MigrationError, match="newer schema"):
            await migrate(conn)
