"""``GET /install`` (the App URL) and ``GET /oauth/callback`` (contract §3.2-3.3).

``/install`` verifies Cafe24's launch ``hmac`` (required unless ``CAFE24_LAUNCH_HMAC_REQUIRED``
is false), validates the mall and sends the browser to Cafe24's consent page with a fresh
signed state. ``/oauth/callback`` verifies the state and stores the code (once per state) for
the exchange worker, which it wakes; nothing is stored unless the state is valid, and no call to
Cafe24 is made on this path. Every callback answer carries ``Cache-Control: no-store``."""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import SecretStr

from auth.database import DATABASE_ERRORS, is_unavailable
from auth.deps import RuntimeDep, SettingsDep
from auth.errors import ApiError, error_response, page, wants_html
from auth.ids import InvalidMallId, parse_mall_id
from auth.launch import (
    LaunchBadTimestamp,
    LaunchError,
    LaunchHmacMissing,
    LaunchStale,
    has_hmac,
    verify_launch,
)
from auth.state import ExpiredState, StateError
from config.settings import Settings

logger = logging.getLogger(__name__)

router = APIRouter(tags=["oauth"])

MAX_CODE_LEN = 512


class Refusal(Exception):
    """A callback refusal and the outcome it is counted as."""

    def __init__(self, outcome: str, error: ApiError) -> None:
        super().__init__(outcome)
        self.outcome = outcome
        self.error = error


def raw_query(request: Request) -> str:
    """The query string exactly as received (still percent-encoded)."""
    query: bytes = request.scope.get("query_string", b"")
    return query.decode("utf-8", "surrogateescape")


def single_param(query: str, name: str) -> str | None:
    """The one value of ``name``; a repeated parameter is refused, an empty one is absent."""
    values = [value for key, value in parse_qsl(query, keep_blank_values=True) if key == name]
    if len(values) > 1:
        raise ApiError.bad_request("duplicate_parameter", f"The parameter {name} appears more than once.")
    return values[0] if values and values[0] else None


def form_encode(value: str) -> str:
    """``application/x-www-form-urlencoded`` as the runtime writes it."""
    out = []
    for char in value:
        if char.isascii() and (char.isalnum() or char in "*-._"):
            out.append(char)
        elif char == " ":
            out.append("+")
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8"))
    return "".join(out)


def authorize_url(settings: Settings, *, mall_id: str, state: str) -> str:
    """Cafe24's consent page for the mall, with the scopes comma-separated."""
    query = (
        ("response_type", "code"),
        ("client_id", settings.client_id),
        ("state", state),
        ("redirect_uri", settings.redirect_uri),
        ("scope", ",".join(settings.scopes)),
    )
    encoded = "&".join(f"{key}={form_encode(value)}" for key, value in query)
    return f"{settings.endpoint(mall_id, '/api/v2/oauth/authorize')}?{encoded}"


def _launch_refusal(error: LaunchError) -> ApiError:
    if isinstance(error, LaunchHmacMissing):
        return ApiError(403, error.code, "This app must be opened from the Cafe24 admin.")
    if isinstance(error, LaunchStale):
        return ApiError(403, error.code, "This launch link has expired; open the app again from Cafe24.")
    if isinstance(error, LaunchBadTimestamp):
        return ApiError(403, error.code, "The launch request has no valid timestamp.")
    return ApiError(403, error.code, "The launch request signature is invalid.")


@router.get("/install", status_code=302, response_class=Response)
async def install(request: Request, settings: SettingsDep, runtime: RuntimeDep) -> Response:
    """The App URL Cafe24 opens: redirects to the consent page with a signed state."""
    query = raw_query(request)
    now = runtime.tokens.now()
    if has_hmac(query):
        try:
            verify_launch(query, secret=settings.client_secret, now=now, window_secs=settings.launch_window_secs)
        except LaunchError as error:
            logger.warning("launch refused: %s", type(error).__name__)
            raise _launch_refusal(error) from None
    elif settings.launch_hmac_required:
        raise _launch_refusal(LaunchHmacMissing())
    raw_mall = single_param(query, "mall_id")
    if raw_mall is None:
        raise ApiError.bad_request("missing_parameter", "mall_id is required.")
    try:
        mall_id = parse_mall_id(raw_mall)
    except InvalidMallId as error:
        raise ApiError.bad_request("invalid_mall_id", f"Invalid mall_id: {error}.") from None
    location = authorize_url(settings, mall_id=mall_id, state=runtime.signer.issue(mall_id=mall_id, now=now))
    logger.info("install redirect issued for mall %s", mall_id)
    return Response(status_code=302, headers={"Location": location, "Cache-Control": "no-store"})


