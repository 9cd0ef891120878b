"""One error type for every route and one place that turns it into an answer (contract §3.1):
``{"ok":false,"error":…,"message":…}`` as JSON, or a small HTML page for a browser. Messages
never contain a submitted value or a secret; 5xx bodies are opaque and causes are logged."""

from __future__ import annotations

import html
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """An answer other than success: status, stable code, human message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code
        self.message = message

    @classmethod
    def bad_request(cls, code: str, message: str) -> ApiError:
        return cls(400, code, message)

    @classmethod
    def unavailable(cls) -> ApiError:
        return cls(503, "database_unavailable", "The database is unreachable; please retry shortly.")

    @classmethod
    def internal(cls) -> ApiError:
        return cls(500, "internal_error", "Something went wrong on our side.")


def wants_html(request: Request) -> bool:
    """``text/html`` (or XHTML) listed before ``application/json``, or JSON not listed at all."""
    html_at = json_at = None
    for position, item in enumerate(request.headers.get("accept", "").split(",")):
        media, *params = (part.strip().lower() for part in item.split(";"))
        if any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in params):
            continue
        if media in ("text/html", "application/xhtml+xml") and html_at is None:
            html_at = position
        elif media == "application/json" and json_at is None:
            json_at = position
    return html_at is not None and (json_at is None or html_at < json_at)


def page(*, status: int, ok: bool, message: str) -> HTMLResponse:
    if ok:
        title, css = "App installed", "ok"
    elif status >= 500:
        title, css = "Temporarily unavailable", "fail"
    else:
        title, css = "This link did not work", "fail"
    body = (
        f'<h1 id="result" class="{css}" data-ok="{str(ok).lower()}">{html.escape(title)}</h1>'
        f'<p id="message">{html.escape(message)}</p>'
    )
    return HTMLResponse(body, status_code=status)


def error_response(request: Request, error: ApiError) -> Response:
    if wants_html(request):
        return page(status=error.status, ok=False, message=error.message)
    content = {"ok": False, "error": error.code, "message": error.message}
    return JSONResponse(content, status_code=error.status)


async def _api_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    return error_response(request, error)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 404:
        return error_response(request, ApiError(404, "not_found", "No such endpoint."))
    if error.status_code == 405:
        answer = ApiError(405, "method_not_allowed", "This endpoint does not accept that method.")
        return error_response(request, answer)
    return error_response(request, ApiError(error.status_code, "error", "The request was refused."))


async def _invalid_request(request: Request, error: Exception) -> Response:
    return error_response(request, ApiError.bad_request("invalid_request", "The request is malformed."))


async def _unexpected(request: Request, error: Exception) -> Response:
    logger.error("unhandled %s on %s %s", type(error).__name__, request.method, request.url.path)
    return error_response(request, ApiError.internal())


def install_error_handlers(app: FastAPI) -> None:
    """JSON (or HTML) errors everywhere, never a stack trace."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(Exception, _unexpected)
