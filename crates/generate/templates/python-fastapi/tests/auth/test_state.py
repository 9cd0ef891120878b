"""Signed state: the contract's vectors (so states interoperate with the Rust runtime)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from auth.state import BadSignature, ExpiredState, MalformedState, StateError, StateSigner

SECRET = SecretStr("contract-v1-state-secret-0123456789abcdef")
OTHER = SecretStr("contract-v1-another-secret-0123456789abcd")
STATE = "v1.shop1.1700000000.AAECAwQFBgcICQoLDA0ODw.2NL05bicw6SL95A58ZZBHTYz1dEloq6P4aycexPbTFo"
STATE_OTHER = "v1.shop1.1700000000.AAECAwQFBgcICQoLDA0ODw.OxvlaqEW1lH6qWl12p3gcLldzHIjM3jlccyEjrYb-Fo"


def at(offset: int) -> datetime:
    return datetime.fromtimestamp(1_700_000_000 + offset, UTC)


def signer(secret: SecretStr = SECRET) -> StateSigner:
    return StateSigner(secret=secret, ttl_secs=600)


def test_the_state_is_byte_for_byte_the_runtimes() -> None:
    assert signer().issue(mall_id="shop1", now=at(0), nonce=bytes(range(16))) == STATE
    assert signer(OTHER).issue(mall_id="shop1", now=at(0), nonce=bytes(range(16))) == STATE_OTHER


@pytest.mark.parametrize("offset", [0, 600, -60])
def test_a_runtime_state_verifies_within_its_lifetime_and_skew(offset: int) -> None:
    verified = signer().verify(STATE, now=at(offset))
    assert (verified.mall_id, verified.issued_at) == ("shop1", 1_700_000_000)


@pytest.mark.parametrize("offset", [601, -61])
def test_a_state_outside_its_lifetime_is_expired(offset: int) -> None:
    with pytest.raises(ExpiredState):
        signer().verify(STATE, now=at(offset))


def test_a_state_signed_with_another_secret_is_refused_before_any_field_is_read() -> None:
    with pytest.raises(BadSignature):
        signer().verify(STATE_OTHER, now=at(0))
    with pytest.raises(BadSignature):
        signer().verify(STATE.replace("shop1", "shop2"), now=at(0))


@pytest.mark.parametrize("junk", [f"{STATE}=", "", "x", "v1.shop1.1.n.", "....", "v1.shop1.1.n.!!!", "a" * 300])
def test_forged_or_malformed_states_are_refused(junk: str) -> None:
    with pytest.raises(MalformedState if junk.endswith("=") else StateError):
        signer().verify(junk, now=at(0))


def test_fresh_states_differ_and_the_signer_never_shows_its_key() -> None:
    now = datetime.now(UTC)
    assert signer().issue(mall_id="shop1", now=now) != signer().issue(mall_id="shop1", now=now)
    assert "contract-v1" not in repr(signer())
