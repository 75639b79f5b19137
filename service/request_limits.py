"""Per-deployment limits that request schemas check, set for each request from the
settings (a schema class is built once, at import; a deployment's limits at start)."""

from __future__ import annotations

from fastapi import Request

from xsmoe.service.schemas import MAX_EVENTS


async def apply_limits(request: Request) -> None:
    """A router dependency of the routes whose bodies the limits bound: runs before the
    body is validated, in the request's context."""
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is not None:
        MAX_EVENTS.set(runtime.settings.api.max_events)
