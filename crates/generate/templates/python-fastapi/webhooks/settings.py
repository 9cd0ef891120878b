"""Webhook settings (contract §2.2, "Webhooks"). Cafe24 does not document how deliveries are
authenticated, so verification is configured, and unset means every delivery is refused."""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from config.settings import ConfigError, EnvironmentSettings, read_settings, whole_number

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
WebhookAuth = Literal["api-key", "hmac-hex", "hmac-base64", "insecure-none"]
MIN_KEY_CHARS = 16
_HEADER = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)


def _networks(value: object) -> tuple[IpNetwork, ...]:
    if isinstance(value, tuple | list):
        return tuple(ipaddress.ip_network(item) for item in value)
    networks = []
    for part in str(value).split(","):
        if not part.strip():
            continue
        try:
            networks.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError:
            raise ValueError("must be comma-separated IP addresses or CIDR blocks") from None
    return tuple(networks)


class WebhookSettings(EnvironmentSettings):
    auth: str | None = Field(None, validation_alias="CAFE24_WEBHOOK_AUTH")
    key: SecretStr | None = Field(None, validation_alias="CAFE24_WEBHOOK_KEY")
    header_name: str | None = Field(None, validation_alias="CAFE24_WEBHOOK_HEADER")
    allowed_senders: Annotated[tuple[IpNetwork, ...], NoDecode] = Field(
        (), validation_alias="CAFE24_WEBHOOK_ALLOWED_SENDERS"
    )
    trusted_proxies: Annotated[tuple[IpNetwork, ...], NoDecode] = Field((), validation_alias="CAFE24_TRUSTED_PROXIES")
    trace_header: str | None = Field(None, validation_alias="CAFE24_WEBHOOK_TRACE_HEADER")
    max_attempts: Annotated[int, whole_number(1, 100)] = Field(8, validation_alias="CAFE24_WEBHOOK_MAX_ATTEMPTS")

    @field_validator("auth")
    @classmethod
    def _auth(cls, value: str | None) -> str | None:
        if value not in (None, "api-key", "hmac-hex", "hmac-base64", "insecure-none"):
            raise ValueError("must be api-key, hmac-hex, hmac-base64 or insecure-none")
        return value

    @field_validator("header_name", "trace_header")
    @classmethod
    def _header(cls, value: str | None) -> str | None:
        if value is not None and not _HEADER.fullmatch(value):
            raise ValueError("must be a header name")
        return value

    @field_validator("allowed_senders", "trusted_proxies", mode="before")
    @classmethod
    def _ranges(cls, value: object) -> tuple[IpNetwork, ...]:
        return _networks(value)

    @model_validator(mode="after")
    def _key_when_needed(self) -> Self:
        if self.auth in ("api-key", "hmac-hex", "hmac-base64"):
            if self.key is None:
                raise ConfigError("CAFE24_WEBHOOK_KEY", "not set (required by CAFE24_WEBHOOK_AUTH)")
            if len(self.key.get_secret_value()) < MIN_KEY_CHARS:
                raise ConfigError("CAFE24_WEBHOOK_KEY", f"must be at least {MIN_KEY_CHARS} characters")
        return self

    @property
    def header(self) -> str:
        """The header carrying the key or MAC (Cafe24 does not document it)."""
        if self.header_name is not None:
            return self.header_name
        return "X-Api-Key" if self.auth == "api-key" else "X-Cafe24-Hmac-Sha256"


def load_webhook_settings() -> WebhookSettings:
    return read_settings(WebhookSettings)


@lru_cache
def get_webhook_settings() -> WebhookSettings:
    """The FastAPI dependency (override it in tests)."""
    return load_webhook_settings()
