"""Settings of the Cafe24 OAuth module, named and validated as docs/contract.md §2 says.

Values come from the environment, then a ``.env`` file, then the optional flat TOML file named
by ``CAFE24_CONFIG_FILE``; the environment wins. Every value is trimmed and an empty one counts
as unset. A missing or malformed value raises :class:`ConfigError`, whose one line names the
variable and never shows its value.
"""

from __future__ import annotations

import ipaddress
import math
import os
import tomllib
from collections.abc import Callable
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Self, TypeVar
from urllib.parse import urlsplit

from psycopg.conninfo import make_conninfo
from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from auth.crypto import KeyRing, KeyRingError
from auth.ids import InvalidMallId, parse_mall_id, parse_scopes

S = TypeVar("S", bound=BaseSettings)

CONFIG_FILE_VAR = "CAFE24_CONFIG_FILE"
DEFAULT_BASE_URL = "https://{mall_id}.cafe24api.com"
MIN_STATE_SECRET_BYTES = 32
MIN_ADMIN_TOKEN_CHARS = 32
_LOOPBACK_NAMES = frozenset({"localhost"})


class ConfigError(Exception):
    """A setting is missing or malformed: ``VARIABLE: reason``, never the value."""

    def __init__(self, variable: str, reason: str) -> None:
        super().__init__(f"{variable}: {reason}")
        self.variable = variable
        self.reason = reason

    @classmethod
    def from_validation(cls, error: ValidationError) -> ConfigError:
        first = error.errors(include_input=False, include_url=False)[0]
        variable = str(first["loc"][0]) if first["loc"] else "configuration"
        if first["type"] == "missing":
            return cls(variable, "not set (required)")
        return cls(variable, str(first["msg"]).removeprefix("Value error, "))


def whole_number(low: int, high: int) -> BeforeValidator:
    """An unsigned decimal integer within ``[low, high]`` (out of range is an error, not a clamp)."""

    def parse(value: object) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and value.isascii() and value.isdigit():
            number = int(value)
        else:
            number = low - 1
        if not low <= number <= high:
            raise ValueError(f"must be a whole number from {low} to {high}")
        return number

    return BeforeValidator(parse)


def positive_rate(high: float, unit: str) -> BeforeValidator:
    """A decimal number above 0 and at most ``high``."""

    def parse(value: object) -> float:
        try:
            number = float(value) if isinstance(value, str | int | float) else math.nan
        except ValueError:
            number = math.nan
        if isinstance(value, bool) or not 0 < number <= high:
            raise ValueError(f"must be a number of {unit}, above 0 and at most {high:g}")
        return number

    return BeforeValidator(parse)


def _parse_flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be true or false")


Flag = Annotated[bool, BeforeValidator(_parse_flag)]


class _Trimmed(PydanticBaseSettingsSource):
    """Trims every value of another source and drops the empty ones (contract §2.1)."""

    def __init__(self, settings_cls: type[BaseSettings], inner: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._inner = inner

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for key, value in self._inner().items():
            if isinstance(value, str):
                value = value.strip()
                if not value:
                    continue
            values[key] = value
        return values


class _TomlFile(PydanticBaseSettingsSource):
    """The flat TOML file named by ``CAFE24_CONFIG_FILE``; keys are the variable names."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        named = os.environ.get(CONFIG_FILE_VAR, "").strip()
        if not named:
            return {}
        try:
            table = tomllib.loads(Path(named).read_text(encoding="utf-8"))
        except OSError as error:
            raise ConfigError(CONFIG_FILE_VAR, f"cannot read {named}: {error.strerror}") from None
        except tomllib.TOMLDecodeError:
            raise ConfigError(CONFIG_FILE_VAR, f"{named} is not valid TOML") from None
        values: dict[str, str] = {}
        for key, value in table.items():
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, str | int):
                text = str(value)
            elif isinstance(value, list) and all(isinstance(item, str) for item in value):
                text = ",".join(value)
            else:
                raise ConfigError(CONFIG_FILE_VAR, f"{key}: expected a string, number, boolean or list")
            if text.strip():
                values[key.upper()] = text.strip()
        return values


class EnvironmentSettings(BaseSettings):
    """Base of every settings class of the module: the contract's sources and rules."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            _Trimmed(settings_cls, env_settings),
            _Trimmed(settings_cls, dotenv_settings),
            _TomlFile(settings_cls),
        )


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_base_url(raw: str) -> str:
    template = raw.rstrip("/")
    if template.count("{mall_id}") != 1:
        raise ValueError("must contain {mall_id} exactly once")
    try:
        sample = urlsplit(template.replace("{mall_id}", "mall"))
        _ = sample.port
    except ValueError:
        raise ValueError("is not a valid URL") from None
    if not sample.hostname:
        raise ValueError("is not a valid URL")
    if sample.query or sample.fragment or sample.username or sample.password:
        raise ValueError("must not carry a query, a fragment or credentials")
    if sample.scheme == "http" and not _is_loopback(sample.hostname):
        raise ValueError("must use https (http is allowed only for loopback hosts)")
    if sample.scheme not in {"http", "https"}:
        raise ValueError("must use https (http is allowed only for loopback hosts)")
    return template


