"""Cafe24's token and revoke endpoints (docs/contract.md §8, CAFE24.md §2-3): form-encoded,
HTTP Basic client authentication, absolute expiry instants in Korea time without an offset and
no ``expires_in``. Errors keep the status and Cafe24's error code, never a token or secret."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal

import httpx
from pydantic import SecretStr

from config.settings import Settings

KST = timezone(timedelta(hours=9), "KST")
SALVAGED_ACCESS_LIFETIME = timedelta(hours=1)
SALVAGED_REFRESH_LIFETIME = timedelta(days=7)
MAX_ERROR_TEXT = 200
_INSTANT = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(Z|z|[+-]\d{2}:\d{2})?",
    re.ASCII,
)


class TokenParseError(ValueError):
    """A token response is not what Cafe24 sends; the message never holds a value."""


def parse_cafe24_instant(raw: str) -> datetime:
    """A Cafe24 timestamp as a UTC instant. Without an offset it is Korea time (+09:00): read
    as UTC, tokens would look valid nine hours too long. An explicit offset is honoured."""
    match = _INSTANT.fullmatch(raw.strip())
    if match is None:
        raise TokenParseError("unreadable timestamp")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    micros = int((match.group(7) or "0")[:6].ljust(6, "0"))
    offset = match.group(8)
    if offset is None:
        zone = KST
    elif offset in {"Z", "z"}:
        zone = UTC
    else:
        sign = 1 if offset[0] == "+" else -1
        zone = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
    try:
        local = datetime(year, month, day, hour, minute, second, micros, tzinfo=zone)
    except ValueError:
        raise TokenParseError("unreadable timestamp") from None
    return local.astimezone(UTC)


@dataclass(frozen=True)
class TokenSet:
    """A successful token response. Tokens are secrets: their repr is masked."""

    access_token: SecretStr
    refresh_token: SecretStr
    access_expires_at: datetime
    refresh_expires_at: datetime
    issued_at: datetime | None = None
    scopes: tuple[str, ...] = ()
    mall_id: str | None = None
    user_id: str | None = None
    client_id: str | None = None
    shop_no: str | None = None
    token_type: str | None = None
    # Set when the body did not fully parse but carried both tokens: what was wrong.
    incomplete: str | None = None


def _scopes(value: object) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    if isinstance(value, str):
        return tuple(part for part in re.split(r"[, ]", value) if part)
    return None


def _shop_no(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def parse_token_response(body: bytes, *, now: datetime) -> TokenSet:
    """The token response; when it does not fully parse but is JSON carrying both tokens, a set
    salvaged from it (Cafe24 has already rotated: dropping them would lose the mall)."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        raise TokenParseError("token response is not JSON") from None
    if not isinstance(data, dict):
        raise TokenParseError("token response is not a JSON object")
    try:
        return _parse_strict(data)
    except TokenParseError as problem:
        strict = problem

    def text(name: str) -> str | None:
        value = data.get(name)
        return value if isinstance(value, str) and value else None

    access, refresh = text("access_token"), text("refresh_token")
    if access is None or refresh is None:
        raise strict

    def instant(name: str) -> datetime | None:
        raw = text(name)
        try:
            return parse_cafe24_instant(raw) if raw is not None else None
        except TokenParseError:
            return None

    return TokenSet(
        access_token=SecretStr(access),
        refresh_token=SecretStr(refresh),
        access_expires_at=instant("expires_at") or now + SALVAGED_ACCESS_LIFETIME,
        refresh_expires_at=instant("refresh_token_expires_at") or now + SALVAGED_REFRESH_LIFETIME,
        issued_at=instant("issued_at"),
        scopes=_scopes(data.get("scopes")) or (),
        mall_id=text("mall_id"),
        user_id=text("user_id"),
        client_id=text("client_id"),
        shop_no=_shop_no(data.get("shop_no")),
        token_type=text("token_type"),
        incomplete=str(strict),
    )


def _parse_strict(data: dict[str, Any]) -> TokenSet:
    optional = ("issued_at", "mall_id", "user_id", "client_id", "token_type")
    for name in (*optional, "access_token", "refresh_token", "expires_at", "refresh_token_expires_at"):
        if data.get(name) is not None and not isinstance(data[name], str):
            raise TokenParseError(f"token response has a non-text {name}")

    def required(name: str) -> str:
        value = data.get(name)
        if not value:
            raise TokenParseError(f"token response lacks {name}")
        return str(value)

    scopes = _scopes(data["scopes"]) if data.get("scopes") is not None else ()
    shop_no = _shop_no(data["shop_no"]) if data.get("shop_no") is not None else None
    if scopes is None or (data.get("shop_no") is not None and shop_no is None):
        raise TokenParseError("token response has unexpected scopes or shop_no")
    issued = data.get("issued_at")
    return TokenSet(
        access_token=SecretStr(required("access_token")),
        refresh_token=SecretStr(required("refresh_token")),
        access_expires_at=parse_cafe24_instant(required("expires_at")),
        refresh_expires_at=parse_cafe24_instant(required("refresh_token_expires_at")),
        issued_at=parse_cafe24_instant(issued) if issued is not None else None,
        scopes=scopes,
        mall_id=data.get("mall_id"),
        user_id=data.get("user_id"),
        client_id=data.get("client_id"),
        shop_no=shop_no,
        token_type=data.get("token_type"),
    )


ErrorClass = Literal["transport", "unavailable", "dead_grant", "rejected", "malformed"]


class OAuthError(Exception):
    """A call to Cafe24's token or revoke endpoint failed (docs/contract.md §8.2)."""

    def __init__(self, kind: ErrorClass, message: str, *, status: int | None = None, error: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.error = error

    @property
    def retryable(self) -> bool:
        """The request may not have been processed: worth sending again."""
        return self.kind in ("transport", "unavailable")

    @property
    def dead_grant(self) -> bool:
        """The code or refresh token is dead (``invalid_grant`` on 400/401)."""
        return self.kind == "dead_grant"

    @property
    def grant_untouched(self) -> bool:
        """Cafe24 refused the request as a whole, so it rotated nothing."""
        return self.kind == "rejected"

    @property
    def token_already_dead(self) -> bool:
        """A revoke refused because Cafe24 no longer knows the token (``invalid_token``)."""
        return self.kind == "rejected" and self.status in (400, 401) and self.error == "invalid_token"


def classify(status: int, body: bytes, *, sent_secrets: tuple[str, ...]) -> OAuthError:
    """Maps an error answer; every secret we sent is scrubbed from Cafe24's text, then cut."""
    if status == 429 or status >= 500:
        return OAuthError("unavailable", f"Cafe24 answered {status}", status=status)

    def scrub(text: str) -> str:
        for secret in sent_secrets:
            if secret:
                text = text.replace(secret, "[redacted]")
        return text[:MAX_ERROR_TEXT]

    try:
        parsed: Any = json.loads(body)
    except ValueError:
        parsed = None
    error, description = "unknown", ""
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        error = scrub(parsed["error"])
        if isinstance(parsed.get("error_description"), str):
            description = scrub(parsed["error_description"])
    if status in (400, 401) and error == "invalid_grant":
        message = f"Cafe24 refused the grant ({status} {error}: {description})"
        return OAuthError("dead_grant", message, status=status, error=error)
    message = f"Cafe24 refused the request ({status} {error}: {description})"
    return OAuthError("rejected", message, status=status, error=error)


class TokenEndpoint:
    """Calls Cafe24's OAuth endpoints over the app's shared ``httpx.AsyncClient``."""

    def __init__(self, *, http: httpx.AsyncClient, settings: Settings) -> None:
        self._http = http
        self._settings = settings
        timeout = settings.http_timeout_secs
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 5))

    def __repr__(self) -> str:
        return f"TokenEndpoint(base_url={self._settings.base_url!r})"

    async def exchange(self, *, mall_id: str, code: SecretStr) -> TokenSet:
        """``grant_type=authorization_code``: Cafe24 consumes the code whatever it answers."""
        form = {
            "grant_type": "authorization_code",
            "code": code.get_secret_value(),
            "redirect_uri": self._settings.redirect_uri,
        }
        return await self._token_call(mall_id, form, sent=code.get_secret_value())

    async def refresh(self, *, mall_id: str, refresh_token: SecretStr) -> TokenSet:
        """``grant_type=refresh_token``: Cafe24 rotates, the token passed in dies on success."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token.get_secret_value()}
        return await self._token_call(mall_id, form, sent=refresh_token.get_secret_value())

    async def revoke(self, *, mall_id: str, token: SecretStr, hint: Literal["access_token", "refresh_token"]) -> None:
        """Cafe24's revoke with ``token_hint`` (not RFC 7009's ``token_type_hint``)."""
        form = {"token": token.get_secret_value(), "token_hint": hint}
        status, body = await self._post(mall_id, "/api/v2/oauth/revoke", form)
        if not 200 <= status < 300:
            raise classify(status, body, sent_secrets=self._secrets(token.get_secret_value()))

    async def _token_call(self, mall_id: str, form: dict[str, str], *, sent: str) -> TokenSet:
        status, body = await self._post(mall_id, "/api/v2/oauth/token", form)
        if status != 200:
            raise classify(status, body, sent_secrets=self._secrets(sent))
        try:
            return parse_token_response(body, now=datetime.now(UTC))
        except TokenParseError as problem:
            raise OAuthError("malformed", f"Cafe24's answer was unreadable: {problem}") from None

    async def _post(self, mall_id: str, path: str, form: dict[str, str]) -> tuple[int, bytes]:
        auth = (self._settings.client_id, self._settings.client_secret.get_secret_value())
        try:
            response = await self._http.post(
                self._settings.endpoint(mall_id, path), data=form, auth=auth, timeout=self._timeout
            )
        except httpx.HTTPError as error:
            raise OAuthError("transport", f"could not reach Cafe24: {describe(error)}") from None
        return response.status_code, response.content

    def _secrets(self, sent: str) -> tuple[str, ...]:
        return (sent, self._settings.client_secret.get_secret_value())


def describe(error: httpx.HTTPError) -> str:
    """A transport error without its URL or request."""
    if isinstance(error, httpx.TimeoutException):
        return "timed out"
    if isinstance(error, httpx.ConnectError):
        return "connection failed"
    if isinstance(error, httpx.RemoteProtocolError):
        return "the connection was closed without a complete answer"
    return type(error).__name__
