"""The ``cafe24`` schema's statements for codes, tokens, mall events, the per-mall lock and the
Admin API budget, exactly as docs/contract.md §6 and §9 write them, so any mix of
implementations agrees."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from psycopg.rows import class_row
from psycopg_pool import PoolTimeout
from pydantic import SecretStr

from auth.database import Connection, Database

logger = logging.getLogger(__name__)

MallStatus = Literal["active", "needs_reauth", "revoked"]
CodeOutcome = Literal["exchanged", "expired", "failed"]

ROW_COLUMNS = (
    "mall_id, shop_no, user_id, client_id, scopes, key_id, access_token, access_expires_at, "
    "refresh_token, refresh_expires_at, issued_at, status, version, refresh_started_at, "
    "last_refreshed_at, last_error, installed_at"
)
LOCK = "SELECT pg_advisory_lock(hashtextextended('cafe24.mall:' || %s, 0))"
UNLOCK = "SELECT pg_advisory_unlock(hashtextextended('cafe24.mall:' || %s, 0))"


class LockTimeout(Exception):
    """The mall's refresh lock was not free within ``CAFE24_REFRESH_LOCK_WAIT_SECS``."""


@dataclass(frozen=True)
class TokenRow:
    mall_id: str
    shop_no: str | None
    user_id: str | None
    client_id: str
    scopes: str
    key_id: str
    access_token: bytes = field(repr=False)
    access_expires_at: datetime
    refresh_token: bytes = field(repr=False)
    refresh_expires_at: datetime
    issued_at: datetime | None
    status: MallStatus
    version: int
    refresh_started_at: datetime | None
    last_refreshed_at: datetime | None
    last_error: str | None
    installed_at: datetime


@dataclass(frozen=True)
class NewTokens:
    """A sealed pair to write."""

    mall_id: str
    shop_no: str | None
    user_id: str | None
    client_id: str
    scopes: tuple[str, ...]
    key_id: str
    access_ciphertext: bytes = field(repr=False)
    access_expires_at: datetime
    refresh_ciphertext: bytes = field(repr=False)
    refresh_expires_at: datetime
    issued_at: datetime | None
    note: str | None


@dataclass(frozen=True)
class ClaimedCode:
    id: int
    code: SecretStr
    mall_id: str
    age_secs: float
    attempts: int


@dataclass(frozen=True)
class CodeInsert:
    outcome: Literal["stored", "state_already_used", "too_many_pending"]
    id: int | None = None


