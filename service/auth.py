"""API keys: `X-API-Key` checked per route group.

dev mode: reads are open; writes and admin routes need their key only if one is set.
prod mode: every /v1 route needs a key (settings refuse prod without keys).
A write key also reads; the admin key opens everything.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import APIKeyHeader
from pydantic import SecretStr

from service.errors import Forbidden, Unauthorized
from service.settings import ApiSettings

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")
KeyDep = Annotated[str | None, Depends(api_key_header)]


def _matches(given: str, *keys: SecretStr | None) -> bool:
    return any(
        k is not None and hmac.compare_digest(given.encode(), k.get_secret_value().encode())
        for k in keys
    )


def _check(given: str | None, role: str, keys: tuple[SecretStr | None, ...], needed: bool) -> None:
    if not needed:
        return
    if not given:
        raise Unauthorized(f"missing X-API-Key header: this route needs the {role} key")
    if not _matches(given, *keys):
        raise Forbidden(f"this X-API-Key is not valid for {role} routes")


def _api(request: Request) -> ApiSettings:
    api: ApiSettings = request.app.state.runtime.settings.api
    return api


async def require_read(request: Request, key: KeyDep) -> None:
    api = _api(request)
    _check(key, "read", (api.read_key, api.write_key, api.admin_key), api.mode == "prod")


async def require_read_query(
    request: Request, key: KeyDep, query_key: Annotated[str | None, Query(alias="key")] = None
) -> None:
    """For pages a browser opens: the key may come as `?key=` instead of a header."""
    await require_read(request, key or query_key)


async def require_write(request: Request, key: KeyDep) -> None:
    api = _api(request)
    needed = api.mode == "prod" or api.write_key is not None
    _check(key, "write", (api.write_key, api.admin_key), needed)


async def require_admin(request: Request, key: KeyDep) -> None:
    api = _api(request)
    needed = api.mode == "prod" or api.admin_key is not None
    _check(key, "admin", (api.admin_key,), needed)
