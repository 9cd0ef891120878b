"""The app with webhook verification configured (api-key), for the webhook tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from config.settings import Settings, get_settings
from main import create_app
from tests.conftest import running
from webhooks.settings import WebhookSettings, get_webhook_settings
from webhooks.store import WebhookEvent

WEBHOOK_KEY = "test-webhook-key-0123456789"


@pytest.fixture
def webhook_settings() -> WebhookSettings:
    return WebhookSettings(
        _env_file=None,
        CAFE24_WEBHOOK_AUTH="api-key",
        CAFE24_WEBHOOK_KEY=WEBHOOK_KEY,
        CAFE24_WEBHOOK_TRACE_HEADER="X-Trace-Id",
    )


@pytest.fixture
def handled() -> list[WebhookEvent]:
    return []


@pytest.fixture
async def client(
    settings: Settings, webhook_settings: WebhookSettings, handled: list[WebhookEvent]
) -> AsyncIterator[httpx.AsyncClient]:
    async def remember(event: WebhookEvent) -> None:
        handled.append(event)

    app = create_app(webhook_handlers=[remember])
    app.dependency_overrides[get_settings] = lambda: settings
    app.dependency_overrides[get_webhook_settings] = lambda: webhook_settings
    async with running(app) as client:
        yield client