_INSERT_CODE = """
WITH waiting AS (
    SELECT count(*) AS n FROM cafe24.authorization_codes
    WHERE mall_id = %(mall)s AND status IN ('pending', 'processing')
      AND created_at > now() - interval '120 seconds'
)
INSERT INTO cafe24.authorization_codes (code, state, mall_id)
SELECT %(code)s, %(state)s, %(mall)s FROM waiting WHERE n < %(cap)s
ON CONFLICT (state) DO NOTHING RETURNING id
"""
_EXPIRE_CODES = """
UPDATE cafe24.authorization_codes
SET status = 'expired', code = '', processed_at = now(),
    last_error = 'not exchanged within the code lifetime'
WHERE status IN ('pending', 'processing') AND created_at < now() - make_interval(secs => %s)
"""
_CLAIM_CODES = """
UPDATE cafe24.authorization_codes AS c
SET status = 'processing', attempts = c.attempts + 1, claimed_at = now()
FROM (SELECT id FROM cafe24.authorization_codes
      WHERE mall_id IS NOT NULL
        AND created_at >= now() - make_interval(secs => %(lifetime)s)
        AND (status = 'pending'
             OR (status = 'processing' AND claimed_at < now() - make_interval(secs => %(lease)s)))
      ORDER BY created_at DESC, id DESC LIMIT %(batch)s
      FOR UPDATE SKIP LOCKED) AS picked
WHERE c.id = picked.id
RETURNING c.id, c.code, c.mall_id, EXTRACT(EPOCH FROM (now() - c.created_at))::float8, c.attempts
"""
_FINISH_CODE = """
UPDATE cafe24.authorization_codes
SET status = %s, code = '', last_error = %s, processed_at = now()
WHERE id = %s AND attempts = %s AND status = 'processing'
"""
_RETRY_CODE = """
UPDATE cafe24.authorization_codes SET status = 'pending', claimed_at = NULL, last_error = %s
WHERE id = %s AND attempts = %s AND status = 'processing'
"""
_INSTALL = """
INSERT INTO cafe24.tokens (mall_id, shop_no, user_id, client_id, scopes, key_id, access_token,
    access_expires_at, refresh_token, refresh_expires_at, issued_at, status, version, updated_at,
    installed_at, last_error)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'active', 1, now(), now(), %s)
ON CONFLICT (mall_id) DO UPDATE SET
    shop_no = EXCLUDED.shop_no, user_id = EXCLUDED.user_id, client_id = EXCLUDED.client_id,
    scopes = EXCLUDED.scopes, key_id = EXCLUDED.key_id, access_token = EXCLUDED.access_token,
    access_expires_at = EXCLUDED.access_expires_at, refresh_token = EXCLUDED.refresh_token,
    refresh_expires_at = EXCLUDED.refresh_expires_at, issued_at = EXCLUDED.issued_at,
    status = 'active', version = cafe24.tokens.version + 1, refresh_started_at = NULL,
    last_error = EXCLUDED.last_error, updated_at = now(), installed_at = now()
RETURNING version
"""
_REPLACE_TOKENS = """
UPDATE cafe24.tokens SET
    shop_no = COALESCE(%(shop_no)s, shop_no), user_id = COALESCE(%(user_id)s, user_id),
    scopes = %(scopes)s, key_id = %(key_id)s,
    access_token = %(access)s, access_expires_at = %(access_exp)s,
    refresh_token = %(refresh)s, refresh_expires_at = %(refresh_exp)s,
    issued_at = %(issued_at)s, version = version + 1, refresh_started_at = NULL,
    last_refreshed_at = %(at)s, last_error = %(note)s, status = 'active', updated_at = now()
WHERE mall_id = %(mall)s AND version = %(version)s AND status <> 'revoked'
"""
_SET_STATUS = """
UPDATE cafe24.tokens SET status = %(status)s, last_error = %(error)s, refresh_started_at = NULL,
    updated_at = now(),
    access_token = CASE WHEN %(status)s = 'revoked' THEN ''::bytea ELSE access_token END,
    refresh_token = CASE WHEN %(status)s = 'revoked' THEN ''::bytea ELSE refresh_token END
WHERE mall_id = %(mall)s AND version = %(version)s
"""
_NOTE_ERROR = """
UPDATE cafe24.tokens SET last_error = %s,
    refresh_started_at = CASE WHEN %s THEN NULL ELSE refresh_started_at END
WHERE mall_id = %s
"""

_TAKE_API_CALL = "SELECT wait_secs, level FROM cafe24.take_api_call(%s, %s, %s, %s)"
_OBSERVE_API_LIMIT = "SELECT cafe24.observe_api_limit(%s, %s, %s, %s)"


def _replace_params(new: NewTokens, version: int, at: datetime) -> dict[str, object]:
    return {
        "mall": new.mall_id,
        "version": version,
        "shop_no": new.shop_no,
        "user_id": new.user_id,
        "scopes": ",".join(new.scopes),
        "key_id": new.key_id,
        "access": new.access_ciphertext,
        "access_exp": new.access_expires_at,
        "refresh": new.refresh_ciphertext,
        "refresh_exp": new.refresh_expires_at,
        "issued_at": new.issued_at,
        "at": at,
        "note": new.note,
    }


async def read_tokens(conn: Connection, mall_id: str) -> TokenRow | None:
    cur = conn.cursor(row_factory=class_row(TokenRow))
    await cur.execute(f"SELECT {ROW_COLUMNS} FROM cafe24.tokens WHERE mall_id = %s", (mall_id,))  # noqa: S608
    return await cur.fetchone()


