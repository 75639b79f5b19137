"""GET /dashboard: the operator's page (server-rendered HTML + SVG, no CDN), and its
sign-in: a form that POSTs the key and sets a short-lived HttpOnly cookie."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from xsmoe.common import ledger
from xsmoe.service.auth import opens_reads, refuse_key_in_url, require_dashboard
from xsmoe.service.dashboard import session
from xsmoe.service.dashboard.data import DashboardData, VersionTraffic, manifests
from xsmoe.service.dashboard.login import login_page
from xsmoe.service.dashboard.page import render
from xsmoe.service.deps import Runtime, RuntimeDep, StateDep
from xsmoe.service.metrics import RECOMMEND
from xsmoe.service.redis_client import REDIS_ERRORS
from xsmoe.service.worker_status import (
    ModelEvent,
    WorkerStatus,
    read_model_events,
    read_status,
)

router = APIRouter(tags=["dashboard"])


@router.get(
    "/dashboard",
    response_class=HTMLResponse,
    dependencies=[Depends(require_dashboard)],
    summary="Operator dashboard",
)
async def dashboard(runtime: RuntimeDep, state: StateDep) -> HTMLResponse:
    """Serving version and its gate decision, quality per window, experts per stage
    across versions, utilization per expert, pruning and expansion, the worker's
    status, traffic by version and feedback not yet trained. In prod mode sign in at
    /dashboard/login (or send X-API-Key); a key in the URL is refused."""
    root = runtime.serving.root
    snapshots, windows = await asyncio.to_thread(lambda: (manifests(root), ledger.tail(root, 200)))
    online: dict[str, dict[str, float]] = {}
    lag: dict[str, int] = {}
    worker: WorkerStatus | None = None
    events: list[ModelEvent] = []
    redis_ok = False
    with contextlib.suppress(*REDIS_ERRORS):
        online = await runtime.store.online()
        lag = await runtime.store.lag()
        worker = await read_status(runtime.store.redis, runtime.keys)
        events = await read_model_events(runtime.store.redis, runtime.keys)
        redis_ok = True
    model = state.retriever.model
    data = DashboardData(
        version=state.version,
        manifest=state.manifest,
        items_indexed=len(state.retriever.catalog),
        swaps=runtime.serving.swaps,
        windows=windows,
        online=online,
        lag=lag,
        traffic=list(runtime.traffic.points),
        frozen=dict(model.config.frozen),
        worker=worker,
        model_events=events,
        by_version=by_version(runtime),
        redis_ok=redis_ok,
    )
    return HTMLResponse(render(data, snapshots))


def by_version(runtime: Runtime) -> dict[str, VersionTraffic]:
    """This replica's /v1 answers per serving version (the last few versions)."""
    out: dict[str, VersionTraffic] = {}
    for version, counts in runtime.metrics.requests.totals().items():
        t = out.setdefault(version, VersionTraffic())
        for (kind, status_class), n in counts.items():
            t.requests += n
            t.recommendations += n if kind == RECOMMEND else 0.0
            t.client_errors += n if status_class == "4xx" else 0.0
            t.server_errors += n if status_class == "5xx" else 0.0
    for version, counts in runtime.metrics.fallbacks.totals().items():
        out.setdefault(version, VersionTraffic()).fallbacks = sum(counts.values())
    return out


@router.get(
    "/dashboard/login",
    response_class=HTMLResponse,
    dependencies=[Depends(refuse_key_in_url)],
    summary="Dashboard sign-in form",
)
async def login_form(runtime: RuntimeDep) -> HTMLResponse:
    return HTMLResponse(login_page(runtime.settings.api.dashboard_session_hours))


@router.post(
    "/dashboard/login",
    response_class=HTMLResponse,
    response_model=None,
    summary="Sign in to the dashboard",
)
async def login(
    request: Request, runtime: RuntimeDep, key: Annotated[str, Form(max_length=1024)]
) -> HTMLResponse | RedirectResponse:
    """Checks the key (read, write or admin) and sets a cookie that opens the dashboard
    for `XSMOE_API__DASHBOARD_SESSION_HOURS`; the cookie holds no key."""
    api = runtime.settings.api
    if not opens_reads(api, key):
        page = login_page(api.dashboard_session_hours, "this key does not open the dashboard")
        return HTMLResponse(page, 403)
    seconds = int(api.dashboard_session_hours * 3600)
    response = RedirectResponse("/dashboard", 303)
    response.set_cookie(
        session.COOKIE,
        session.sign(api, int(time.time()) + seconds),
        max_age=seconds,
        path=session.PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/dashboard/logout", summary="Sign out of the dashboard")
async def logout() -> RedirectResponse:
    response = RedirectResponse("/dashboard/login", 303)
    response.delete_cookie(session.COOKIE, path=session.PATH, httponly=True, samesite="strict")
    return response
