"""Webhook verification (contract §3.4): the sender allowlist (through trusted proxies only),
then the configured header: the shared key itself, or an HMAC-SHA256 of the raw body in hex
(optionally ``sha256=``) or base64, compared in constant time. Unconfigured refuses all."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
from collections.abc import Callable

from webhooks.settings import WebhookSettings

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class WebhookRefused(Exception):
    """The delivery could not be verified; the reason is for logs only."""


def _ip(text: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


class Verifier:
    def __init__(self, settings: WebhookSettings) -> None:
        self._settings = settings

    def __repr__(self) -> str:
        return f"Verifier(auth={self._settings.auth!r}, header={self._settings.header!r})"

    def sender(self, peer: str | None, forwarded_for: str | None) -> IpAddress | None:
        """The TCP peer, or, when the peer is a trusted proxy, the right-most forwarded hop that
        is not one; a hop that is not an IP address makes the sender unknown."""
        address = _ip(peer) if peer is not None else None
        if address is None:
            return None

        def trusted(ip: IpAddress) -> bool:
            return any(ip in network for network in self._settings.trusted_proxies)

        if not trusted(address) or forwarded_for is None:
            return address
        for hop in reversed(forwarded_for.split(",")):
            hop_ip = _ip(hop)
            if hop_ip is None:
                return None
            if not trusted(hop_ip):
                return hop_ip
        return address

    def check(
        self, *, peer: str | None, forwarded_for: str | None, header: Callable[[str], str | None], body: bytes
    ) -> None:
        s = self._settings
        if s.auth is None:
            raise WebhookRefused("webhook verification is not configured")
        if s.allowed_senders:
            sender = self.sender(peer, forwarded_for)
            if sender is None or not any(sender in network for network in s.allowed_senders):
                raise WebhookRefused("sender address is not allowed")
        if s.auth == "insecure-none":
            return
        if s.key is None:
            raise WebhookRefused("webhook verification is not configured")
        presented = header(s.header)
        if presented is None:
            raise WebhookRefused("authentication header missing")
        presented = presented.strip()
        key = s.key.get_secret_value().encode("utf-8")
        if s.auth == "api-key":
            matches = hmac.compare_digest(presented.encode("utf-8"), key)
        else:
            expected = hmac.new(key, body, hashlib.sha256).digest()
            tag = _hex(presented) if s.auth == "hmac-hex" else _b64(presented)
            matches = tag is not None and hmac.compare_digest(expected, tag)
        if not matches:
            raise WebhookRefused("authentication header does not match")


def _hex(text: str) -> bytes | None:
    text = text.removeprefix("sha256=")
    if len(text) % 2 or len(text) > 256 or not text.isascii():
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def sign_hex(key: str, body: bytes) -> str:
    """The ``hmac-hex`` header value for ``body`` (for tests and senders)."""
    return hmac.new(key.encode("utf-8"), body, hashlib.sha256).hexdigest()