class MallLock:
    """A session holding the mall's advisory lock; every statement here runs on it."""

    def __init__(self, conn: Connection, mall_id: str) -> None:
        self._conn = conn
        self.mall_id = mall_id

    async def current(self) -> TokenRow | None:
        return await read_tokens(self._conn, self.mall_id)

    async def journal(self, at: datetime) -> None:
        """``refresh_started_at``: a refresh token of this row may be at Cafe24 from now on."""
        await self._conn.execute(
            "UPDATE cafe24.tokens SET refresh_started_at = %s WHERE mall_id = %s", (at, self.mall_id)
        )

    async def replace_tokens(self, *, version: int, new: NewTokens, at: datetime) -> bool:
        cur = await self._conn.execute(_REPLACE_TOKENS, _replace_params(new, version, at))
        return cur.rowcount == 1

    async def set_status(self, *, status: MallStatus, error: str, version: int) -> bool:
        params = {"status": status, "error": error, "mall": self.mall_id, "version": version}
        cur = await self._conn.execute(_SET_STATUS, params)
        return cur.rowcount == 1

    async def note_error(self, *, error: str, attempt_over: bool) -> None:
        await self._conn.execute(_NOTE_ERROR, (error, attempt_over, self.mall_id))


class Store:
    """Statements on the shared pool. Request-path methods may use reserved connections."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def __repr__(self) -> str:
        return "Store()"

    async def ping(self) -> None:
        async with self.db.connection() as conn:
            await conn.execute("SELECT 1")

    async def insert_code(self, *, code: SecretStr, state: str, mall_id: str, max_pending: int) -> CodeInsert:
        params = {"code": code.get_secret_value(), "state": state, "mall": mall_id, "cap": max_pending}
        async with self.db.connection() as conn:
            row = await (await conn.execute(_INSERT_CODE, params)).fetchone()
            if row is not None:
                return CodeInsert("stored", int(row[0]))
            exists = "SELECT EXISTS (SELECT 1 FROM cafe24.authorization_codes WHERE state = %s)"
            replay = await (await conn.execute(exists, (state,))).fetchone()
        return CodeInsert("state_already_used" if replay and replay[0] else "too_many_pending")

    async def expire_codes(self, *, lifetime_secs: float) -> int:
        async with self.db.connection(background=True) as conn:
            return (await conn.execute(_EXPIRE_CODES, (lifetime_secs,))).rowcount

    async def claim_codes(self, *, lifetime_secs: float, lease_secs: float, batch: int) -> list[ClaimedCode]:
        params = {"lifetime": lifetime_secs, "lease": lease_secs, "batch": batch}
        async with self.db.connection(background=True) as conn:
            rows = await (await conn.execute(_CLAIM_CODES, params)).fetchall()
        return [ClaimedCode(id=r[0], code=SecretStr(r[1]), mall_id=r[2], age_secs=r[3], attempts=r[4]) for r in rows]

    async def finish_code(self, code: ClaimedCode, *, outcome: CodeOutcome, error: str) -> bool:
        async with self.db.connection(background=True) as conn:
            cur = await conn.execute(_FINISH_CODE, (outcome, error, code.id, code.attempts))
            return cur.rowcount == 1

    async def retry_code(self, code: ClaimedCode, *, error: str) -> bool:
        async with self.db.connection(background=True) as conn:
            cur = await conn.execute(_RETRY_CODE, (error, code.id, code.attempts))
            return cur.rowcount == 1

    async def complete_exchange(self, code: ClaimedCode, new: NewTokens) -> int:
        """Stores a new grant (replacing whatever the mall had) and closes the claim, at once."""
        params = (
            new.mall_id,
            new.shop_no,
            new.user_id,
            new.client_id,
            ",".join(new.scopes),
            new.key_id,
            new.access_ciphertext,
            new.access_expires_at,
            new.refresh_ciphertext,
            new.refresh_expires_at,
            new.issued_at,
            new.note,
        )
        async with self.db.connection(background=True) as conn, conn.transaction():
            row = await (await conn.execute(_INSTALL, params)).fetchone()
            await conn.execute(
                "UPDATE cafe24.authorization_codes SET status = 'exchanged', code = '', "
                "last_error = NULL, processed_at = now() WHERE id = %s AND attempts = %s",
                (code.id, code.attempts),
            )
            await conn.execute(
                "INSERT INTO cafe24.mall_events (mall_id, kind) VALUES (%s, 'installed')",
                (new.mall_id,),
            )
        return int(row[0]) if row else 0

    async def read_tokens(self, mall_id: str) -> TokenRow | None:
        async with self.db.connection(background=True) as conn:
            return await read_tokens(conn, mall_id)

    async def replace_tokens(self, *, version: int, new: NewTokens, at: datetime) -> bool:
        """The compare-and-swap of §9.5 on a fresh connection (the lock session failed)."""
        async with self.db.connection(background=True) as conn:
            cur = await conn.execute(_REPLACE_TOKENS, _replace_params(new, version, at))
            return cur.rowcount == 1

    async def record_event(self, *, mall_id: str, kind: str, detail: str = "") -> None:
        async with self.db.connection(background=True) as conn:
            await conn.execute(
                "INSERT INTO cafe24.mall_events (mall_id, kind, detail) VALUES (%s, %s, %s)",
                (mall_id, kind, detail),
            )

    async def malls_due(self, *, before: datetime, limit: int) -> list[str]:
        async with self.db.connection(background=True) as conn:
            cur = await conn.execute(
                "SELECT mall_id FROM cafe24.tokens WHERE status = 'active' AND refresh_expires_at < %s "
                "ORDER BY refresh_expires_at LIMIT %s",
                (before, limit),
            )
            return [row[0] for row in await cur.fetchall()]

    async def take_api_call(
        self, mall_id: str, *, size: float, drain_per_sec: float, max_wait_secs: float
    ) -> tuple[float, float]:
        """Charges one call to the mall's fleet-wide budget (§6.8): ``(wait_secs, level)``, the
        wait before sending and the calls in the bucket when it goes; ``wait_secs`` is -1 (and
        nothing is charged) when the call could not go within ``max_wait_secs``."""
        params = (mall_id, float(size), float(drain_per_sec), float(max_wait_secs))
        async with self.db.connection() as conn:
            row = await (await conn.execute(_TAKE_API_CALL, params)).fetchone()
        if row is None:
            raise RuntimeError("cafe24.take_api_call returned no row")
        return float(row[0]), float(row[1])

    async def observe_api_limit(
        self, mall_id: str, *, used: float | None, drain_per_sec: float, pause_secs: float | None
    ) -> None:
        """Raises the mall's budget to what Cafe24 said: at least ``used`` calls in the bucket,
        no call for ``pause_secs`` (§6.8); never lowers either."""
        async with self.db.connection() as conn:
            await conn.execute(_OBSERVE_API_LIMIT, (mall_id, used, float(drain_per_sec), pause_secs))

    @asynccontextmanager
    async def lock_mall(self, mall_id: str, *, wait_secs: float) -> AsyncIterator[MallLock]:
        """Holds ``pg_advisory_lock(hashtextextended('cafe24.mall:' || mall_id, 0))`` on a
        session of the lock pool for the whole block. A wait that times out closes its session
        (abandoning the wait), and so does a failed unlock: a pooled session never keeps a lock."""
        pool = self.db.lock_pool
        try:
            conn = await pool.getconn(timeout=wait_secs)
        except PoolTimeout:
            raise LockTimeout(f"the refresh lock of mall {mall_id} was not free in time") from None
        try:
            async with asyncio.timeout(wait_secs):
                await conn.execute(LOCK, (mall_id,))
        except BaseException as error:
            await conn.close()
            await pool.putconn(conn)
            if isinstance(error, TimeoutError):
                raise LockTimeout(f"the refresh lock of mall {mall_id} was not free in time") from None
            raise
        try:
            yield MallLock(conn, mall_id)
        finally:
            released = False
            try:
                row = await (await conn.execute(UNLOCK, (mall_id,))).fetchone()
                released = bool(row and row[0])
            except Exception as error:  # noqa: BLE001 - closing the session frees the lock anyway
                logger.warning("releasing the lock of mall %s failed (%s)", mall_id, type(error).__name__)
            if not released:
                await conn.close()
            await pool.putconn(conn)
