"""The Admin API client (docs/client.md): one per process over the app's shared
``httpx.AsyncClient``; :meth:`Cafe24Client.mall` binds it to a mall. A call takes the mall's
token, waits for room in its bucket — the mall's fleet-wide budget in PostgreSQL, shared by
every process (contract §6.8), or this process's share of it while the database does not
answer (:mod:`auth.pacer`) — sends, and retries as the answer allows: a 401 once after a
refresh, a 429 (every method) after the pause Cafe24 asks for, 500/503/504 and lost answers
with exponential backoff and jitter only when the request is idempotent (GET, PUT, DELETE, or a
POST marked ``retry_safe``), within ``CAFE24_API_MAX_ATTEMPTS`` and ``CAFE24_API_DEADLINE_SECS``."""

from __future__ import annotations

import json
import logging
import math
import random
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx
from pydantic import SecretStr, ValidationError

from auth.cafe24_models import Product, StoreInfo, Variant, VariantUpdate
from auth.metrics import ClientMetrics
from auth.pacer import (
    BUDGET_TIMEOUT_SECS,
    FALLBACK_SHARE,
    MAX_PAUSE_SECS,
    SHARED_HEADROOM,
    BudgetStore,
    LimitReport,
    MallPacer,
    Pacers,
    PastDeadline,
    SystemTimer,
    Timer,
)
from auth.tasks import within
from auth.token_endpoint import describe
from config.settings import Settings

logger = logging.getLogger(__name__)

ADMIN_PREFIX = "/api/v2/admin"
PAGE_LIMIT = 100
PRODUCTS_OFFSET_CAP = 5000
DEFAULT_OFFSET_CAP = 8000
_PATH_CHARS = re.compile(r"[A-Za-z0-9\-._~/%,]*", re.ASCII)
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
M = TypeVar("M", Product, Variant, StoreInfo)
Query = Mapping[str, str | int] | Sequence[tuple[str, str | int]]
Params = list[tuple[str, str | int | float | bool | None]]


class TokenSource(Protocol):
    """Where access tokens come from (the :class:`auth.token_manager.TokenManager`)."""

    async def access_token(self, mall_id: str) -> SecretStr: ...

    async def refresh_rejected(self, mall_id: str, rejected: SecretStr) -> SecretStr: ...


class Cafe24ApiError(Exception):
    """An Admin API call failed; no error carries a token."""

    def __init__(self, message: str, *, attempts: int = 0) -> None:
        super().__init__(message)
        self.attempts = attempts


class Cafe24Refused(Cafe24ApiError):
    """Cafe24 answered with an error: its status, code, message and body are kept."""

    def __init__(self, *, status: int, body: Any, attempts: int) -> None:
        error = body.get("error") if isinstance(body, dict) else None
        self.status = status
        self.body = body
        self.code = error.get("code") if isinstance(error, dict) else None
        self.cafe24_message = str(error.get("message", "")) if isinstance(error, dict) else ""
        super().__init__(f"Cafe24 answered {status}: {self.cafe24_message[:200]}", attempts=attempts)


class Cafe24Unreachable(Cafe24ApiError):
    """No answer (connection refused, dropped, timed out)."""


class Cafe24Deadline(Cafe24ApiError):
    """No success within ``CAFE24_API_DEADLINE_SECS``."""


class InvalidApiRequest(Cafe24ApiError):
    """The request cannot be sent (a path that could leave the Admin API, a reserved filter)."""


class MalformedAnswer(Cafe24ApiError):
    """Cafe24's answer did not have the expected shape."""


class NoProgress(Cafe24ApiError):
    """Paging stopped: a full page brought nothing new (the cursor was ignored)."""


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: Any
    attempts: int
    limit: LimitReport


def admin_path(raw: str) -> str:
    """``raw`` relative to ``/api/v2/admin``, checked so a call cannot leave the mall's API."""
    path = raw.removeprefix(ADMIN_PREFIX)
    path = path if path.startswith("/") else f"/{path}"
    if len(path) > 1024 or len(path) < 2:
        raise InvalidApiRequest("the path is empty or too long")
    if not _PATH_CHARS.fullmatch(path):
        raise InvalidApiRequest("the path may hold only letters, digits and - . _ ~ / % ,")
    segments = [segment.lower().replace("%2e", ".") for segment in path.split("/")]
    if any(segment in (".", "..") for segment in segments) or "//" in path:
        raise InvalidApiRequest("the path must not contain empty, . or .. segments")
    return path.rstrip("/")


