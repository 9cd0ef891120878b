"""Applies the ``cafe24`` schema: the runtime's migration files, byte for byte, recorded in
``cafe24.schema_migrations`` with the same names and checksums, under the same advisory lock,
so this module and a Rust process can migrate one database in either order (contract §6.1)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from auth.database import Connection

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
MIGRATION_LOCK = 0x0000_CAFE_2400
_KNOWN = (
    (1, "initial", "0001_initial.sql"),
    (2, "lifecycle", "0002_lifecycle.sql"),
    (3, "webhooks", "0003_webhooks.sql"),
    (4, "reliability", "0004_reliability.sql"),
    (5, "fleet", "0005_fleet.sql"),
)
_BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS cafe24;
CREATE TABLE IF NOT EXISTS cafe24.schema_migrations (
    version bigint PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now())
"""


class MigrationError(Exception):
    """The database holds a schema this module cannot work with."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: bytes

    @property
    def checksum(self) -> str:
        """Lowercase hex SHA-256 of the file's bytes, as the runtime records it."""
        return hashlib.sha256(self.sql).hexdigest()


def migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    return [Migration(v, name, (directory / file).read_bytes()) for v, name, file in _KNOWN]


async def migrate(conn: Connection) -> list[int]:
    """Applies what is missing, each migration in one transaction; returns the versions applied.
    ``conn`` must be in autocommit mode and is used alone for the whole run."""
    known = migrations()
    await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    try:
        await conn.execute(_BOOTSTRAP)
        cur = await conn.execute("SELECT version, checksum FROM cafe24.schema_migrations")
        applied: dict[int, str] = {int(v): str(c) for v, c in await cur.fetchall()}
        newest = max(m.version for m in known)
        if applied and max(applied) > newest:
            raise MigrationError(
                f"the database holds a newer schema (version {max(applied)}); "
                "upgrade this module to the same contract version"
            )
        for m in known:
            if m.version in applied and applied[m.version] != m.checksum:
                raise MigrationError(f"migration {m.version} ({m.name}) was applied with different contents")
        done: list[int] = []
        for m in known:
            if m.version in applied:
                continue
            async with conn.transaction():
                # No parameters: the simple query protocol runs the file as one script.
                await conn.execute(m.sql.decode("utf-8"))
                await conn.execute(
                    "INSERT INTO cafe24.schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (m.version, m.name, m.checksum),
                )
            logger.info("applied migration %d (%s)", m.version, m.name)
            done.append(m.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