@router.get("/oauth/callback")
async def callback(request: Request, settings: SettingsDep, runtime: RuntimeDep) -> Response:
    """Cafe24's redirect after consent: ``200 {"ok":true,"message":"Saved","id":N}``."""
    try:
        response = await _store_code(request, settings, runtime)
        runtime.metrics.record("saved")
        runtime.exchanger.wake()
    except Refusal as refusal:
        runtime.metrics.record(refusal.outcome)
        logger.info("callback refused: %s (%d)", refusal.outcome, refusal.error.status)
        response = error_response(request, refusal.error)
    except Exception as error:  # noqa: BLE001 - even a bug's answer must not be cached
        runtime.metrics.record("internal_error")
        logger.error("callback failed (%s)", type(error).__name__)
        response = error_response(request, ApiError.internal())
    # Every answer concerns a one-time code: no browser or proxy may keep it.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


async def _store_code(request: Request, settings: Settings, runtime: RuntimeDep) -> Response:
    query = raw_query(request)

    def param(name: str) -> str | None:
        try:
            return single_param(query, name)
        except ApiError as error:
            raise Refusal("bad_request", error) from None

    denied = param("error")
    if denied is not None:
        known = len(denied) <= 64 and all("a" <= c <= "z" or c == "_" for c in denied)
        reason = denied if known else "authorization_error"
        message = f"The app was not authorized by the mall ({reason}). Start the install again to retry."
        raise Refusal("denied", ApiError(403, "access_denied", message))
    code, state = param("code"), param("state")
    if code is None or state is None:
        raise Refusal(
            "missing_parameter", ApiError.bad_request("missing_parameter", "Both code and state are required.")
        )
    if len(code) > MAX_CODE_LEN or not all(0x21 <= ord(c) <= 0x7E for c in code):
        raise Refusal("invalid_code", ApiError.bad_request("invalid_parameter", "The code is malformed."))
    try:
        verified = runtime.signer.verify(state, now=runtime.tokens.now())
    except ExpiredState:
        message = "This authorization took too long; start the install again."
        raise Refusal("state_expired", ApiError.bad_request("state_expired", message)) from None
    except StateError:
        message = "The state parameter is not one this server issued."
        raise Refusal("invalid_state", ApiError.bad_request("invalid_state", message)) from None
    try:
        stored = await runtime.store.insert_code(
            code=SecretStr(code), state=state, mall_id=verified.mall_id, max_pending=settings.max_pending_codes
        )
    except DATABASE_ERRORS as error:
        if is_unavailable(error):
            logger.error("database unreachable while storing a code (%s)", type(error).__name__)
            raise Refusal("database_unavailable", ApiError.unavailable()) from None
        logger.error("storing a code failed (%s)", type(error).__name__)
        raise Refusal("internal_error", ApiError.internal()) from None
    if stored.outcome == "state_already_used":
        raise Refusal(
            "state_replayed", ApiError(409, "state_already_used", "This authorization was already completed.")
        )
    if stored.outcome == "too_many_pending" or stored.id is None:
        logger.warning("too many codes waiting for mall %s; refused", verified.mall_id)
        message = "Too many installs of this mall are in progress; try again in a minute."
        raise Refusal("too_many_pending", ApiError(429, "too_many_pending", message))
    logger.info("authorization code %d stored for mall %s", stored.id, verified.mall_id)
    if wants_html(request):
        message = f"Authorization for mall {verified.mall_id} was received. You can close this window."
        return page(status=200, ok=True, message=message)
    return JSONResponse({"ok": True, "message": "Saved", "id": stored.id})
