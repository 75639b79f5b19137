"""API keys: `X-API-Key` checked per route group.

dev mode: reads are open; writes and admin routes need their key only if one is set.
prod mode: every /v1 route needs a key (settings refuse prod without keys).
A write key also reads; the admin key opens everything. The dashboard's pages also
take the sign-in cookie (service.dashboard.session), never a key in the URL.
"""

from __future__ import annotations

import hmac
import time
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import APIKeyHeader
from pydantic import SecretStr

from xsmoe.service.dashboard import session
from xsmoe.service.errors import Forbidden, ServiceError, SignIn, Unauthorized
from xsmoe.service.settings import ApiSettings

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


def opens_reads(api: ApiSettings, key: str) -> bool:
    return _matches(key, api.read_key, api.write_key, api.admin_key)


async def refuse_key_in_url(
    query_key: Annotated[str | None, Query(alias="key", include_in_schema=False)] = None,
) -> None:
    """A key in the URL would land in access logs, proxies and browser history."""
    if query_key is not None:
        raise ServiceError(
            "key: an API key in the URL is refused (URLs are logged); sign in at "
            "/dashboard/login or send the X-API-Key header",
            field="key",
        )


async def require_dashboard(request: Request, key: KeyDep) -> None:
    """For the pages a browser opens: the X-API-Key header, or the sign-in cookie."""
    await refuse_key_in_url(request.query_params.get("key"))
    api = _api(request)
    if key is not None or api.mode != "prod":
        await require_read(request, key)
    elif not session.valid(api, request.cookies.get(session.COOKIE), time.time()):
        raise SignIn(
            "sign in at /dashboard/login (or send the X-API-Key header)",
            headers={"Location": "/dashboard/login"},
        )


async def require_write(request: Request, key: KeyDep) -> None:
    api = _api(request)
    needed = api.mode == "prod" or api.write_key is not None
    _check(key, "write", (api.write_key, api.admin_key), needed)


async def require_admin(request: Request, key: KeyDep) -> None:
    api = _api(request)
    needed = api.mode == "prod" or api.admin_key is not None
    _check(key, "admin", (api.admin_key,), needed)
