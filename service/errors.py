"""Domain errors and their one mapping to HTTP: every error body is {error, detail}.

`detail` says what was wrong and what is allowed, and never names a server path or
host (those go to the log); validation errors, and domain errors about one field,
also list each offending field under `fields`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import (
    AskError,
    ClusterDownError,
    RedisClusterException,
    RedisError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ServiceError(Exception):
    status = 400
    code = "bad_request"

    def __init__(
        self, detail: str, headers: dict[str, str] | None = None, field: str | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers
        self.field = field  # the request field at fault, listed under `fields`


class Unauthorized(ServiceError):
    status, code = 401, "unauthorized"


class SignIn(ServiceError):
    """A browser page without a valid sign-in: sent on to the sign-in form."""

    status, code = 303, "sign_in"


class Forbidden(ServiceError):
    status, code = 403, "forbidden"


class NotFound(ServiceError):
    status, code = 404, "not_found"


class Conflict(ServiceError):
    status, code = 409, "conflict"


class PayloadTooLarge(ServiceError):
    status, code = 413, "payload_too_large"


class InvalidInput(ServiceError):
    status, code = 422, "invalid_input"


class NoModel(ServiceError):
    status, code = 503, "no_model"


class StoreUnavailable(ServiceError):
    status, code = 503, "store_unavailable"


def error_body(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "detail": detail, **extra}


def _field(loc: Sequence[int | str]) -> str:
    parts = [str(p) for p in loc]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out


def describe_validation(errors: Sequence[Any]) -> tuple[str, list[dict[str, str]]]:
    fields = []
    for err in errors:
        message = str(err.get("msg", "invalid"))
        ctx = err.get("ctx") or {}
        if "expected" in ctx and "expected" not in message:
            message += f" (allowed: {ctx['expected']})"
        fields.append({"field": _field(err.get("loc", ())), "message": message})
    detail = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:10])
    if len(fields) > 10:
        detail += f"; and {len(fields) - 10} more"
    return detail, fields


_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}
# FastAPI's 400 for a body it could not read at all (e.g. JSON that is not UTF-8).
FASTAPI_UNPARSED = "There was an error parsing the body"
_UNPARSED = "body: could not be parsed; send UTF-8 JSON (or a form)"

_MISCONFIGURED = ("CROSSSLOT", "cluster support disabled", "not enabled")


def is_misconfigured(exc: Exception) -> bool:
    """A Redis error that names the deployment's shape, not an outage: a cluster
    reached through a single-server URL answers MOVED, a single server reached as a
    cluster refuses cluster commands. A cluster slot in failover (CLUSTERDOWN,
    TRYAGAIN, a slot not covered yet) is an outage: retry."""
    if isinstance(exc, SlotNotCoveredError | ClusterDownError | TryAgainError):
        return False
    if isinstance(exc, RedisClusterException | AskError):  # MOVED and ASK: AskError
        return True
    return isinstance(exc, ResponseError) and any(m in str(exc) for m in _MISCONFIGURED)


def install(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service(_: Request, exc: ServiceError) -> JSONResponse:
        extra = {"fields": [{"field": exc.field, "message": exc.detail}]} if exc.field else {}
        body = error_body(exc.code, exc.detail, **extra)
        return JSONResponse(body, exc.status, headers=exc.headers)

    @app.exception_handler(RedisError)
    @app.exception_handler(RedisClusterException)
    async def _redis(request: Request, exc: Exception) -> JSONResponse:
        # redis-py's messages name hosts, ports and socket paths: they go to the log.
        where = f"{request.method} {request.url.path}"
        if is_misconfigured(exc):  # retrying cannot help: say what to change
            log.error("Redis configuration error on %s: %s", where, exc)
            body = error_body(
                "redis_misconfigured",
                f"Redis configuration error ({type(exc).__name__}): a Redis Cluster needs "
                "XSMOE_REDIS_URL=redis+cluster://host:port,...; a single server or a "
                "Sentinel set needs redis:// or redis+sentinel://",
            )
            return JSONResponse(body, 500)
        log.warning("Redis unavailable on %s: %s", where, exc)
        # Our own Redis errors (e.g. not replicated yet) are written for the client.
        why = f" ({exc})" if type(exc).__module__.startswith("xsmoe.") else ""
        # A write that could not be stored is refused, never half-accepted: retry it.
        body = error_body("redis_unavailable", f"Redis unavailable{why}; retry shortly")
        return JSONResponse(body, 503, headers={"Retry-After": "1"})

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail, fields = describe_validation(exc.errors())
        return JSONResponse(error_body("invalid_input", detail, fields=fields), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        detail = _UNPARSED if exc.detail == FASTAPI_UNPARSED else str(exc.detail)
        return JSONResponse(error_body(code, detail), exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("internal", "unexpected server error; see the logs"), 500)
