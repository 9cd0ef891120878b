"""Launch hmac: the contract's vector, computed over the raw query as received."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from auth.launch import (
    LaunchBadTimestamp,
    LaunchError,
    LaunchHmacMalformed,
    LaunchHmacMismatch,
    LaunchHmacMissing,
    LaunchStale,
    has_hmac,
    sign_launch_query,
    verify_launch,
)

SECRET = SecretStr("contract-v1-client-secret")
SIGNED = (
    "is_multi_shop=T&lang=ko_KR&mall_id=shop1&nation=KR&shop_no=1&timestamp=1700000000"
    "&user_id=admin&user_name=%ED%99%8D%EA%B8%B8%EB%8F%99&user_type=P"
)
HMAC = "Gp4JWLWYKD4oqM9V6ucvMu9inJ%2Fa%2FltNG6GM8UKp5hY%3D"
QUERY = f"{SIGNED}&hmac={HMAC}"


def at(offset: int) -> datetime:
    return datetime.fromtimestamp(1_700_000_000 + offset, UTC)


def verify(query: str, offset: int = 0) -> None:
    verify_launch(query, secret=SECRET, now=at(offset), window_secs=600)


def test_the_hmac_is_exactly_the_documented_one() -> None:
    assert sign_launch_query(SIGNED, secret=SECRET) == QUERY


@pytest.mark.parametrize("offset", [0, 600, -600])
def test_a_genuine_launch_verifies_within_the_window(offset: int) -> None:
    verify(QUERY, offset)


@pytest.mark.parametrize(
    ("query", "offset", "error"),
    [
        (QUERY, 601, LaunchStale),
        (QUERY.replace("%ED%99%8D%EA%B8%B8%EB%8F%99", "홍길동"), 0, LaunchHmacMismatch),
        (QUERY.replace("mall_id=shop1", "mall_id=shop2"), 0, LaunchHmacMismatch),
        (f"hmac={HMAC}&{SIGNED}", 0, LaunchHmacMissing),
        (SIGNED, 0, LaunchHmacMissing),
        (f"{SIGNED}&hmac=%%%", 0, LaunchHmacMalformed),
        (f"hmac=x&{SIGNED}&hmac={HMAC}", 0, LaunchHmacMalformed),
        (sign_launch_query("mall_id=shop1", secret=SECRET), 0, LaunchBadTimestamp),
    ],
)
def test_tampered_moved_stale_and_missing_launches_are_refused(
    query: str, offset: int, error: type[LaunchError]
) -> None:
    with pytest.raises(error):
        verify(query, offset)


def test_a_millisecond_timestamp_is_accepted() -> None:
    now = datetime.now(UTC)
    verify_launch(
        sign_launch_query(f"mall_id=shop1&timestamp={int(now.timestamp() * 1000)}", secret=SECRET),
        secret=SECRET,
        now=now,
        window_secs=600,
    )


def test_has_hmac_finds_the_parameter_anywhere() -> None:
    assert has_hmac(QUERY) and has_hmac("hmac=1&a=b") and not has_hmac("hmacx=1&a=b")
