"""Mall ids and scopes: parsed strictly, because a mall id is pasted into a host name."""

from __future__ import annotations

import re

MAX_MALL_ID_LEN = 50
_MALL_CHARS = re.compile(r"[a-z0-9_-]*", re.ASCII)
_SCOPE = re.compile(r"mall\.(?:read|write)_[A-Za-z_]{1,40}", re.ASCII)


class InvalidMallId(ValueError):
    """Not a Cafe24 mall id; the message never repeats the value."""


class InvalidScope(ValueError):
    """Not a Cafe24 scope."""


def parse_mall_id(raw: str) -> str:
    """Returns ``raw`` if it is a mall id: 1-50 lowercase letters, digits, ``-`` or ``_``,
    starting with a letter or a digit, without ``--`` as the third and fourth characters (the
    mark of an encoded international name, ``xn--``). Anything else could steer
    ``{mall_id}.cafe24api.com`` or make no URL at all."""
    if not raw:
        raise InvalidMallId("mall id is empty")
    if len(raw) > MAX_MALL_ID_LEN:
        raise InvalidMallId(f"mall id is longer than {MAX_MALL_ID_LEN} characters")
    first = raw[0]
    if not ("a" <= first <= "z" or "0" <= first <= "9"):
        if first.isascii():
            raise InvalidMallId("mall id must start with a lowercase letter or a digit")
        raise InvalidMallId("mall id may contain only lowercase letters, digits, '-' and '_'")
    if not _MALL_CHARS.fullmatch(raw):
        raise InvalidMallId("mall id may contain only lowercase letters, digits, '-' and '_'")
    if raw[2:4] == "--":
        raise InvalidMallId("mall id must not have '--' as its third and fourth characters")
    return raw


def is_mall_id(raw: str) -> bool:
    try:
        parse_mall_id(raw)
    except InvalidMallId:
        return False
    return True


def parse_scopes(raw: str) -> tuple[str, ...]:
    """Scopes separated by commas, spaces or tabs; duplicates dropped, order kept, at least one."""
    scopes: list[str] = []
    for part in re.split(r"[, \t]", raw):
        if not part:
            continue
        if not _SCOPE.fullmatch(part):
            shown = "".join(c for c in part[:60] if c.isprintable())
            raise InvalidScope(f"invalid scope {shown!r}: expected mall.read_X or mall.write_X")
        if part not in scopes:
            scopes.append(part)
    if not scopes:
        raise InvalidScope("no scope given: expected mall.read_X or mall.write_X")
    return tuple(scopes)
