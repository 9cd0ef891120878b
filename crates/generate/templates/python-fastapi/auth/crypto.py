"""Tokens at rest (docs/contract.md §7): AES-256-GCM under the first key of
``TOKEN_ENCRYPTION_KEYS``, stored as ``0x01 || nonce(12) || ciphertext || tag(16)`` with the
mall id and token kind as associated data, so ciphertext moved to another mall's row or swapped
between access and refresh does not decrypt. Byte for byte what the Rust runtime writes."""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass, field
from typing import Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

TokenKind = Literal["access", "refresh"]

FORMAT = 0x01
NONCE_LEN = 12
TAG_LEN = 16
KEY_LEN = 32
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}", re.ASCII)


class KeyRingError(ValueError):
    """``TOKEN_ENCRYPTION_KEYS`` is malformed; the message never holds key material."""


class DecryptError(Exception):
    """Stored ciphertext does not decrypt (wrong key, wrong mall, or tampered)."""


@dataclass(frozen=True)
class EncryptionKey:
    id: str
    secret: bytes = field(repr=False)


@dataclass(frozen=True)
class KeyRing:
    """Ordered keys with unique ids: the first encrypts, every one decrypts (by the row's key id)."""

    keys: tuple[EncryptionKey, ...]

    @classmethod
    def parse(cls, raw: str) -> KeyRing:
        entries = [entry.strip() for entry in raw.split(",") if entry.strip()]
        keys: list[EncryptionKey] = []
        for number, entry in enumerate(entries, start=1):
            key_id, colon, encoded = entry.partition(":")
            if not colon:
                raise KeyRingError(f"entry {number} must look like id:BASE64")
            if not _KEY_ID.fullmatch(key_id):
                raise KeyRingError(f"entry {number}: key id must be 1-32 letters, digits, '-' or '_'")
            try:
                secret = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise KeyRingError(f"key {key_id}: not valid base64") from None
            if len(secret) != KEY_LEN:
                raise KeyRingError(f"key {key_id}: must decode to {KEY_LEN} bytes, not {len(secret)}")
            if any(key.id == key_id for key in keys):
                raise KeyRingError(f"key id {key_id} appears twice")
            keys.append(EncryptionKey(key_id, secret))
        if not keys:
            raise KeyRingError("no keys given")
        return cls(tuple(keys))

    @property
    def current(self) -> EncryptionKey:
        return self.keys[0]

    def by_id(self, key_id: str) -> EncryptionKey | None:
        return next((key for key in self.keys if key.id == key_id), None)


def generate_key_entry(key_id: str = "k1") -> str:
    """A fresh ``TOKEN_ENCRYPTION_KEYS`` entry, like ``cafe24-oauth keygen``."""
    return f"{key_id}:{base64.b64encode(os.urandom(KEY_LEN)).decode()}"


def associated_data(mall_id: str, kind: TokenKind) -> bytes:
    return f"cafe24-oauth/v1/{mall_id}/{kind}".encode("ascii")


class Sealer:
    """Seals and opens tokens with a key ring."""

    __slots__ = ("_ring",)

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring

    def __repr__(self) -> str:
        return f"Sealer(keys={[key.id for key in self._ring.keys]!r})"

    @property
    def current_key_id(self) -> str:
        return self._ring.current.id

    def seal(self, *, mall_id: str, kind: TokenKind, plaintext: str, nonce: bytes | None = None) -> bytes:
        """Encrypts under the current key. ``nonce`` is for test vectors only: a nonce must never
        repeat under one key, so leave it to the default (12 fresh random bytes)."""
        nonce = os.urandom(NONCE_LEN) if nonce is None else nonce
        if len(nonce) != NONCE_LEN:
            raise ValueError(f"a nonce is {NONCE_LEN} bytes")
        sealed = AESGCM(self._ring.current.secret).encrypt(
            nonce, plaintext.encode("utf-8"), associated_data(mall_id, kind)
        )
        return bytes([FORMAT]) + nonce + sealed

    def open(self, *, mall_id: str, kind: TokenKind, key_id: str, sealed: bytes) -> str:
        key = self._ring.by_id(key_id)
        if key is None:
            raise DecryptError(f"no key with id {key_id!r} is configured in TOKEN_ENCRYPTION_KEYS")
        if len(sealed) < 1 + NONCE_LEN + TAG_LEN or sealed[0] != FORMAT:
            raise DecryptError("stored ciphertext does not decrypt (wrong key, wrong mall, or tampered)")
        nonce, body = sealed[1 : 1 + NONCE_LEN], sealed[1 + NONCE_LEN :]
        try:
            plain = AESGCM(key.secret).decrypt(nonce, body, associated_data(mall_id, kind))
            return plain.decode("utf-8")
        except (InvalidTag, UnicodeDecodeError):
            raise DecryptError("stored ciphertext does not decrypt (wrong key, wrong mall, or tampered)") from None
