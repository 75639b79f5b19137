"""What the OpenAPI document says a route can answer besides its 2xx: the real
error body and every status the route returns.

A status only one route returns is declared where the route is:

    @router.get("/{item_id}", responses=errors(404), ...)

The statuses that follow from what a route is are added to the document for every
route by `document_common_errors`, so no route can forget them: its auth
dependency (401, 403), the serving snapshot (503), parameters or a body (422), a
method whose body is read (413, 408) and 500.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi import routing as fastapi_routing
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from xsmoe.service import auth, deps


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


def example(code: str, detail: str, field: str | None = None) -> dict[str, Any]:
    """An error body as the handlers send it (one about a field names it under `fields`)."""
    body: dict[str, Any] = {"error": code, "detail": detail}
    if field is not None:
        body["fields"] = [{"field": field, "message": detail.removeprefix(f"{field}: ")}]
    return body


# Status -> (description, the bodies it can carry). The examples are the real codes.
_STATUSES: dict[int, tuple[str, tuple[dict[str, Any], ...]]] = {
    303: (
        "Not signed in: sent on to the sign-in form (Location)",
        (example("sign_in", "sign in at /dashboard/login (or send the X-API-Key header)"),),
    ),
    400: (
        "Bad request: a body that cannot be parsed, or a key in the URL",
        (
            example("bad_request", "body: could not be parsed; send UTF-8 JSON (or a form)"),
            example("bad_request", "key: an API key in the URL is refused (it is logged)", "key"),
        ),
    ),
    401: (
        "No API key (X-API-Key)",
        (example("unauthorized", "missing X-API-Key header: this route needs the write key"),),
    ),
    403: (
        "The key may not do this",
        (example("forbidden", "this X-API-Key is not valid for admin routes"),),
    ),
    404: ("Not found", (example("not_found", "no item 'x-1'"),)),
    408: (
        "The body did not arrive in time",
        (example("request_timeout", "request body incomplete: nothing new for 30 s"),),
    ),
    409: (
        "Conflicts with the current state",
        (example("conflict", "item_id: 'x-1' exists or was deleted; ids are never reused"),),
    ),
    413: (
        "Body or image too large",
        (example("payload_too_large", "request body is limited to 1048576 bytes"),),
    ),
    422: (
        "Invalid input: `fields` lists each field",
        (example("invalid_input", "body.k: Input should be less than or equal to 200", "body.k"),),
    ),
    500: (
        "Server misconfigured or a bug (the server log says more)",
        (
            example("internal", "unexpected server error; see the logs"),
            example(
                "redis_misconfigured",
                "Redis configuration error (MovedError): a Redis Cluster needs "
                "XSMOE_REDIS_URL=redis+cluster://host:port,...",
            ),
        ),
    ),
    503: (
        "Not ready or a dependency is down: retry after Retry-After seconds",
        (
            example("redis_unavailable", "Redis unavailable; retry shortly"),
            example("no_model", "no snapshot loaded yet: run `xsmoe bootstrap` or wait"),
            example("store_unavailable", "snapshot store unavailable; retry shortly"),
        ),
    ),
}
_HEADERS: dict[int, dict[str, Any]] = {
    303: {"Location": {"description": "the sign-in form", "schema": {"type": "string"}}},
    503: {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
}
RETRY_AFTER = _HEADERS[503]
REF = "#/components/schemas/"


def _named(bodies: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """OpenAPI `examples`, each named by its code (and its field, if it has one)."""
    out: dict[str, Any] = {}
    for body in bodies:
        fields = body.get("fields") or [{}]
        name = ": ".join(filter(None, (body["error"], fields[0].get("field"))))
        if name in out:
            name = f"{name} ({len(out) + 1})"
        out[name] = {"value": body}
    return out


def _examples(status: int) -> dict[str, Any]:
    return _named(_STATUSES[status][1])


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status with the error schema and examples."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {
            "model": ErrorBody,
            "description": _STATUSES[status][0],
            "content": {"application/json": {"examples": _examples(status)}},
        }
        if status in _HEADERS:
            entry["headers"] = _HEADERS[status]
        out[status] = entry
    return out


def with_examples(
    responses: dict[int | str, dict[str, Any]], status: int, *bodies: dict[str, Any]
) -> dict[int | str, dict[str, Any]]:
    """`responses` with the examples of `status` replaced by this route's own bodies."""
    media = responses[status]["content"]["application/json"]
    media["examples"] = _named(bodies)
    return responses


