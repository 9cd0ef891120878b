"""``/healthz`` (the process serves), ``/readyz`` (the database answers) and ``/metrics``."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response

from auth.database import DATABASE_ERRORS
from auth.deps import RuntimeDep
from auth.errors import ApiError
from auth.metrics import CONTENT_TYPE, render

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, bool]:
    return {"ok": True}


@router.get("/readyz")
async def readyz(runtime: RuntimeDep) -> dict[str, object]:
    try:
        await runtime.store.ping()
    except DATABASE_ERRORS as error:
        logger.warning("readiness check failed (%s)", type(error).__name__)
        raise ApiError.unavailable() from None
    return {"ok": True, "database": "up"}


@router.get("/metrics", response_class=Response)
async def metrics(runtime: RuntimeDep) -> Response:
    return Response(render(runtime.metrics, runtime.client.metrics), media_type=CONTENT_TYPE)
