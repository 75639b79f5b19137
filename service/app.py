"""`create_app(settings)`: assembles the API; the lifespan opens Redis, loads the
current snapshot and starts the snapshot watcher and the catalog sync."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from collections.abc import AsyncIterator

import faiss
import torch
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from xsmoe.common.redis_url import redacted
from xsmoe.common.snapshot_store import open_store, serving_dir
from xsmoe.model.feature_build import CatalogEncoder
from xsmoe.model.image_prep import limit_decoding
from xsmoe.service import docs, errors, openapi, redis_client, threads
from xsmoe.service.dashboard.traffic import SAMPLE_EVERY_S, TrafficSampler
from xsmoe.service.deps import Runtime
from xsmoe.service.item_encoder import ItemEncoder
from xsmoe.service.limits import BodyLimit
from xsmoe.service.metrics import LatencyMiddleware, Metrics
from xsmoe.service.request_id import RequestIdMiddleware
from xsmoe.service.routes import (
    admin,
    dashboard,
    feedback,
    health,
    items,
    model_info,
    recommend,
    users,
)
from xsmoe.service.serving import Serving
from xsmoe.service.settings import ServiceSettings
from xsmoe.service.store import Store
from xsmoe.service.sync import CatalogSync
from xsmoe.service.watcher import SnapshotWatcher

SHUTDOWN_TIMEOUT_S = 5.0  # per step of the lifespan's shutdown

log = logging.getLogger(__name__)

DESCRIPTION = """
Recommendations over the current XSMoE snapshot. Feedback goes to a Redis Stream
and into the user's history at once; items added here are recommendable at once;
new snapshots are swapped in without a failed request.

Writes need `X-API-Key` (the write key); admin routes need the admin key; in
prod mode reads need a key too.
"""


async def _sample_forever(traffic: TrafficSampler) -> None:
    while True:
        traffic.sample()
        await asyncio.sleep(SAMPLE_EVERY_S)


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or ServiceSettings()
    metrics = Metrics()
    encoder = CatalogEncoder(
        settings.text.to_config(), settings.image.to_config(), cache_dir=settings.cache_dir
    )
    specs = encoder.specs()  # refuses a bad encoder setting now, naming it
    limit_decoding(settings.api.max_image_pixels)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        torch.set_num_threads(settings.serving.threads)
        faiss.omp_set_num_threads(settings.serving.threads)
        pool = threads.install()
        client = redis_client.connect(
            settings.redis_url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=10
        )
        keys = settings.keys
        store = Store(
            client, keys, settings.serving.wait_replicas, settings.serving.wait_timeout_ms
        )
        snapshots = open_store(settings)
        serving = Serving(
            snapshots, serving_dir(snapshots, settings), settings.serving, metrics, specs
        )
        traffic = TrafficSampler(metrics)
        metrics.serving_version = lambda: serving.current.version if serving.current else None
        runtime = Runtime(
            settings, keys, store, serving, ItemEncoder(encoder, specs), metrics, traffic
        )
        app.state.runtime = runtime
        if settings.api.mode == "dev" and not (settings.api.write_key and settings.api.admin_key):
            log.warning("dev mode without write/admin keys: writes and admin routes are open")
        watcher = SnapshotWatcher(serving, client, keys.snapshot_channel, keys.snapshot_pointer)
        sync = CatalogSync(serving, store, settings.serving.sync_block_ms)
        tasks = [asyncio.create_task(sync.run_forever(), name="catalog-sync")]
        with contextlib.suppress(asyncio.TimeoutError):  # no Redis yet: serve, sync later
            await asyncio.wait_for(sync.synced.wait(), timeout=5)
        await watcher.check()  # the current snapshot, before the first request
        tasks += [
            asyncio.create_task(watcher.poll_forever(), name="snapshot-poll"),
            asyncio.create_task(watcher.listen_forever(), name="snapshot-listen"),
            asyncio.create_task(_sample_forever(traffic), name="traffic-sampler"),
        ]
        log.info(
            "serving %s from %s, loaded from %s (Redis %s, prefix %s)",
            serving.current.version if serving.current else "nothing yet",
            snapshots.url,
            serving.root,
            redacted(settings.redis_url),
            keys.prefix,
        )
        try:
            yield
        finally:
            # Bounded shutdown: a task stuck past cancellation (e.g. awaiting a thread)
            # is logged and left behind rather than holding the process open.
            for task in tasks:
                task.cancel()
            _, stuck = await asyncio.wait(tasks, timeout=SHUTDOWN_TIMEOUT_S)
            for task in stuck:  # where it waits: the stack says why it did not stop
                where = "".join(traceback.format_stack(task.get_stack(limit=8)[-1]))
                log.warning(
                    "shutdown: %s did not stop in %.0f s; it waits in:\n%s",
                    task.get_name(),
                    SHUTDOWN_TIMEOUT_S,
                    where,
                )
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.aclose(), timeout=SHUTDOWN_TIMEOUT_S)
            if stuck:  # a read that ignored its cancellation ends with its connection
                _, stuck = await asyncio.wait(stuck, timeout=SHUTDOWN_TIMEOUT_S)
                if stuck:
                    log.error("shutdown: %s still running", sorted(t.get_name() for t in stuck))
            threads.release(pool)

    app = FastAPI(
        title="xsmoe",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # service.docs serves them with their assets, offline
        redoc_url=None,
        generate_unique_id_function=openapi.operation_id,
    )
    errors.install(app)
    docs.install(app)
    openapi.document_common_errors(app)
    # users after recommend: /v1/users/{id}/recommendations is matched before /v1/users/{id}
    for module in (recommend, users, feedback, items, model_info, admin, health, dashboard):
        app.include_router(module.router)
    upload_limit = settings.api.max_image_bytes * 4 // 3 + (64 << 10)
    app.add_middleware(
        BodyLimit,
        json_limit=settings.api.max_body_bytes,
        upload_limit=upload_limit,
        timeout=settings.api.body_timeout_seconds,
    )
    app.add_middleware(LatencyMiddleware, metrics=metrics)
    if settings.api.cors_origins:  # a preflight is answered before auth or limits
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["X-API-Key", "Content-Type", "X-Request-ID"],
            expose_headers=["Retry-After", "X-Request-ID"],
            max_age=600,
        )
    app.add_middleware(RequestIdMiddleware)  # outermost: every line of a request has its id
    return app