def _check_redirect_uri(raw: str) -> str:
    try:
        url = urlsplit(raw)
        _ = url.port
    except ValueError:
        raise ValueError("is not an absolute URL") from None
    if not url.scheme or not url.hostname:
        raise ValueError("is not an absolute URL")
    if url.fragment or raw.endswith("#"):
        raise ValueError("must not have a #fragment")
    loopback = url.hostname in {"127.0.0.1", "::1", "localhost"}
    if url.scheme == "https" or (url.scheme == "http" and loopback):
        return raw
    raise ValueError("must be https (http only for loopback)")


class Settings(EnvironmentSettings):
    """Everything the module needs to serve, exchange, refresh and call the Admin API."""

    # The app and Cafe24.
    client_id: str = Field(validation_alias="CAFE24_CLIENT_ID")
    client_secret: SecretStr = Field(validation_alias="CAFE24_CLIENT_SECRET")
    redirect_uri: str = Field(validation_alias="CAFE24_REDIRECT_URI")
    scopes: Annotated[tuple[str, ...], NoDecode] = Field(validation_alias="CAFE24_SCOPES")
    base_url: str = Field(DEFAULT_BASE_URL, validation_alias="CAFE24_BASE_URL")
    api_version: str | None = Field(None, validation_alias="CAFE24_API_VERSION")

    # State and launch.
    state_secret: SecretStr = Field(validation_alias="EXPECTED_STATE_SECRET")
    state_ttl_secs: Annotated[int, whole_number(30, 3600)] = Field(600, validation_alias="CAFE24_STATE_TTL_SECS")
    launch_hmac_required: Flag = Field(True, validation_alias="CAFE24_LAUNCH_HMAC_REQUIRED")
    launch_window_secs: Annotated[int, whole_number(10, 86_400)] = Field(
        600, validation_alias="CAFE24_LAUNCH_WINDOW_SECS"
    )
    max_pending_codes: Annotated[int, whole_number(1, 1000)] = Field(
        5, validation_alias="CAFE24_MAX_PENDING_CODES_PER_MALL"
    )

    # Database (PostgreSQL only).
    database_url: SecretStr | None = Field(None, validation_alias="DATABASE_URL")
    pg_host: str | None = Field(None, validation_alias="PGHOST")
    pg_port: Annotated[int, whole_number(0, 65_535)] | None = Field(None, validation_alias="PGPORT")
    pg_user: str | None = Field(None, validation_alias="PGUSER")
    pg_password: SecretStr | None = Field(None, validation_alias="PGPASSWORD")
    pg_database: str | None = Field(None, validation_alias="PGDATABASE")
    pg_sslmode: str | None = Field(None, validation_alias="PGSSLMODE")
    db_max_connections: Annotated[int, whole_number(1, 1000)] = Field(10, validation_alias="DATABASE_MAX_CONNECTIONS")
    db_reserved_connections: Annotated[int, whole_number(0, 999)] | None = Field(
        None, validation_alias="DATABASE_RESERVED_CONNECTIONS"
    )
    db_lock_connections: Annotated[int, whole_number(1, 1000)] = Field(4, validation_alias="DATABASE_LOCK_CONNECTIONS")
    db_acquire_timeout_secs: Annotated[int, whole_number(1, 120)] = Field(
        5, validation_alias="DATABASE_ACQUIRE_TIMEOUT_SECS"
    )

    # HTTP.
    listen_addr: str = Field("127.0.0.1:8080", validation_alias="LISTEN_ADDR")
    http_max_body_bytes: Annotated[int, whole_number(1024, 16 << 20)] = Field(
        65_536, validation_alias="HTTP_MAX_BODY_BYTES"
    )
    http_request_timeout_secs: Annotated[int, whole_number(1, 600)] = Field(
        10, validation_alias="HTTP_REQUEST_TIMEOUT_SECS"
    )

    # Token lifecycle.
    token_encryption_keys: SecretStr = Field(validation_alias="TOKEN_ENCRYPTION_KEYS")
    refresh_margin_secs: Annotated[int, whole_number(0, 3600)] = Field(
        300, validation_alias="CAFE24_REFRESH_MARGIN_SECS"
    )
    code_lifetime_secs: Annotated[int, whole_number(5, 600)] = Field(60, validation_alias="CAFE24_CODE_LIFETIME_SECS")
    http_timeout_secs: Annotated[int, whole_number(1, 120)] = Field(15, validation_alias="CAFE24_HTTP_TIMEOUT_SECS")
    keepalive_window_secs: Annotated[int, whole_number(0, 1_123_200)] = Field(
        259_200, validation_alias="CAFE24_KEEPALIVE_WINDOW_SECS"
    )
    keepalive_interval_secs: Annotated[int, whole_number(1, 86_400)] = Field(
        3600, validation_alias="CAFE24_KEEPALIVE_INTERVAL_SECS"
    )
    keepalive_concurrency: Annotated[int, whole_number(1, 256)] = Field(
        4, validation_alias="CAFE24_KEEPALIVE_CONCURRENCY"
    )
    keepalive_rate: Annotated[float, positive_rate(10_000, "refreshes per second")] = Field(
        5.0, validation_alias="CAFE24_KEEPALIVE_RATE"
    )
    refresh_lock_wait_secs: Annotated[int, whole_number(1, 600)] = Field(
        30, validation_alias="CAFE24_REFRESH_LOCK_WAIT_SECS"
    )

    # Admin API client and proxy.
    api_timeout_secs: Annotated[int, whole_number(1, 300)] = Field(30, validation_alias="CAFE24_API_TIMEOUT_SECS")
    api_max_attempts: Annotated[int, whole_number(1, 20)] = Field(6, validation_alias="CAFE24_API_MAX_ATTEMPTS")
    api_deadline_secs: Annotated[int, whole_number(1, 3600)] = Field(120, validation_alias="CAFE24_API_DEADLINE_SECS")
    api_backoff_ms: Annotated[int, whole_number(1, 60_000)] = Field(500, validation_alias="CAFE24_API_BACKOFF_MS")
    api_backoff_max_ms: Annotated[int, whole_number(1, 600_000)] = Field(
        30_000, validation_alias="CAFE24_API_BACKOFF_MAX_MS"
    )
    api_bucket_size: Annotated[int, whole_number(1, 100_000)] = Field(40, validation_alias="CAFE24_API_BUCKET_SIZE")
    api_drain_per_sec: Annotated[float, positive_rate(100_000, "calls per second")] = Field(
        2.0, validation_alias="CAFE24_API_DRAIN_PER_SEC"
    )
    admin_token: SecretStr | None = Field(None, validation_alias="CAFE24_ADMIN_TOKEN")

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, value: str) -> str:
        if len(value) > 128 or not all(0x21 <= ord(c) <= 0x7E for c in value):
            raise ValueError("must be printable ASCII without spaces")
        return value

    @field_validator("redirect_uri")
    @classmethod
    def _redirect_uri(cls, value: str) -> str:
        return _check_redirect_uri(value)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return _check_base_url(value)

    @field_validator("scopes", mode="before")
    @classmethod
    def _scopes(cls, value: object) -> tuple[str, ...]:
        if isinstance(value, list | tuple):
            value = ",".join(str(item) for item in value)
        if not isinstance(value, str):
            raise ValueError("must be scopes separated by commas or spaces")
        return parse_scopes(value)

    @field_validator("api_version")
    @classmethod
    def _api_version(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            if len(value) != 10:
                raise ValueError
            date.fromisoformat(value)
        except ValueError:
            raise ValueError("must be a date like 2025-12-01") from None
        return value

    @field_validator("state_secret")
    @classmethod
    def _state_secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value().encode()) < MIN_STATE_SECRET_BYTES:
            raise ValueError(f"must be at least {MIN_STATE_SECRET_BYTES} characters (try: openssl rand -hex 32)")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        raw = value.get_secret_value()
        if raw.startswith(("sqlite:", "sqlite://")):
            raise ValueError("SQLite is not supported by this module; use a postgres:// URL")
        if not raw.startswith(("postgres://", "postgresql://")):
            raise ValueError("must start with postgres:// or postgresql://")
        try:
            urlsplit(raw).port  # noqa: B018 - parsed only to fail early
        except ValueError:
            raise ValueError("is not a valid postgres:// URL") from None
        return value

    @field_validator("pg_sslmode")
    @classmethod
    def _sslmode(cls, value: str | None) -> str | None:
        modes = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
        if value is not None and value not in modes:
            raise ValueError(f"must be one of {', '.join(modes)}")
        return value

    @field_validator("listen_addr")
    @classmethod
    def _listen_addr(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        try:
            ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
            if not (port.isascii() and port.isdigit() and int(port) <= 65_535):
                raise ValueError
        except ValueError:
            raise ValueError("must be an address like 0.0.0.0:8080") from None
        return value

    @field_validator("token_encryption_keys")
    @classmethod
    def _keys(cls, value: SecretStr) -> SecretStr:
        try:
            KeyRing.parse(value.get_secret_value())
        except KeyRingError as error:
            raise ValueError(str(error)) from None
        return value

    @field_validator("admin_token")
    @classmethod
    def _admin_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_ADMIN_TOKEN_CHARS:
            raise ValueError(f"must be at least {MIN_ADMIN_TOKEN_CHARS} characters (try: openssl rand -hex 32)")
        return value

    @model_validator(mode="after")
    def _together(self) -> Self:
        if self.database_url is None and not any(
            (self.pg_host, self.pg_port, self.pg_user, self.pg_password, self.pg_database)
        ):
            raise ConfigError(
                "DATABASE_URL",
                "is not set (nor PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE); "
                "this module needs PostgreSQL, SQLite is not supported",
            )
        if self.db_max_connections > 1 and self.reserved_connections >= self.db_max_connections:
            raise ConfigError(
                "DATABASE_RESERVED_CONNECTIONS",
                "must be less than DATABASE_MAX_CONNECTIONS (background work needs one)",
            )
        if self.api_backoff_max_ms < self.api_backoff_ms:
            raise ConfigError("CAFE24_API_BACKOFF_MAX_MS", "must not be below CAFE24_API_BACKOFF_MS")
        return self

    @property
    def reserved_connections(self) -> int:
        if self.db_reserved_connections is not None:
            return self.db_reserved_connections
        return max(self.db_max_connections // 4, 1)

    @property
    def key_ring(self) -> KeyRing:
        return KeyRing.parse(self.token_encryption_keys.get_secret_value())

    def conninfo(self) -> str:
        """The libpq connection string. It may hold a password: never log it."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        user = self.pg_user or "postgres"
        params: dict[str, Any] = {
            "host": self.pg_host or "localhost",
            "port": self.pg_port if self.pg_port is not None else 5432,
            "user": user,
            "dbname": self.pg_database or user,
        }
        if self.pg_password is not None:
            params["password"] = self.pg_password.get_secret_value()
        if self.pg_sslmode is not None:
            params["sslmode"] = self.pg_sslmode
        return make_conninfo("", **params)

    def endpoint(self, mall_id: str, path: str) -> str:
        """``{base}{path}`` for a mall; the mall id is validated first (it goes into a host name)."""
        try:
            mall = parse_mall_id(mall_id)
        except InvalidMallId as error:
            raise ValueError(str(error)) from None
        return self.base_url.replace("{mall_id}", mall) + path


def read_settings(factory: Callable[[], S]) -> S:
    """Reads a settings class; a problem becomes one :class:`ConfigError` naming the variable
    (pydantic's own error would show the value, so it is never let out)."""
    try:
        return factory()
    except ValidationError as error:
        raise ConfigError.from_validation(error) from None


def load_settings() -> Settings:
    return read_settings(Settings)


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once: the FastAPI dependency (override it in tests)."""
    return load_settings()
