"""Does the OpenAPI document tell the truth? Every response any FastAPI app sends
during the service tests (TestClient or a live server) is recorded as (method,
route template, status); at the end of each test, each one must be documented for
its route in that app's `app.openapi()`. A new route, or a new status of an old
one, is checked as soon as a test makes it answer.

Not checked: unknown paths (404) and methods (405), routes outside the document
(the docs pages, their assets), and what the HTTP server refuses before the app
sees the request (431, a stalled header).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi import routing as fastapi_routing
from starlette.routing import Match

from xsmoe.service.metrics import Message, Receive, Scope, Send

Observed = tuple[str, str, int]  # method, route template, status

# Statuses that routes return but do not declare yet: gaps in the document, listed
# so they are seen. test_openapi fails once one is documented, so the list only
# shrinks: remove an entry when its route declares it.
KNOWN_GAPS: set[Observed] = {
    ("POST", "/v1/items", 409),
    ("GET", "/v1/items/{item_id}", 404),
    ("DELETE", "/v1/items/{item_id}", 404),
    ("POST", "/dashboard/login", 303),
    ("POST", "/dashboard/login", 403),
    ("POST", "/dashboard/logout", 303),
}


def _routes(app: FastAPI) -> Iterator[Any]:
    flatten = getattr(fastapi_routing, "iter_route_contexts", None)  # lazy includes
    yield from flatten(app.routes) if flatten else app.routes


def route_template(app: FastAPI, scope: Scope) -> str | None:
    """The template of the documented route the router sends `scope` to, if any."""
    for route in _routes(app):
        match, _ = route.matches(scope)
        if match == Match.FULL:
            original = getattr(route, "original_route", route)
            if isinstance(original, fastapi_routing.APIRoute) and original.include_in_schema:
                return str(route.path_format)
            return None
    return None  # an unknown path or method (404, 405)


def documented(schema: dict[str, Any], method: str, path: str, status: int) -> bool:
    responses = schema["paths"][path][method.lower()]["responses"]
    return bool({str(status), f"{str(status)[0]}XX", "default"} & responses.keys())


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: list[tuple[FastAPI, str, str, int]] = []
        self.reported: set[Observed] = set()  # each gap once, at the first test that shows it
        self.schemas: weakref.WeakKeyDictionary[FastAPI, dict[str, Any]] = (
            weakref.WeakKeyDictionary()
        )

    def record(self, app: FastAPI, scope: Scope, status: int) -> None:
        path = route_template(app, scope)
        if path is not None:
            with self.lock:
                self.seen.append((app, scope["method"], path, status))

    def undocumented(self) -> list[Observed]:
        """What was answered since the last call and is not in the document."""
        with self.lock:
            seen, self.seen = self.seen, []
        gaps: list[Observed] = []
        for app, method, path, status in seen:
            observed = (method, path, status)
            if observed in self.reported or observed in KNOWN_GAPS:
                continue
            schema = self.schemas.get(app)
            if schema is None:
                schema = self.schemas[app] = app.openapi()
            if not documented(schema, method, path, status):
                self.reported.add(observed)
                gaps.append(observed)
        return gaps


@pytest.fixture(scope="session")
def response_recorder() -> Iterator[Recorder]:
    """Instruments FastAPI itself (not the app under test), so every app built in the
    session reports what it answered."""
    recorder = Recorder()
    call = FastAPI.__call__

    async def recording_call(self: FastAPI, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await call(self, scope, receive, send)
            return

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                recorder.record(self, scope, int(message["status"]))
            await send(message)

        await call(self, scope, receive, recording_send)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FastAPI, "__call__", recording_call)
        yield recorder


@pytest.fixture(autouse=True)
def openapi_tells_the_truth(response_recorder: Recorder) -> Iterator[None]:
    yield
    gaps = response_recorder.undocumented()
    if gaps:
        listed = "\n".join(f"  {m} {p} -> {s}" for m, p, s in sorted(gaps))
        pytest.fail(
            "answered but not in the OpenAPI document (declare it with "
            f"responses=errors(...) from xsmoe.service.openapi):\n{listed}",
            pytrace=False,
        )
