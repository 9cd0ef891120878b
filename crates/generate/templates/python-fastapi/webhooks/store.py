"""``cafe24.webhook_events``: intake (stored once per dedupe key) and the dispatch queue
(claimed like the codes, contract §6.6-6.7)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import class_row

from auth.database import Database

_INSERT = """
INSERT INTO cafe24.webhook_events (dedupe_key, mall_id, event_no, trace_id, body, occurred_at)
VALUES (%s, %s, %s, %s, %s, COALESCE(%s, now())) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id
"""
_CLAIM = """
UPDATE cafe24.webhook_events AS w SET claimed_at = now(), attempts = w.attempts + 1
FROM (SELECT id FROM cafe24.webhook_events
      WHERE status IN ('received', 'retry') AND next_attempt_at <= now()
        AND (claimed_at IS NULL OR claimed_at < now() - make_interval(secs => %s))
      ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) AS picked
WHERE w.id = picked.id
RETURNING w.id, w.dedupe_key, w.mall_id, w.event_no, w.trace_id, w.body, w.attempts,
    COALESCE(w.occurred_at, w.received_at) AS occurred_at
"""


@dataclass(frozen=True)
class WebhookEvent:
    """A stored delivery, as the app's handlers get it."""

    id: int
    dedupe_key: str
    mall_id: str
    event_no: int
    trace_id: str | None
    body: str
    attempts: int
    occurred_at: datetime

    def payload(self) -> Any:
        """The delivery's JSON: ``{"event_no":…,"resource":{"mall_id":…,…}}``."""
        return json.loads(self.body)


@dataclass(frozen=True)
class Stored:
    id: int
    duplicate: bool


class WebhookStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def __repr__(self) -> str:
        return "WebhookStore()"

    async def insert(self, *, dedupe_key: str, mall_id: str, event_no: int, trace_id: str | None, body: str) -> Stored:
        async with self.db.connection() as conn:
            row = await (await conn.execute(_INSERT, (dedupe_key, mall_id, event_no, trace_id, body, None))).fetchone()
            if row is not None:
                return Stored(int(row[0]), duplicate=False)
            cur = await conn.execute("SELECT id FROM cafe24.webhook_events WHERE dedupe_key = %s", (dedupe_key,))
            existing = await cur.fetchone()
        if existing is None:
            raise LookupError("a duplicate delivery vanished")
        return Stored(int(existing[0]), duplicate=True)

    async def claim(self, *, lease_secs: float, batch: int) -> list[WebhookEvent]:
        async with self.db.connection(background=True) as conn:
            cur = conn.cursor(row_factory=class_row(WebhookEvent))
            await cur.execute(_CLAIM, (lease_secs, batch))
            return await cur.fetchall()

    async def dispatched(self, event_id: int) -> None:
        await self._update(
            "UPDATE cafe24.webhook_events SET status = 'dispatched', dispatched_at = now(), "
            "claimed_at = NULL, last_error = NULL WHERE id = %s",
            (event_id,),
        )

    async def retry(self, event_id: int, *, error: str, at: datetime) -> None:
        await self._update(
            "UPDATE cafe24.webhook_events SET status = 'retry', next_attempt_at = %s, claimed_at = NULL, "
            "last_error = %s WHERE id = %s",
            (at, error, event_id),
        )

    async def dead_letter(self, event_id: int, *, error: str) -> None:
        await self._update(
            "UPDATE cafe24.webhook_events SET status = 'dead_letter', claimed_at = NULL, last_error = %s WHERE id = %s",
            (error, event_id),
        )

    async def _update(self, query: str, params: tuple[object, ...]) -> None:
        async with self.db.connection(background=True) as conn:
            await conn.execute(query, params)
