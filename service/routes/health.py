"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import contextlib
import math
from typing import Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from xsmoe.service.deps import RuntimeDep
from xsmoe.service.openapi import RETRY_AFTER
from xsmoe.service.redis_client import REDIS_ERRORS

router = APIRouter(tags=["health"])


class Readiness(BaseModel):
    """/readyz's body, ready or not (not an error body: probes read `status`)."""

    status: Literal["ready", "not ready"]
    version: str | None = Field(None, description="the serving snapshot, when ready")
    detail: str | None = Field(None, description="why not ready, and what to do")
    redis: Literal["ok", "unavailable"] = Field(description="reported, not required")


READY = {"status": "ready", "version": "v000001", "redis": "ok"}
NOT_READY = {
    "status": "not ready",
    "detail": "no snapshot loaded yet: run `xsmoe bootstrap` or wait for the worker",
    "redis": "ok",
}
READYZ_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"model": Readiness, "content": {"application/json": {"example": READY}}},
    503: {
        "model": Readiness,
        "description": "No snapshot loaded yet: retry after Retry-After seconds",
        "content": {"application/json": {"example": NOT_READY}},
        "headers": RETRY_AFTER,
    },
}
METRICS_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "Prometheus text exposition format",
        "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
    }
}


@router.get("/healthz", summary="Alive")
async def healthz() -> dict[str, str]:
    return {"status": "alive"}


@router.get(
    "/readyz",
    summary="Ready: a snapshot is loaded",
    response_model=None,
    responses=READYZ_RESPONSES,
)
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """503 until a snapshot is loaded. Redis is pinged and reported (`redis`: ok or
    unavailable) but does not make the replica unready: every replica shares the
    one Redis, and recommendations are still answered from memory without it."""
    state = runtime.serving.current
    redis_state = "ok" if await runtime.store.ping() else "unavailable"
    if state is None:  # where it looks is in the log, not in an answer to anyone
        body = {**NOT_READY, "redis": redis_state}
        retry = str(math.ceil(runtime.settings.serving.poll_seconds))
        return JSONResponse(body, 503, headers={"Retry-After": retry})
    return JSONResponse({"status": "ready", "version": state.version, "redis": redis_state})


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses=METRICS_RESPONSES,
)
async def metrics(runtime: RuntimeDep) -> Response:
    v = runtime.serving.user_vectors
    for kind, value in (("hit", v.hits), ("miss", v.misses), ("batch", v.batches)):
        runtime.metrics.user_vectors.labels(kind).set(value)
    state = runtime.serving.current
    if state is not None:
        with contextlib.suppress(*REDIS_ERRORS):
            online = (await runtime.store.online()).get(state.version, {})
            for name in ("hr@10", "ndcg@10", "n"):
                runtime.metrics.online.labels(name).set(online.get(name, 0.0))
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
