"""Operator actions: roll the serving pointer back to an earlier snapshot."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Depends

from xsmoe.model.snapshot import SnapshotError
from xsmoe.service.auth import require_admin
from xsmoe.service.deps import RuntimeDep
from xsmoe.service.errors import Conflict, NotFound, StoreUnavailable
from xsmoe.service.redis_client import REDIS_ERRORS
from xsmoe.service.schemas import RollbackDone, RollbackRequest
from xsmoe.service.serving import SwapFailed

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])


@router.post("/rollback", summary="Serve an earlier snapshot (moves the CURRENT pointer)")
async def rollback(body: RollbackRequest, runtime: RuntimeDep) -> RollbackDone:
    """Moves the pointer (the store's and the Redis key), loads and validates the
    version here, and tells the other replicas. A version that does not load is
    refused with 409 and the pointer goes back; an unreachable store is a 503."""
    serving, store = runtime.serving, runtime.serving.store
    try:
        versions = await asyncio.to_thread(store.versions)
        if body.version not in versions:
            known = ", ".join(versions[-10:]) or "none"
            raise NotFound(f"version: no snapshot {body.version} in {store.url} (have: {known})")
        try:
            previous = await asyncio.to_thread(store.pointer)
        except SnapshotError:  # a pointer naming no version: what a rollback is for
            previous = None
        serving.failed.pop(body.version, None)  # an operator's explicit ask gets a fresh try
        # The store's pointer first, so its poll (the backstop) agrees with us.
        await asyncio.to_thread(store.set_pointer, body.version)
        try:
            await serving.load(body.version)
        except SwapFailed as exc:
            if previous is not None:
                await asyncio.to_thread(store.set_pointer, previous)
            raise Conflict(f"version: {exc}") from exc
    except OSError as exc:  # StoreError: the store did not answer
        raise StoreUnavailable(
            f"snapshot store: {exc}; retry shortly", {"Retry-After": "5"}
        ) from exc
    try:
        await runtime.store.announce_snapshot(body.version)
    except REDIS_ERRORS as exc:  # replicas follow the store's pointer meanwhile
        log.warning("rollback to %s not announced on Redis: %s", body.version, exc)
    log.info("rolled back from %s to %s", previous, body.version)
    return RollbackDone(version=body.version, previous=previous)
