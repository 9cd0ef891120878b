"""Settings: one line naming the variable, never the value, never a secret in a repr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from auth.crypto import generate_key_entry
from config.settings import ConfigError, Settings, read_settings

ROOT = Path(__file__).resolve().parents[2]
VALID: dict[str, Any] = {
    "CAFE24_CLIENT_ID": "client-id",
    "CAFE24_CLIENT_SECRET": "client-secret-value",
    "CAFE24_REDIRECT_URI": "https://app.example.com/oauth/callback",
    "CAFE24_SCOPES": "mall.read_product mall.read_store,mall.read_product",
    "EXPECTED_STATE_SECRET": "s" * 40,
    "TOKEN_ENCRYPTION_KEYS": generate_key_entry("k1"),
    "DATABASE_URL": "postgresql://app:hunter2-password@db.internal/app",
}


def load(**changes: Any) -> Settings:
    values = {k: v for k, v in {**VALID, **changes}.items() if v is not None}
    return read_settings(lambda: Settings(_env_file=None, **values))


def test_valid_settings_load_with_the_contracts_defaults() -> None:
    s = load()
    assert s.scopes == ("mall.read_product", "mall.read_store")
    assert (s.state_ttl_secs, s.launch_hmac_required, s.http_timeout_secs, s.reserved_connections) == (600, True, 15, 2)
    assert s.base_url == "https://{mall_id}.cafe24api.com"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CAFE24_CLIENT_ID", None),
        ("CAFE24_CLIENT_ID", "has space"),
        ("CAFE24_REDIRECT_URI", "http://app.example.com/cb"),
        ("CAFE24_REDIRECT_URI", "https://app.example.com/cb#x"),
        ("CAFE24_SCOPES", "read_product"),
        ("CAFE24_BASE_URL", "http://{mall_id}.cafe24api.com"),
        ("CAFE24_BASE_URL", "https://cafe24api.com"),
        ("EXPECTED_STATE_SECRET", "short-secret"),
        ("TOKEN_ENCRYPTION_KEYS", "k1:AAAA"),
        ("CAFE24_STATE_TTL_SECS", "5"),
        ("CAFE24_HTTP_TIMEOUT_SECS", "1.5"),
        ("CAFE24_LAUNCH_HMAC_REQUIRED", "maybe"),
        ("DATABASE_URL", "sqlite:app.db"),
        ("CAFE24_ADMIN_TOKEN", "too-short"),
        ("CAFE24_API_VERSION", "2025-13-01"),
    ],
)
def test_a_bad_value_names_its_variable_and_never_its_value(variable: str, value: str | None) -> None:
    with pytest.raises(ConfigError) as refused:
        load(**{variable: value})
    assert refused.value.variable == variable
    assert str(refused.value).startswith(f"{variable}: ")
    if value and variable != "CAFE24_SCOPES":  # scopes are not secret: the runtime names them too
        assert value not in str(refused.value)


def test_without_postgresql_start_up_names_database_url() -> None:
    with pytest.raises(ConfigError) as refused:
        load(DATABASE_URL=None)
    assert refused.value.variable == "DATABASE_URL"
    s = load(DATABASE_URL=None, PGHOST="db.internal", PGUSER="app", PGPASSWORD="pw-secret")
    assert "dbname=app" in s.conninfo() and "host=db.internal" in s.conninfo()


def test_values_are_trimmed_and_empty_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in VALID.items():
        monkeypatch.setenv(key, f"  {value}  ")
    monkeypatch.setenv("CAFE24_STATE_TTL_SECS", "   ")
    s = read_settings(lambda: Settings(_env_file=None))
    assert s.client_id == "client-id" and s.state_ttl_secs == 600


def test_no_secret_shows_in_reprs_or_errors() -> None:
    s = load(CAFE24_ADMIN_TOKEN="a" * 40)
    shown = repr(s) + str(s)
    for secret in ("client-secret-value", "s" * 40, "hunter2", VALID["TOKEN_ENCRYPTION_KEYS"], "a" * 40):
        assert secret not in shown
    with pytest.raises(ValidationError) as raw:
        Settings(_env_file=None, **{**VALID, "EXPECTED_STATE_SECRET": "leaky-short"})
    assert "leaky-short" not in str(raw.value)


def test_a_server_with_a_missing_setting_exits_2_with_one_line(tmp_path: Path) -> None:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CAFE24_", "PG", "DATABASE_", "TOKEN_", "EXPECTED_"))
    }
    env.update({k: v for k, v in VALID.items() if k != "EXPECTED_STATE_SECRET"})
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "main:app", "--port", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: EXPECTED_STATE_SECRET: not set (required)"]
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr
