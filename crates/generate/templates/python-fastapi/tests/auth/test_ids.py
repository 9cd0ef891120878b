"""Mall ids (contract §1): exactly the runtime's rule."""

from __future__ import annotations

import pytest

from auth.ids import InvalidMallId, parse_mall_id


@pytest.mark.parametrize("good", ["a", "shop1", "a-b_c9", "xn-a", "a" * 50])
def test_mall_ids_the_runtime_accepts_are_accepted(good: str) -> None:
    assert parse_mall_id(good) == good


@pytest.mark.parametrize(
    "bad", ["", "-a", "_a", "Shop", "a.b", "evil.com/", "a@b", "mäll", "a" * 51, "xn---", "xn--mll-hoa", "ab--cd"]
)
def test_hostile_or_reserved_mall_ids_are_refused(bad: str) -> None:
    with pytest.raises(InvalidMallId):
        parse_mall_id(bad)