class Cafe24Client:
    """The process's Admin API client: tokens, pacing per mall and retries, shared by all tasks.

    With ``budget`` (the runtime passes its :class:`auth.store.Store`) every call is drawn from
    the mall's fleet-wide budget, and ``pacers`` hold this process's fallback share of the
    bucket; without it (tests, a single process) ``pacers`` mirror the whole bucket."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        tokens: TokenSource,
        settings: Settings,
        budget: BudgetStore | None = None,
        timer: Timer | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.http = http
        self.tokens = tokens
        self.settings = settings
        self.budget = budget
        size, drain = float(settings.api_bucket_size), settings.api_drain_per_sec
        if budget is not None:
            size, drain = max(size * FALLBACK_SHARE, 1.0), drain * FALLBACK_SHARE
        self.pacers = Pacers(size=size, drain_per_sec=drain, timer=timer or SystemTimer())
        self.metrics = ClientMetrics()
        self.rng = rng or random.Random()  # noqa: S311 - retry jitter, not cryptography
        self.timeout = httpx.Timeout(settings.api_timeout_secs, connect=min(settings.api_timeout_secs, 5))

    def __repr__(self) -> str:
        return f"Cafe24Client(base_url={self.settings.base_url!r})"

    def mall(self, mall_id: str, *, shop_no: int = 1) -> MallClient:
        return MallClient(self, mall_id, shop_no)


class MallClient:
    """The client bound to one mall (and one shop of it)."""

    def __init__(self, client: Cafe24Client, mall_id: str, shop_no: int) -> None:
        self._client = client
        self.mall_id = mall_id
        self.shop_no = shop_no
        self.url = client.settings.endpoint(mall_id, ADMIN_PREFIX)
        self.pacer: MallPacer = client.pacers.mall(mall_id)

    def __repr__(self) -> str:
        return f"MallClient(mall_id={self.mall_id!r}, shop_no={self.shop_no})"

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Query | None = None,
        json_body: Any = None,
        retry_safe: bool = False,
    ) -> ApiResponse:
        """Sends with pacing and retries; a non-success answer raises :class:`Cafe24Refused`."""
        c = self._client
        method = method.upper()
        url = self.url + admin_path(path)
        idempotent = retry_safe or method in _IDEMPOTENT
        timer = c.pacers.timer
        deadline = timer.now() + c.settings.api_deadline_secs
        token = await c.tokens.access_token(self.mall_id)
        refreshed = False
        attempts = failures = rate_limited = 0
        while True:
            try:
                level = await self._pace(deadline)
            except PastDeadline:
                raise Cafe24Deadline(
                    "no room in the mall's call budget before the deadline", attempts=attempts
                ) from None
            attempts += 1
            try:
                response = await c.http.request(
                    method, url, params=_pairs(params), json=json_body, headers=self._headers(token), timeout=c.timeout
                )
            except httpx.HTTPError as error:
                last: Cafe24ApiError = Cafe24Unreachable(
                    f"Cafe24 could not be reached: {describe(error)}", attempts=attempts
                )
                if not idempotent:
                    raise last from None
                failures += 1
                reason, wait = "transport", self._backoff(failures)
            else:
                limit = LimitReport.from_headers(response.headers)
                self.pacer.observe(limit)
                if response.status_code != 429:
                    await self._correct_shared(level, limit)
                body = _json(response.content)
                if 200 <= response.status_code < 300:
                    if body is _UNREADABLE:
                        raise MalformedAnswer("Cafe24's answer is not JSON", attempts=attempts)
                    return ApiResponse(response.status_code, body, attempts, limit)
                last = Cafe24Refused(
                    status=response.status_code, body=None if body is _UNREADABLE else body, attempts=attempts
                )
                if response.status_code == 401 and not refreshed:
                    # Refused before processing: refresh once (or pick up another's refresh).
                    refreshed = True
                    logger.info("401 from Cafe24 for mall %s: refreshing the token and retrying once", self.mall_id)
                    token = await c.tokens.refresh_rejected(self.mall_id, token)
                    continue
                if response.status_code == 429:
                    # Refused before processing: safe to send again, for every method.
                    failures += 1
                    rate_limited += 1
                    pause = limit.remain_secs if limit.remain_secs is not None else self._backoff(failures)
                    self.pacer.limited(float(pause))
                    await self._share_limited(float(pause))
                    reason, wait = "rate_limited", 0.0
                elif response.status_code in (500, 503, 504) and idempotent:
                    failures += 1
                    reason, wait = "server_error", self._backoff(failures)
                else:
                    raise last
            if attempts - rate_limited >= c.settings.api_max_attempts:
                logger.warning("giving up on %s %s for mall %s: no attempts left", method, path, self.mall_id)
                raise last
            if timer.now() + wait > deadline:
                raise Cafe24Deadline(f"no success before the deadline: {last}", attempts=attempts)
            logger.warning(
                "retrying %s %s for mall %s (%s, attempt %d, wait %.2f s)",
                method,
                path,
                self.mall_id,
                reason,
                attempts,
                wait,
            )
            if wait > 0:
                await timer.sleep(wait)

    async def _pace(self, deadline: float) -> float | None:
        """Waits for room for one call. With the shared budget the call is charged to the mall's
        row and the level it goes at is returned; if that does not answer within
        ``BUDGET_TIMEOUT_SECS``, this process's fallback share paces it instead (``None``)."""
        c = self._client
        if c.budget is not None:
            timer = c.pacers.timer
            take = c.budget.take_api_call(
                self.mall_id,
                size=max(c.settings.api_bucket_size - SHARED_HEADROOM, 1.0),
                drain_per_sec=c.settings.api_drain_per_sec,
                max_wait_secs=max(deadline - timer.now(), 0.0),
            )
            try:
                wait, level = await within(BUDGET_TIMEOUT_SECS, take)
            except Exception as error:  # noqa: BLE001 - whatever the failure, the call goes on
                logger.warning(
                    "the shared API budget of mall %s is unavailable (%s); pacing on this process's share",
                    self.mall_id,
                    _budget_failure(error),
                )
            else:
                if not math.isfinite(wait) or wait < 0:
                    raise PastDeadline
                c.metrics.record_paced("shared")
                if wait > 0:
                    await timer.sleep(wait)
                return max(level, 0.0) if math.isfinite(level) else 0.0
            c.metrics.record_paced("fallback")
        await self.pacer.acquire(deadline=deadline)
        return None

    async def _correct_shared(self, level: float | None, limit: LimitReport) -> None:
        """Corrects the shared budget when an answer shows more use than it held (calls from
        outside the fleet) or asks for a pause; otherwise costs nothing."""
        if self._client.budget is None or level is None:
            return
        used = None
        if limit.call_limit is not None:
            reported = min(float(limit.call_limit[0]), float(self._client.settings.api_bucket_size))
            used = reported if reported > level + 1.0 else None
        pause = float(limit.remain_secs) if limit.remain_secs is not None else None
        if used is not None or pause is not None:
            await self._observe_shared(used, pause)

    async def _share_limited(self, pause: float) -> None:
        """A 429: the bucket is full whatever the budget thought, and paused."""
        if self._client.budget is not None:
            await self._observe_shared(float(self._client.settings.api_bucket_size), min(pause, MAX_PAUSE_SECS))

    async def _observe_shared(self, used: float | None, pause: float | None) -> None:
        c = self._client
        if c.budget is None:
            return
        observe = c.budget.observe_api_limit(
            self.mall_id, used=used, drain_per_sec=c.settings.api_drain_per_sec, pause_secs=pause
        )
        try:
            await within(BUDGET_TIMEOUT_SECS, observe)
        except Exception as error:  # noqa: BLE001 - the next answer corrects it again
            logger.warning(
                "could not correct the shared API budget of mall %s (%s)", self.mall_id, _budget_failure(error)
            )

    def _headers(self, token: SecretStr) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {token.get_secret_value()}", "Accept": "application/json"}
        if self._client.settings.api_version is not None:
            headers["X-Cafe24-Api-Version"] = self._client.settings.api_version
        return headers

    def _backoff(self, failures: int) -> float:
        """Exponential backoff with equal jitter: half fixed, half random."""
        s = self._client.settings
        ceiling = min(s.api_backoff_ms * (1 << min(failures - 1, 16)), s.api_backoff_max_ms) / 1000
        return ceiling / 2 + ceiling / 2 * self._client.rng.random()

    async def get(self, path: str, *, params: Query | None = None) -> Any:
        return (await self.send("GET", path, params=params)).body

    async def products(self, **filters: str | int) -> list[Product]:
        """``GET /products`` with filters (``limit``, ``offset``, ``display``, ...)."""
        return _models(Product, await self._field("/products", "products", filters))

    async def products_count(self, **filters: str | int) -> int:
        return int(await self._field("/products/count", "count", filters))

    async def product(self, product_no: int) -> Product:
        return _model(Product, await self._field(f"/products/{product_no}", "product", {}))

    async def variants(self, product_no: int) -> list[Variant]:
        return _models(Variant, await self._field(f"/products/{product_no}/variants", "variants", {}))

    async def update_variant(self, product_no: int, variant_code: str, update: VariantUpdate) -> Variant:
        """``PUT /products/{no}/variants/{code}``: inventory and display of one variant."""
        body = {"shop_no": self.shop_no, "request": update.model_dump(exclude_none=True)}
        response = await self.send("PUT", f"/products/{product_no}/variants/{variant_code}", json_body=body)
        return _model(Variant, _take(response.body, "variant"))

    async def store(self) -> StoreInfo:
        return _model(StoreInfo, await self._field("/store", "store", {"shop_no": self.shop_no}))

    async def iter_products(self, **filters: str | int) -> AsyncIterator[list[Product]]:
        """Every product matching ``filters``, page by page, in ascending ``product_no`` and
        without duplicates: by ``offset`` up to Cafe24's cap of 5,000, then by
        ``since_product_no`` (which Cafe24 refuses to combine with offset, sort or order)."""
        _check_filters(filters, ("limit", "offset", "since_product_no", "sort", "order", "product_no"))
        offset: int | None = 0
        last_key: int | None = None
        while True:
            query: dict[str, str | int] = {**filters, "limit": PAGE_LIMIT}
            if offset is not None:
                query |= {"order": "asc", "offset": offset}
            else:
                query["since_product_no"] = last_key or 0
            items = _take_list(await self.get("/products", params=query), "products")
            fresh = []
            for item in items:
                key = item.get("product_no") if isinstance(item, dict) else None
                if not isinstance(key, int):
                    raise MalformedAnswer("a product without a numeric product_no")
                if last_key is None or key > last_key:
                    last_key = key
                    fresh.append(item)
            full = len(items) >= PAGE_LIMIT
            if full and not fresh:
                raise NoProgress("a full page of products brought nothing new; paging stopped")
            if fresh:
                yield _models(Product, fresh)
            if not full:
                return
            if offset is not None and offset + PAGE_LIMIT <= PRODUCTS_OFFSET_CAP:
                offset += PAGE_LIMIT
            else:
                offset = None

    async def iter_pages(
        self, path: str, *, offset_cap: int = DEFAULT_OFFSET_CAP, **filters: str | int
    ) -> AsyncIterator[list[Any]]:
        """Any list endpoint, by ``offset`` up to ``offset_cap``; items are the answer's array."""
        _check_filters(filters, ("limit", "offset"))
        admin_path(path)
        previous: list[Any] | None = None
        offset = 0
        while True:
            body = await self.get(path, params={**filters, "limit": PAGE_LIMIT, "offset": offset})
            arrays = [key for key, value in body.items() if isinstance(value, list)] if isinstance(body, dict) else []
            if not arrays:
                raise MalformedAnswer(f"no list in the answer of {path}")
            items: list[Any] = body[arrays[0]]
            full = len(items) >= PAGE_LIMIT
            if full and items == previous:
                raise NoProgress(f"the same page of {path} came back; paging stopped")
            previous = items
            if items:
                yield items
            if not full:
                return
            if offset + PAGE_LIMIT > offset_cap:
                logger.warning("offset cap reached on %s: later items cannot be listed by offset", path)
                return
            offset += PAGE_LIMIT

    async def _field(self, path: str, key: str, params: Mapping[str, str | int]) -> Any:
        return _take(await self.get(path, params=params), key)


