"""Tokens at rest: the contract's ciphertext vector, so the runtime and this module read each
other's rows."""

from __future__ import annotations

import pytest

from auth.crypto import DecryptError, KeyRing, KeyRingError, Sealer, generate_key_entry

RING = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
NONCE = bytes(range(0xA0, 0xAC))
ACCESS = bytes.fromhex("01a0a1a2a3a4a5a6a7a8a9aaab877b1f4836b82fcb0d0ee2bd2a4b2095e3dfa17cfc429f9ceb615dcc0e2a")
REFRESH = bytes.fromhex("01a0a1a2a3a4a5a6a7a8a9aaab947d1a5f20b86a92160aecb66957f1126e634206794df784e5094c62e690a8")


def sealer(ring: str = RING) -> Sealer:
    return Sealer(KeyRing.parse(ring))


def test_the_ciphertext_is_byte_for_byte_the_runtimes() -> None:
    assert sealer().seal(mall_id="shop1", kind="access", plaintext="access-token-1", nonce=NONCE) == ACCESS
    assert sealer().seal(mall_id="shop1", kind="refresh", plaintext="refresh-token-1", nonce=NONCE) == REFRESH


def test_the_runtimes_ciphertext_opens() -> None:
    assert sealer().open(mall_id="shop1", kind="access", key_id="k1", sealed=ACCESS) == "access-token-1"
    assert sealer().open(mall_id="shop1", kind="refresh", key_id="k1", sealed=REFRESH) == "refresh-token-1"


@pytest.mark.parametrize(
    ("mall_id", "kind", "sealed"),
    [("shop2", "access", ACCESS), ("shop1", "refresh", ACCESS), ("shop1", "access", b"\x02" + ACCESS[1:])],
)
def test_ciphertext_moved_swapped_or_tampered_does_not_decrypt(mall_id: str, kind: str, sealed: bytes) -> None:
    with pytest.raises(DecryptError):
        sealer().open(mall_id=mall_id, kind=kind, key_id="k1", sealed=sealed)  # type: ignore[arg-type]


def test_the_first_key_encrypts_and_every_key_decrypts() -> None:
    old = sealer()
    rotated = sealer(f"{generate_key_entry('k2')},{RING}")
    assert rotated.current_key_id == "k2"
    sealed = rotated.seal(mall_id="shop1", kind="access", plaintext="new")
    assert rotated.open(mall_id="shop1", kind="access", key_id="k2", sealed=sealed) == "new"
    assert rotated.open(mall_id="shop1", kind="access", key_id="k1", sealed=ACCESS) == "access-token-1"
    with pytest.raises(DecryptError, match="k2"):
        old.open(mall_id="shop1", kind="access", key_id="k2", sealed=sealed)


@pytest.mark.parametrize(
    "ring",
    ["", "k1", "k1:notbase64!", "k1:AAAA", f"{RING},{RING}", "bad id:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="],
)
def test_malformed_key_rings_are_refused_without_showing_keys(ring: str) -> None:
    with pytest.raises(KeyRingError) as refused:
        KeyRing.parse(ring)
    assert "AAECAwQF" not in str(refused.value)


def test_keys_never_show_in_reprs() -> None:
    ring = KeyRing.parse(RING)
    assert "AAEC" not in repr(ring) and "\\x00\\x01" not in repr(ring) and "AAEC" not in repr(sealer())
