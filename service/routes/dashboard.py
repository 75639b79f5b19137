"""GET /dashboard: the operator's page (server-rendered HTML + SVG, no CDN)."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse
from redis.exceptions import RedisError

from common import ledger
from service.auth import require_read_query
from service.dashboard.page import DashboardData, manifests, render
from service.deps import RuntimeDep, StateDep

router = APIRouter(tags=["dashboard"], dependencies=[Depends(require_read_query)])


@router.get("/dashboard", response_class=HTMLResponse, summary="Operator dashboard")
async def dashboard(runtime: RuntimeDep, state: StateDep) -> HTMLResponse:
    """Serving version and its gate decision, quality per window, experts per stage
    across versions, utilization per expert, traffic and feedback lag. In prod mode
    open it with `?key=<read key>`."""
    root = runtime.serving.root
    snapshots, windows = await asyncio.to_thread(
        lambda: (manifests(root), ledger.tail(root, 200))
    )
    online: dict[str, dict[str, float]] = {}
    lag: dict[str, int] = {}
    with contextlib.suppress(RedisError, OSError):
        online = await runtime.store.online()
        lag = await runtime.store.lag()
    data = DashboardData(
        version=state.version,
        manifest=state.manifest,
        items_indexed=len(state.retriever.catalog),
        swaps=runtime.serving.swaps,
        windows=windows,
        online=online,
        lag=lag,
        traffic=list(runtime.traffic.points),
    )
    return HTMLResponse(render(data, snapshots))
