"""Cafe24's app launch ``hmac`` (docs/contract.md §5): ``base64(HMAC-SHA256(client_secret, raw
query before "&hmac="))`` over the query exactly as received, still percent-encoded and in its
order. The ``timestamp`` must be within the window (seconds, or milliseconds when too large)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from datetime import datetime
from urllib.parse import parse_qsl, quote, unquote_to_bytes

from pydantic import SecretStr

MAX_LAUNCH_QUERY_LEN = 4096
_TIMESTAMP = re.compile(r"[+-]?[0-9]+", re.ASCII)
_MILLIS_ABOVE = 100_000_000_000


class LaunchError(Exception):
    """The launch request cannot be accepted; ``code`` is the HTTP error code."""

    code = "launch_invalid"


class LaunchHmacMissing(LaunchError):
    code = "launch_hmac_required"


class LaunchHmacMalformed(LaunchError):
    pass


class LaunchHmacMismatch(LaunchError):
    pass


class LaunchBadTimestamp(LaunchError):
    pass


class LaunchStale(LaunchError):
    code = "launch_expired"


def has_hmac(raw_query: str) -> bool:
    """Whether the raw query carries a parameter named ``hmac`` anywhere."""
    return any(part.split("=", 1)[0] == "hmac" for part in raw_query.split("&"))


def _mac(secret: SecretStr, message: str) -> bytes:
    key = secret.get_secret_value().encode("utf-8")
    # The bytes as received: routes decode the raw query with surrogateescape.
    return hmac.new(key, message.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()


def verify_launch(raw_query: str, *, secret: SecretStr, now: datetime, window_secs: int) -> None:
    """Raises a :class:`LaunchError` unless the query is a fresh, genuine Cafe24 launch."""
    if len(raw_query) > MAX_LAUNCH_QUERY_LEN:
        raise LaunchHmacMalformed
    signed, amp, last = raw_query.rpartition("&")
    if not amp or not last.startswith("hmac="):
        raise LaunchHmacMissing
    if has_hmac(signed):
        raise LaunchHmacMalformed
    try:
        # %XX only: a literal '+' in base64 stays '+'.
        text = unquote_to_bytes(last.removeprefix("hmac=")).decode("utf-8")
        tag = base64.b64decode(text, validate=True)
    except (UnicodeDecodeError, binascii.Error, ValueError):
        raise LaunchHmacMalformed from None
    if not hmac.compare_digest(_mac(secret, signed), tag):
        raise LaunchHmacMismatch
    stamps = [v for k, v in parse_qsl(signed, keep_blank_values=True) if k == "timestamp"]
    if not stamps or not _TIMESTAMP.fullmatch(stamps[0]):
        raise LaunchBadTimestamp
    timestamp = int(stamps[0])
    seconds = timestamp // 1000 if timestamp > _MILLIS_ABOVE else timestamp
    if abs(int(now.timestamp()) - seconds) > window_secs:
        raise LaunchStale


def sign_launch_query(query: str, *, secret: SecretStr) -> str:
    """Appends ``&hmac=…`` as Cafe24 does (for tests and tools)."""
    tag = base64.b64encode(_mac(secret, query)).decode("ascii")
    return f"{query}&hmac={quote(tag, safe='')}"
