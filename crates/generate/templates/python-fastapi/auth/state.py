"""The signed OAuth ``state`` (docs/contract.md §4): ``v1.{mall_id}.{issued_at}.{nonce}.{mac}``,
HMAC-SHA256 under ``EXPECTED_STATE_SECRET`` over everything before the last dot. It proves the
callback belongs to an install this app (or the Rust runtime, with the same secret) started,
names the mall and expires. Single use is enforced by the database (a unique index on state)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import SecretStr

from auth.ids import is_mall_id

VERSION = "v1"
NONCE_BYTES = 16
MAX_STATE_LEN = 256
FUTURE_SKEW_SECS = 60
_B64URL = re.compile(r"[A-Za-z0-9_-]*", re.ASCII)
_ISSUED = re.compile(r"[+-]?[0-9]+", re.ASCII)


class StateError(Exception):
    """The state cannot be accepted."""


class MalformedState(StateError):
    pass


class BadSignature(StateError):
    pass


class ExpiredState(StateError):
    pass


@dataclass(frozen=True)
class VerifiedState:
    mall_id: str
    issued_at: int


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes | None:
    """Strict base64url without padding: anything non-canonical is ``None``."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        return None
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return data if b64url(data) == text else None


class StateSigner:
    """Issues and verifies states; its repr never shows the key."""

    __slots__ = ("_key", "_ttl_secs")

    def __init__(self, *, secret: SecretStr, ttl_secs: int) -> None:
        self._key = secret.get_secret_value().encode("utf-8")
        self._ttl_secs = ttl_secs

    def __repr__(self) -> str:
        return f"StateSigner(key=[redacted], ttl_secs={self._ttl_secs})"

    def issue(self, *, mall_id: str, now: datetime, nonce: bytes | None = None) -> str:
        """A fresh state. ``nonce`` is for test vectors only; leave it to the random default."""
        nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
        body = f"{VERSION}.{mall_id}.{math.floor(now.timestamp())}.{b64url(nonce)}"
        return f"{body}.{b64url(self._mac(body))}"

    def verify(self, raw: str, *, now: datetime) -> VerifiedState:
        """Checks shape, signature (constant time, before any field is trusted) and age."""
        if len(raw) > MAX_STATE_LEN or not raw.isascii():
            raise MalformedState
        body, dot, encoded = raw.rpartition(".")
        if not dot:
            raise MalformedState
        tag = b64url_decode(encoded)
        if tag is None:
            raise MalformedState
        if not hmac.compare_digest(self._mac(body), tag):
            raise BadSignature
        fields = body.split(".")
        if len(fields) != 4 or fields[0] != VERSION or not is_mall_id(fields[1]):
            raise MalformedState
        if not _ISSUED.fullmatch(fields[2]):
            raise MalformedState
        issued_at = int(fields[2])
        # Whole seconds, truncated toward zero as the runtime counts them.
        age = int(now.astimezone(UTC).timestamp() - issued_at)
        if age > self._ttl_secs or age < -FUTURE_SKEW_SECS:
            raise ExpiredState
        return VerifiedState(mall_id=fields[1], issued_at=issued_at)

    def _mac(self, body: str) -> bytes:
        return hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest()
