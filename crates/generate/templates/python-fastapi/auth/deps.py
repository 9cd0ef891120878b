"""FastAPI dependencies of the module, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from auth.cafe24_client import Cafe24Client
from auth.runtime import Cafe24Runtime
from auth.token_manager import TokenManager
from config.settings import Settings, get_settings

SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_runtime(request: Request) -> Cafe24Runtime:
    """The running module, from the lifespan's state (``{"cafe24": runtime}``)."""
    runtime = getattr(request.state, "cafe24", None)
    if not isinstance(runtime, Cafe24Runtime):
        raise RuntimeError("the Cafe24 runtime is not running: enter cafe24_runtime() in the app's lifespan")
    return runtime


RuntimeDep = Annotated[Cafe24Runtime, Depends(get_runtime)]


def get_token_manager(runtime: RuntimeDep) -> TokenManager:
    return runtime.tokens


def get_cafe24_client(runtime: RuntimeDep) -> Cafe24Client:
    return runtime.client


TokenManagerDep = Annotated[TokenManager, Depends(get_token_manager)]
Cafe24ClientDep = Annotated[Cafe24Client, Depends(get_cafe24_client)]
