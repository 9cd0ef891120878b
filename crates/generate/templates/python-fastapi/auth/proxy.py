"""``/internal/malls/{mall_id}/api/v2/admin/…`` (contract §3.8): forwards a call to Cafe24's
Admin API with the mall's managed token, pacing and retries. It exists only when
``CAFE24_ADMIN_TOKEN`` is set (404 otherwise); callers send ``Authorization: Bearer …``,
compared in constant time. Cafe24's status and JSON body come back as they are; a POST is
retried after a 5xx only with ``X-Retry-Post: safe``. Keep it internal: it is an admin surface."""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from auth.cafe24_client import (
    Cafe24ApiError,
    Cafe24Deadline,
    Cafe24Refused,
    Cafe24Unreachable,
    InvalidApiRequest,
    admin_path,
)
from auth.deps import RuntimeDep, SettingsDep
from auth.errors import ApiError
from auth.ids import is_mall_id
from auth.token_manager import NeedsReauth, NotInstalled, Revoked, TokenError

logger = logging.getLogger(__name__)

router = APIRouter(tags=["proxy"], include_in_schema=False)

FORWARDED = ("GET", "POST", "PUT", "DELETE")
ANY_METHOD = [*FORWARDED, "PATCH", "HEAD", "OPTIONS"]


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


@router.api_route("/internal/malls/{mall_id}/api/v2/{path:path}", methods=ANY_METHOD)
async def forward(mall_id: str, path: str, request: Request, settings: SettingsDep, runtime: RuntimeDep) -> Response:
    if settings.admin_token is None:
        raise ApiError(404, "not_found", "No such endpoint.")
    presented = _bearer(request)
    if presented is None:
        response = JSONResponse(
            {"ok": False, "error": "unauthorized", "message": "Send the admin credential as Authorization: Bearer."},
            status_code=401,
        )
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    expected = settings.admin_token.get_secret_value().encode()
    if not hmac.compare_digest(presented.encode(), expected):
        raise ApiError(403, "forbidden", "The admin credential is not valid.")
    # Nothing percent-encoded is forwarded: an encoded dot could climb out of the Admin API.
    raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode()
    if b"%" in raw_path:
        raise ApiError.bad_request("invalid_path", "The path must not contain percent-encoded characters.")
    if not is_mall_id(mall_id):
        raise ApiError.bad_request("invalid_mall_id", "The mall id is not valid.")
    if not path.startswith("admin/"):
        raise ApiError(404, "not_found", "Only the Admin API (/api/v2/admin/…) is forwarded.")
    if request.method not in FORWARDED:
        raise ApiError(405, "method_not_allowed", "Only GET, POST, PUT and DELETE are forwarded.")
    try:
        checked = admin_path(path.removeprefix("admin"))
    except InvalidApiRequest as error:
        raise ApiError.bad_request("invalid_path", f"The path is refused: {error}.") from None
    raw_body = await request.body()
    body: Any = None
    if raw_body:
        try:
            body = json.loads(raw_body)
        except ValueError:
            raise ApiError.bad_request("invalid_json", "The body is not JSON.") from None
    query = parse_qsl(request.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    safe = request.headers.get("x-retry-post", "").lower() == "safe"
    try:
        answer = await runtime.client.mall(mall_id).send(
            request.method, checked, params=query, json_body=body, retry_safe=safe
        )
    except (Cafe24ApiError, TokenError) as error:
        return _failure(error)
    return JSONResponse(answer.body, status_code=answer.status)


def _failure(error: Cafe24ApiError | TokenError) -> Response:
    if isinstance(error, Cafe24Refused) and error.body is not None:
        return JSONResponse(error.body, status_code=error.status)
    logger.warning("proxied call failed: %s", type(error).__name__)
    match error:
        case Cafe24Unreachable():
            raise ApiError(502, "bad_gateway", "Cafe24 could not be reached.")
        case Cafe24Deadline():
            raise ApiError(504, "deadline", "Cafe24 did not answer successfully in time.")
        case InvalidApiRequest():
            raise ApiError.bad_request("invalid_request", "The request cannot be forwarded.")
        case Cafe24ApiError():
            raise ApiError(502, "bad_gateway", "Cafe24's answer was unreadable.")
        case NotInstalled():
            raise ApiError(404, "not_installed", "The mall has not installed the app.")
        case NeedsReauth() | Revoked():
            raise ApiError(409, "needs_reauth", "The mall must install the app again.")
        case _:
            raise ApiError(503, "token_unavailable", "No token could be obtained for the mall; retry shortly.")
