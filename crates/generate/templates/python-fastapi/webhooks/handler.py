"""``POST /webhooks/cafe24`` (contract §3.4): verify (fail closed: 403, nothing stored), validate
(400), store once under the dedupe key, answer ``200 {"ok":true,"id":N}`` — fast, with no call
to Cafe24 and no app logic on the request path. The dispatcher acts on stored events."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from auth.database import DATABASE_ERRORS, is_unavailable
from auth.deps import RuntimeDep
from auth.errors import ApiError
from auth.ids import is_mall_id
from auth.runtime import Cafe24Runtime
from webhooks.dispatch import Dispatcher, WebhookHandler
from webhooks.settings import WebhookSettings
from webhooks.store import WebhookStore
from webhooks.verify import Verifier, WebhookRefused

logger = logging.getLogger(__name__)

router = APIRouter(tags=["webhooks"])

_EVENT_NO = re.compile(r"[+-]?[0-9]+", re.ASCII)
_INT32_MAX = 2**31 - 1


@dataclass(frozen=True)
class WebhookRuntime:
    settings: WebhookSettings
    verifier: Verifier
    store: WebhookStore
    dispatcher: Dispatcher


@asynccontextmanager
async def webhook_runtime(
    cafe24: Cafe24Runtime, settings: WebhookSettings, *, handlers: Sequence[WebhookHandler] = ()
) -> AsyncIterator[WebhookRuntime]:
    """Intake and dispatch for the app's lifespan, inside :func:`auth.runtime.cafe24_runtime`."""
    if settings.auth is None:
        logger.warning("CAFE24_WEBHOOK_AUTH is not set: every webhook delivery is refused (403)")
    store = WebhookStore(cafe24.db)
    dispatcher = Dispatcher(store=store, tokens=cafe24.tokens, handlers=handlers, max_attempts=settings.max_attempts)
    stop = asyncio.Event()
    loop = asyncio.create_task(dispatcher.run(stop))
    try:
        yield WebhookRuntime(settings, Verifier(settings), store, dispatcher)
    finally:
        stop.set()
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)


def get_webhooks(request: Request) -> WebhookRuntime:
    webhooks = getattr(request.state, "cafe24_webhooks", None)
    if not isinstance(webhooks, WebhookRuntime):
        raise RuntimeError("webhooks are not running: enter webhook_runtime() in the app's lifespan")
    return webhooks


WebhooksDep = Annotated[WebhookRuntime, Depends(get_webhooks)]


def dedupe_key(trace_id: str | None, event_no: int, body: bytes) -> str:
    """``trace:{id}`` when the trace header holds 1-128 printable ASCII bytes, else ``sha256:``
    of the decimal event number, ``:`` and the raw body — as the runtime computes it."""
    if trace_id and len(trace_id) <= 128 and all(0x21 <= ord(c) <= 0x7E for c in trace_id):
        return f"trace:{trace_id}"
    return "sha256:" + hashlib.sha256(f"{event_no}:".encode("ascii") + body).hexdigest()


def parse_delivery(body: bytes) -> tuple[int, str]:
    """``(event_no, mall_id)``, or ``400 invalid_event``."""

    def invalid(reason: str) -> ApiError:
        return ApiError.bad_request("invalid_event", f"Invalid event: {reason}.")

    try:
        value: Any = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise invalid("the body is not UTF-8") from None
    except ValueError:
        raise invalid("the body is not JSON") from None
    raw = value.get("event_no") if isinstance(value, dict) else None
    if isinstance(raw, int) and not isinstance(raw, bool):
        event_no: int | None = raw
    elif isinstance(raw, str) and _EVENT_NO.fullmatch(raw):
        event_no = int(raw)
    else:
        event_no = None
    if event_no is None or not 0 < event_no <= _INT32_MAX:
        raise invalid("event_no is missing or not a number")
    resource = value.get("resource")
    mall_id = resource.get("mall_id") if isinstance(resource, dict) else None
    if not isinstance(mall_id, str) or not is_mall_id(mall_id):
        raise invalid("resource.mall_id is missing or not a valid mall id")
    return event_no, mall_id


async def read_body(request: Request, limit: int) -> bytes:
    too_large = ApiError(413, "body_too_large", "The request body is too large.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


@router.post("/webhooks/cafe24")
async def receive(request: Request, runtime: RuntimeDep, webhooks: WebhooksDep) -> dict[str, object]:
    body = await read_body(request, runtime.settings.http_max_body_bytes)
    forwarded = ",".join(request.headers.getlist("x-forwarded-for")) or None
    peer = request.client.host if request.client else None
    try:
        webhooks.verifier.check(peer=peer, forwarded_for=forwarded, header=request.headers.get, body=body)
    except WebhookRefused as refusal:
        logger.warning("webhook refused: %s", refusal)
        raise ApiError(403, "forbidden", "The delivery could not be verified.") from None
    event_no, mall_id = parse_delivery(body)
    trace_header = webhooks.settings.trace_header
    trace = request.headers.get(trace_header) if trace_header else None
    try:
        stored = await webhooks.store.insert(
            dedupe_key=dedupe_key(trace, event_no, body),
            mall_id=mall_id,
            event_no=event_no,
            trace_id=trace,
            body=body.decode("utf-8"),
        )
    except DATABASE_ERRORS as error:
        if is_unavailable(error):
            logger.error("database unreachable while storing a webhook (%s)", type(error).__name__)
            raise ApiError.unavailable() from None
        logger.error("storing a webhook failed (%s)", type(error).__name__)
        raise ApiError.internal() from None
    if stored.duplicate:
        logger.info("webhook %d (event %d) delivered again; already stored", stored.id, event_no)
        return {"ok": True, "id": stored.id, "duplicate": True}
    logger.info("webhook %d stored (event %d, mall %s)", stored.id, event_no, mall_id)
    webhooks.dispatcher.wake()
    return {"ok": True, "id": stored.id}
