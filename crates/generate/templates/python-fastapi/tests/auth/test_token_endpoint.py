"""Cafe24's token responses: Korea time without an offset, salvage of a rotated pair, and
error texts scrubbed of what we sent."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from auth.token_endpoint import (
    SALVAGED_ACCESS_LIFETIME,
    TokenParseError,
    classify,
    parse_cafe24_instant,
    parse_token_response,
)


@pytest.mark.parametrize(
    ("raw", "utc"),
    [
        ("2021-03-01T14:00:00.000", "2021-03-01T05:00:00+00:00"),
        ("2026-01-01T08:59:59.999", "2025-12-31T23:59:59.999000+00:00"),
        ("2021-03-01T14:00:00", "2021-03-01T05:00:00+00:00"),
        ("2021-03-01 14:00:00.5", "2021-03-01T05:00:00.500000+00:00"),
        ("2021-03-01T14:00:00+09:00", "2021-03-01T05:00:00+00:00"),
        ("2021-03-01T05:00:00Z", "2021-03-01T05:00:00+00:00"),
        ("2024-03-01T03:00:00.000", "2024-02-29T18:00:00+00:00"),
    ],
)
def test_cafe24_instants_are_korea_time_unless_they_say_otherwise(raw: str, utc: str) -> None:
    assert parse_cafe24_instant(raw).isoformat() == utc


@pytest.mark.parametrize("raw", ["tomorrow", "2021-02-30T00:00:00", "20210301T140000", ""])
def test_unreadable_instants_are_errors(raw: str) -> None:
    with pytest.raises(TokenParseError):
        parse_cafe24_instant(raw)


def test_the_documented_response_parses_and_hides_its_tokens() -> None:
    body = (
        b'{"access_token":"AAA","expires_at":"2021-03-01T14:00:00.000","refresh_token":"RRR",'
        b'"refresh_token_expires_at":"2021-03-15T12:00:00.000","client_id":"cid","mall_id":"yourmall",'
        b'"user_id":"test","scopes":["mall.read_order","mall.read_product"],'
        b'"issued_at":"2021-03-01T12:00:00.000","shop_no":"1","token_type":"Bearer"}'
    )
    tokens = parse_token_response(body, now=datetime.now(UTC))
    assert tokens.access_token.get_secret_value() == "AAA"
    assert tokens.issued_at is not None
    assert (tokens.access_expires_at - tokens.issued_at).total_seconds() == 7200
    assert tokens.scopes == ("mall.read_order", "mall.read_product")
    assert tokens.incomplete is None
    assert "AAA" not in repr(tokens) and "RRR" not in repr(tokens)


def test_a_response_with_both_tokens_is_salvaged_with_conservative_expiries() -> None:
    now = datetime(2026, 1, 1, 3, tzinfo=UTC)
    body = b'{"access_token":"AAA","refresh_token":"RRR","expires_at":"1 Jan 2026","scopes":{"x":1},"shop_no":1}'
    tokens = parse_token_response(body, now=now)
    assert tokens.refresh_token.get_secret_value() == "RRR"
    assert tokens.access_expires_at == now + SALVAGED_ACCESS_LIFETIME
    assert tokens.incomplete is not None and tokens.shop_no == "1"
    with pytest.raises(TokenParseError):
        parse_token_response(b'{"access_token":"a","expires_at":"x"}', now=now)
    with pytest.raises(TokenParseError):
        parse_token_response(b"<html>", now=now)


def test_errors_are_classified_and_scrubbed_before_they_are_cut() -> None:
    secret = "rt-7f3a9c2e5b8d1f4a6c0e9b2d"
    dead = classify(
        400,
        b'{"error":"invalid_grant","error_description":"Invalid refresh_token ' + secret.encode() + b'"}',
        sent_secrets=(secret,),
    )
    assert dead.dead_grant and secret not in str(dead)
    assert classify(401, b'{"error":"invalid_grant"}', sent_secrets=()).dead_grant
    assert classify(503, b"", sent_secrets=()).retryable and classify(429, b"", sent_secrets=()).retryable
    other = classify(400, b'{"error":"invalid_request"}', sent_secrets=())
    assert other.grant_untouched and not other.retryable
    straddling = json.dumps({"error": "x" * 190 + secret}).encode()
    cut = classify(400, straddling, sent_secrets=(secret,))
    assert secret[:8] not in str(cut)
    assert classify(400, b'{"error":"invalid_token"}', sent_secrets=()).token_already_dead
