"""Operator actions: roll the serving pointer back to an earlier snapshot."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from fastapi import APIRouter, Body, Depends

from xsmoe.model.snapshot_layout import SnapshotError
from xsmoe.service.auth import require_admin
from xsmoe.service.deps import RuntimeDep
from xsmoe.service.errors import Conflict, NotFound, StoreUnavailable
from xsmoe.service.openapi import errors, example, with_examples
from xsmoe.service.redis_client import REDIS_ERRORS
from xsmoe.service.schemas import RollbackDone, RollbackRequest
from xsmoe.service.serving import SwapFailed

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])

EXAMPLES = {"an earlier version": {"value": {"version": "v000001"}}}
DONE = {"version": "v000001", "previous": "v000002"}
UNKNOWN = "version: no snapshot v000009 in the snapshot store (have: v000001, v000002)"
REFUSED = (
    "version: snapshot v000003 did not load or validate (the server log says why); "
    "the pointer stays at v000002"
)


RESPONSES = {200: {"content": {"application/json": {"example": DONE}}}, **errors(404, 409, 503)}
with_examples(RESPONSES, 404, example("not_found", UNKNOWN, "version"))
with_examples(RESPONSES, 409, example("conflict", REFUSED, "version"))
with_examples(RESPONSES, 503, example("store_unavailable", "snapshot store unavailable; retry"))


@router.post(
    "/rollback",
    summary="Serve an earlier snapshot (moves the CURRENT pointer)",
    responses=RESPONSES,
)
async def rollback(
    body: Annotated[RollbackRequest, Body(openapi_examples=EXAMPLES)], runtime: RuntimeDep
) -> RollbackDone:
    """Moves the pointer (the store's and the Redis key), loads and validates the
    version here, and tells the other replicas. Unknown version: 404. A version that
    does not load is refused with 409 and the pointer goes back; an unreachable store
    is a 503 with Retry-After. Where the store is and why a version was refused are
    in the server log, not in the answer."""
    serving, store = runtime.serving, runtime.serving.store
    try:
        versions = await asyncio.to_thread(store.versions)
        if body.version not in versions:
            known = ", ".join(versions[-10:]) or "none"
            raise NotFound(
                f"version: no snapshot {body.version} in the snapshot store (have: {known})",
                field="version",
            )
        try:
            previous = await asyncio.to_thread(store.pointer)
        except SnapshotError:  # a pointer naming no version: what a rollback is for
            previous = None
        serving.failed.pop(body.version, None)  # an operator's explicit ask gets a fresh try
        # The store's pointer first, so its poll (the backstop) agrees with us.
        await asyncio.to_thread(store.set_pointer, body.version)
        try:
            await serving.load(body.version)
        except SwapFailed as exc:  # the reason (it names files) is logged by serving.load
            if previous is not None:
                await asyncio.to_thread(store.set_pointer, previous)
            log.warning("rollback to %s refused, pointer back at %s", body.version, previous)
            raise Conflict(
                f"version: snapshot {body.version} did not load or validate (the server "
                f"log says why); the pointer stays at {previous or 'nothing'}",
                field="version",
            ) from exc
    except OSError as exc:  # StoreError: the store did not answer
        log.warning("rollback: snapshot store %s did not answer: %s", store.url, exc)
        raise StoreUnavailable(
            "snapshot store unavailable; retry shortly", {"Retry-After": "5"}
        ) from exc
    try:
        await runtime.store.announce_snapshot(body.version)
    except REDIS_ERRORS as exc:  # replicas follow the store's pointer meanwhile
        log.warning("rollback to %s not announced on Redis: %s", body.version, exc)
    log.info("rolled back from %s to %s", previous, body.version)
    return RollbackDone(version=body.version, previous=previous)
