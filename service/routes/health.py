"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from xsmoe.service.deps import RuntimeDep
from xsmoe.service.redis_client import REDIS_ERRORS

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Alive")
async def healthz() -> dict[str, str]:
    return {"status": "alive"}


@router.get("/readyz", summary="Ready: a snapshot is loaded", response_model=None)
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """503 until a snapshot is loaded. Redis is pinged and reported (`redis`: ok or
    unavailable) but does not make the replica unready: every replica shares the
    one Redis, and recommendations are still answered from memory without it."""
    state = runtime.serving.current
    redis_state = "ok" if await runtime.store.ping() else "unavailable"
    if state is None:
        detail = f"no snapshot loaded from {runtime.serving.root}"
        return JSONResponse({"status": "not ready", "detail": detail, "redis": redis_state}, 503)
    return JSONResponse({"status": "ready", "version": state.version, "redis": redis_state})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
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