_UNREADABLE = object()


def _budget_failure(error: Exception) -> str:
    """Why the shared budget failed, without the database's message (it may quote values)."""
    if isinstance(error, TimeoutError):
        return f"no answer within {BUDGET_TIMEOUT_SECS:g} s"
    return type(error).__name__


def _pairs(query: Query | None) -> Params:
    items = query.items() if isinstance(query, Mapping) else (query or ())
    return [(key, str(value)) for key, value in items]


def _json(content: bytes) -> Any:
    if not content:
        return None
    try:
        return json.loads(content)
    except ValueError:
        return _UNREADABLE


def _take(body: Any, key: str) -> Any:
    if not isinstance(body, dict) or key not in body:
        raise MalformedAnswer(f'no "{key}" in the answer')
    return body[key]


def _take_list(body: Any, key: str) -> list[Any]:
    items = _take(body, key)
    if not isinstance(items, list):
        raise MalformedAnswer(f'"{key}" is not a list')
    return items


def _model(model: type[M], value: Any) -> M:
    try:
        return model.model_validate(value)
    except ValidationError as error:
        raise MalformedAnswer(f"{model.__name__}: {error.error_count()} unexpected field(s)") from None


def _models(model: type[M], values: Any) -> list[M]:
    if not isinstance(values, list):
        raise MalformedAnswer(f"expected a list of {model.__name__}")
    return [_model(model, value) for value in values]


def _check_filters(filters: Mapping[str, object], reserved: Sequence[str]) -> None:
    for key in filters:
        if key in reserved:
            raise InvalidApiRequest(f"{key} is set by the pager; it cannot be a filter of a read of every page")
