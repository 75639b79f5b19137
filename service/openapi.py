"""What the OpenAPI document says a route can answer besides its 2xx: the real
error body and every status the route returns, declared where the route is.

    @router.get("/{item_id}", responses=errors(401, 403, 404, 503), ...)
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class FieldError(BaseModel):
    field: str = Field(description="the request field at fault, e.g. events[3].item_id")
    message: str = Field(description="what was wrong and what is allowed")


class ErrorBody(BaseModel):
    """Every 4xx/5xx body. `error` is a stable machine code, `detail` a sentence."""

    error: str = Field(description="machine code, e.g. not_found, invalid_input")
    detail: str = Field(description="what was wrong and what is allowed")
    fields: list[FieldError] | None = Field(
        None, description="each offending request field (validation errors)"
    )


# Status -> (description, an example body). The examples are the real codes.
_STATUSES: dict[int, tuple[str, str, str]] = {
    400: ("Bad request", "bad_request", "the request cannot be served as sent"),
    401: ("No or wrong API key (X-API-Key)", "unauthorized", "X-API-Key: missing or wrong"),
    403: ("The key may not do this", "forbidden", "this route needs the admin key"),
    404: ("Not found", "not_found", "no item 'x-1'"),
    409: ("Conflicts with the current state", "conflict", "item_id: 'x-1' was deleted"),
    413: ("Body or image too large", "payload_too_large", "body: over 1048576 bytes"),
    422: ("Invalid input: `fields` lists each field", "invalid_input", "k: must be <= 200"),
    500: ("Server misconfigured or a bug", "internal", "unexpected server error; see the logs"),
    503: (
        "Not ready or a dependency is down: retry after Retry-After seconds",
        "redis_unavailable",
        "Redis unavailable; retry shortly",
    ),
}
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status with the error schema and an example."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        description, code, detail = _STATUSES[status]
        entry: dict[str, Any] = {
            "model": ErrorBody,
            "description": description,
            "content": {"application/json": {"example": {"error": code, "detail": detail}}},
        }
        if status == 503:
            entry["headers"] = RETRY_AFTER
        out[status] = entry
    return out
