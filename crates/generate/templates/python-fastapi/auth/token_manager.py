"""A valid access token for a mall, whatever the number of processes and tasks asking, and
whatever happens to whoever asked (docs/contract.md §9-10).

One task per mall refreshes in a process (the others queue on an in-memory lock and then use
its result); across processes and implementations the refresh holds the mall's PostgreSQL
advisory lock across the call to Cafe24, re-reads the row under it, journals the attempt
(``refresh_started_at``) before sending, waits instead of sending while a young journal says a
refresh may be in flight elsewhere, and writes with compare-and-swap on ``version``. A refused
refresh token flags the mall ``needs_reauth``, fenced by the version so a reinstall is never
flagged. The decided work runs detached (:mod:`auth.tasks`): a cancelled caller never loses a
rotation."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

import psycopg
from psycopg_pool import PoolTimeout
from pydantic import SecretStr

from auth.crypto import DecryptError, Sealer
from auth.database import DatabaseUnavailable, persist
from auth.store import LockTimeout, MallLock, NewTokens, Store, TokenRow
from auth.tasks import TrackedWork
from auth.token_endpoint import OAuthError, TokenEndpoint, TokenSet
from config.settings import Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")
Clock = Callable[[], datetime]

JOURNAL_SLACK_SECS = 2.0
FORCED_REFRESH_FLOOR = timedelta(seconds=30)
_JOURNAL_POLL_SECS = 0.25
_UNAVAILABLE = (psycopg.Error, DatabaseUnavailable, PoolTimeout, LockTimeout, OAuthError, DecryptError)


def utc_now() -> datetime:
    return datetime.now(UTC)


class TokenError(Exception):
    """No token can be handed out for ``mall_id``."""

    def __init__(self, mall_id: str, message: str) -> None:
        super().__init__(message)
        self.mall_id = mall_id


class NotInstalled(TokenError):
    def __init__(self, mall_id: str) -> None:
        super().__init__(mall_id, f"mall {mall_id} has not installed the app")


class NeedsReauth(TokenError):
    def __init__(self, mall_id: str) -> None:
        super().__init__(mall_id, f"mall {mall_id} must install the app again: its grant is dead")


class Revoked(TokenError):
    def __init__(self, mall_id: str) -> None:
        super().__init__(mall_id, f"mall {mall_id} was revoked")


class TokenUnavailable(TokenError):
    """A token could not be obtained now (lock timeout, database, Cafe24 unreachable); retry."""


@dataclass(frozen=True)
class Expiring:
    """The access token of this version expires within the margin."""

    seen_version: int


@dataclass(frozen=True)
class Forced:
    """Cafe24 refused the access token of this version (a 401)."""

    seen_version: int


@dataclass(frozen=True)
class KeepAlive:
    """The refresh token expires within ``window``."""

    window: timedelta


Need = Expiring | Forced | KeepAlive


def sealed_pair(sealer: Sealer, *, mall_id: str, tokens: TokenSet, client_id: str) -> NewTokens:
    """A token response, encrypted into a row to store."""
    note = None
    if tokens.incomplete is not None:
        note = f"Cafe24's token response did not fully parse ({tokens.incomplete}); expiries are conservative guesses"
    return NewTokens(
        mall_id=mall_id,
        shop_no=tokens.shop_no,
        user_id=tokens.user_id,
        client_id=tokens.client_id or client_id,
        scopes=tokens.scopes,
        key_id=sealer.current_key_id,
        access_ciphertext=sealer.seal(mall_id=mall_id, kind="access", plaintext=tokens.access_token.get_secret_value()),
        access_expires_at=tokens.access_expires_at,
        refresh_ciphertext=sealer.seal(
            mall_id=mall_id, kind="refresh", plaintext=tokens.refresh_token.get_secret_value()
        ),
        refresh_expires_at=tokens.refresh_expires_at,
        issued_at=tokens.issued_at,
        note=note,
    )


def active(row: TokenRow | None, mall_id: str) -> TokenRow:
    if row is None:
        raise NotInstalled(mall_id)
    if row.status == "needs_reauth":
        raise NeedsReauth(mall_id)
    if row.status == "revoked":
        raise Revoked(mall_id)
    return row


class TokenManager:
    """The token lifecycle of every mall. One per process, created in the app's lifespan."""

    def __init__(
        self,
        *,
        store: Store,
        endpoint: TokenEndpoint,
        sealer: Sealer,
        settings: Settings,
        work: TrackedWork,
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._endpoint = endpoint
        self._sealer = sealer
        self._settings = settings
        self._work = work
        self._clock = clock
        self._flights: dict[str, asyncio.Lock] = {}

    def __repr__(self) -> str:
        return f"TokenManager(in_flight={len(self._work)})"

    @property
    def sealer(self) -> Sealer:
        return self._sealer

    def now(self) -> datetime:
        return self._clock()

    async def access_token(self, mall_id: str) -> SecretStr:
        """A valid access token, refreshed first if it expires within the margin."""
        row = await self._read_active(mall_id)
        need = Expiring(row.version)
        if not self._needs(need, row):
            return self._open_access(row)
        token, _ = await self._refresh(mall_id, need)
        return token

    async def force_refresh(self, mall_id: str) -> SecretStr:
        """Refreshes now, unless someone refreshed since the stored token was read."""
        row = await self._read_active(mall_id)
        token, _ = await self._refresh(mall_id, Forced(row.version))
        return token

    async def refresh_rejected(self, mall_id: str, rejected: SecretStr) -> SecretStr:
        """Cafe24 answered 401 to ``rejected``: refresh, unless the stored token is already
        another one (another task or process refreshed meanwhile)."""
        row = await self._read_active(mall_id)
        current = self._open_access(row)
        if current.get_secret_value() != rejected.get_secret_value():
            return current
        token, _ = await self._refresh(mall_id, Forced(row.version))
        return token

    async def keep_alive(self, mall_id: str, *, window: timedelta) -> bool:
        """Refreshes if the refresh token expires within ``window``; ``True`` if it did."""
        _, refreshed = await self._refresh(mall_id, KeepAlive(window))
        return refreshed

    async def revoke(self, mall_id: str) -> None:
        """Revokes both tokens at Cafe24, then marks the mall revoked and wipes them. A token
        Cafe24 no longer knows counts as revoked; any other refusal changes nothing."""
        await self._detached(mall_id, self._revoke(mall_id))

    async def uninstalled(self, mall_id: str, *, reason: str, occurred_at: datetime) -> bool:
        """Cafe24 dropped the grant (webhook 90077/90078): mark the mall revoked, unless the
        event is older than the grant now stored. ``True`` if the mall was revoked now."""
        return await self._detached(mall_id, self._uninstalled(mall_id, reason, occurred_at))

    async def _detached(self, mall_id: str, work: Coroutine[Any, Any, T]) -> T:
        try:
            return await self._work.run(work)
        except _UNAVAILABLE as error:
            raise TokenUnavailable(mall_id, f"mall {mall_id} could not be updated now: {error}") from error

    async def _refresh(self, mall_id: str, need: Need) -> tuple[SecretStr, bool]:
        try:
            return await self._work.run(self._refresh_flight(mall_id, need))
        except _UNAVAILABLE as error:
            raise TokenUnavailable(mall_id, f"no token for mall {mall_id} now: {error}") from error

    async def _read_active(self, mall_id: str) -> TokenRow:
        try:
            return active(await self._store.read_tokens(mall_id), mall_id)
        except _UNAVAILABLE as error:
            raise TokenUnavailable(mall_id, f"no token for mall {mall_id} now: {error}") from error

    def _flight(self, mall_id: str) -> asyncio.Lock:
        return self._flights.setdefault(mall_id, asyncio.Lock())

    def _needs(self, need: Need, row: TokenRow) -> bool:
        now = self._clock()
        match need:
            case Expiring(seen) if row.version != seen:
                return row.access_expires_at <= now
            case Expiring():
                margin = timedelta(seconds=self._settings.refresh_margin_secs)
                return row.access_expires_at - margin <= now
            case Forced(seen):
                last = row.last_refreshed_at
                return row.version == seen and (last is None or now - last >= FORCED_REFRESH_FLOOR)
            case KeepAlive(window):
                return row.refresh_expires_at - window <= now

    def _in_flight_elsewhere(self, row: TokenRow) -> float | None:
        """Seconds a journaled refresh may still be in flight elsewhere; ``None`` once it cannot."""
        if row.refresh_started_at is None:
            return None
        fence = timedelta(seconds=self._settings.http_timeout_secs + JOURNAL_SLACK_SECS)
        left = (row.refresh_started_at + fence - self._clock()).total_seconds()
        return left if left > 0 else None

    def _open_access(self, row: TokenRow) -> SecretStr:
        plain = self._sealer.open(mall_id=row.mall_id, kind="access", key_id=row.key_id, sealed=row.access_token)
        return SecretStr(plain)

    async def _refresh_flight(self, mall_id: str, need: Need) -> tuple[SecretStr, bool]:
        async with self._flight(mall_id):
            # Tasks that queued behind a refresh usually find the work done.
            row = active(await self._store.read_tokens(mall_id), mall_id)
            if not self._needs(need, row):
                return self._open_access(row), False
            wait = float(self._settings.refresh_lock_wait_secs)
            async with self._store.lock_mall(mall_id, wait_secs=wait) as lock:
                return await self._refresh_locked(lock, need)

    async def _refresh_locked(self, lock: MallLock, need: Need) -> tuple[SecretStr, bool]:
        mall_id = lock.mall_id
        row = active(await lock.current(), mall_id)
        while True:
            if not self._needs(need, row):
                return self._open_access(row), False
            wait = self._in_flight_elsewhere(row)
            if wait is None:
                break
            logger.info("a refresh of mall %s may be in flight elsewhere; waiting %.2f s", mall_id, wait)
            await asyncio.sleep(min(wait, _JOURNAL_POLL_SECS))
            row = active(await lock.current(), mall_id)
        refresh = self._sealer.open(mall_id=mall_id, kind="refresh", key_id=row.key_id, sealed=row.refresh_token)
        await lock.journal(self._clock())
        try:
            tokens = await self._endpoint.refresh(mall_id=mall_id, refresh_token=SecretStr(refresh))
        except OAuthError as error:
            if error.dead_grant:
                return await self._declare_dead(lock, row, error)
            await lock.note_error(error=str(error), attempt_over=error.grant_untouched)
            logger.warning("refresh of mall %s failed, will retry: %s", mall_id, error)
            raise
        return await self._store_refreshed(lock, row, tokens)

    async def _store_refreshed(self, lock: MallLock, row: TokenRow, tokens: TokenSet) -> tuple[SecretStr, bool]:
        mall_id = row.mall_id
        new = sealed_pair(self._sealer, mall_id=mall_id, tokens=tokens, client_id=row.client_id)
        at = self._clock()
        try:
            written = await lock.replace_tokens(version=row.version, new=new, at=at)
        except psycopg.Error as error:
            logger.warning(
                "storing the refreshed pair of mall %s failed (%s); retrying on fresh connections",
                mall_id,
                type(error).__name__,
            )
            written = await persist(
                lambda: self._store.replace_tokens(version=row.version, new=new, at=at),
                what="the refreshed pair",
                mall_id=mall_id,
            )
        if written:
            await self.flag_incomplete(mall_id, tokens)
            logger.info("tokens of mall %s refreshed (version %d)", mall_id, row.version + 1)
            return tokens.access_token, True
        logger.error("a newer token pair was stored during the refresh of mall %s; keeping it", mall_id)
        return self._open_access(active(await self._store.read_tokens(mall_id), mall_id)), False

    async def _declare_dead(self, lock: MallLock, row: TokenRow, error: OAuthError) -> tuple[SecretStr, bool]:
        mall_id = row.mall_id
        reason = str(error)
        if not await lock.set_status(status="needs_reauth", error=reason, version=row.version):
            # A newer grant landed meanwhile (a reinstall): never flag it.
            return self._open_access(active(await lock.current(), mall_id)), False
        await self._store.record_event(mall_id=mall_id, kind="needs_reauth", detail=reason)
        logger.warning("the refresh token of mall %s was refused: the mall needs a new install", mall_id)
        raise NeedsReauth(mall_id)

    async def flag_incomplete(self, mall_id: str, tokens: TokenSet) -> None:
        """A token response that did not fully parse was kept with conservative expiries."""
        if tokens.incomplete is None:
            return
        logger.warning(
            "Cafe24's token response for mall %s did not fully parse; kept with conservative expiries", mall_id
        )
        try:
            await self._store.record_event(mall_id=mall_id, kind="token_response_incomplete", detail=tokens.incomplete)
        except _UNAVAILABLE as error:
            logger.warning("recording the incomplete response of mall %s failed (%s)", mall_id, type(error).__name__)

    async def _revoke(self, mall_id: str) -> None:
        wait = float(self._settings.refresh_lock_wait_secs)
        async with self._flight(mall_id), self._store.lock_mall(mall_id, wait_secs=wait) as lock:
            row = await lock.current()
            if row is None:
                raise NotInstalled(mall_id)
            if row.status == "revoked":
                return
            hints: tuple[tuple[Literal["refresh", "access"], bytes], ...] = (
                ("refresh", row.refresh_token),
                ("access", row.access_token),
            )
            for kind, sealed in hints:
                token = self._sealer.open(mall_id=mall_id, kind=kind, key_id=row.key_id, sealed=sealed)
                try:
                    hint: Literal["refresh_token", "access_token"] = (
                        "refresh_token" if kind == "refresh" else "access_token"
                    )
                    await self._endpoint.revoke(mall_id=mall_id, token=SecretStr(token), hint=hint)
                except OAuthError as error:
                    if not error.token_already_dead:
                        raise
                    logger.info("Cafe24 no longer knows the %s token of mall %s; counted as revoked", kind, mall_id)
            if not await self._mark_revoked(lock, row.version, "revoked by the app"):
                logger.warning("a new grant of mall %s landed during the revoke; it is kept", mall_id)

    async def _uninstalled(self, mall_id: str, reason: str, occurred_at: datetime) -> bool:
        wait = float(self._settings.refresh_lock_wait_secs)
        async with self._flight(mall_id), self._store.lock_mall(mall_id, wait_secs=wait) as lock:
            # An exchange does not take the lock: a new grant can land between read and write.
            for _ in range(3):
                row = await lock.current()
                if row is None or row.status == "revoked":
                    return False
                if occurred_at < row.installed_at:
                    logger.info("an uninstall of mall %s older than its current grant; ignored", mall_id)
                    return False
                if await self._mark_revoked(lock, row.version, reason):
                    return True
        raise TokenUnavailable(mall_id, f"new grants of mall {mall_id} kept landing during the uninstall")

    async def _mark_revoked(self, lock: MallLock, version: int, reason: str) -> bool:
        if not await lock.set_status(status="revoked", error=reason, version=version):
            return False
        await self._store.record_event(mall_id=lock.mall_id, kind="revoked", detail=reason)
        logger.info("mall %s revoked: %s", lock.mall_id, reason)
        return True