def _documented(status: int) -> dict[str, Any]:
    """What `errors(status)` becomes in the document (for statuses added centrally)."""
    media = {"schema": {"$ref": REF + "ErrorBody"}, "examples": _examples(status)}
    entry: dict[str, Any] = {
        "description": _STATUSES[status][0],
        "content": {"application/json": media},
    }
    if status in _HEADERS:
        entry["headers"] = _HEADERS[status]
    return entry


def operation_id(route: APIRoute) -> str:
    """The route function's name (post_feedback, rollback): stable, no path in it, so
    a generated client's method names do not change when a prefix does."""
    return route.name


# What a dependency can answer, wherever a route uses it.
_BY_DEPENDENCY: dict[Callable[..., Any], tuple[int, ...]] = {
    auth.require_read: (401, 403),
    auth.require_write: (401, 403),
    auth.require_admin: (401, 403),
    auth.require_dashboard: (303, 400, 401, 403),
    auth.refuse_key_in_url: (400,),
    deps.get_state: (503,),
}
# service.limits.BodyLimit reads (and limits) the body of every other method.
_BODY_UNREAD = {"GET", "HEAD", "DELETE", "OPTIONS"}
_FASTAPI_422 = REF + "HTTPValidationError"


def api_routes(app: FastAPI) -> Iterator[Any]:
    """Every API route with its full path, however deep its router was included."""
    flatten = getattr(fastapi_routing, "iter_route_contexts", None)  # FastAPI's lazy includes
    for route in flatten(app.routes) if flatten else app.routes:
        if isinstance(getattr(route, "original_route", route), APIRoute):
            yield route


def _calls(dependant: Any) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def common_statuses(route: Any, method: str, operation: dict[str, Any]) -> set[int]:
    """The statuses `route` answers by what it is, not by what its function does."""
    out = {500}
    for call in set(_calls(route.dependant)):
        out.update(_BY_DEPENDENCY.get(call, ()))
    if {"parameters", "requestBody"} & operation.keys() or "422" in operation["responses"]:
        out.add(422)  # the validation handler's body, not FastAPI's HTTPValidationError
    if "requestBody" in operation:
        out.add(400)  # a body FastAPI cannot even read (JSON that is not UTF-8)
    if method not in _BODY_UNREAD:
        out |= {408, 413}
    return out


def _declare(schema: dict[str, Any], routes: Iterable[Any]) -> None:
    for route in routes:
        operations = schema.get("paths", {}).get(route.path_format, {})
        for method in route.methods:
            operation = operations.get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for status in common_statuses(route, method, operation):
                declared = responses.get(str(status))
                if declared is None or _FASTAPI_422 in str(declared):
                    responses[str(status)] = _documented(status)
            operation["responses"] = dict(sorted(responses.items()))
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    if "ErrorBody" not in schemas:
        body = ErrorBody.model_json_schema(ref_template=REF + "{model}")
        schemas.update(body.pop("$defs", {}))
        schemas["ErrorBody"] = body
    if _FASTAPI_422 not in str(schema.get("paths")):  # FastAPI's own 422 body: unused now
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)


def document_common_errors(app: FastAPI) -> None:
    """Make `app.openapi()` add the common statuses to every operation."""
    generate = app.openapi
    declared: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        schema = generate()
        if not declared or declared[0] is not schema:  # FastAPI built it anew
            _declare(schema, api_routes(app))
            declared[:] = [schema]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
