"""Operator actions: roll the serving pointer back to an earlier snapshot."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends

from model.snapshot import SnapshotError, current_version, list_versions, set_current
from service.auth import require_admin
from service.deps import RuntimeDep
from service.errors import Conflict, NotFound
from service.redis_client import REDIS_ERRORS
from service.schemas import RollbackDone, RollbackRequest
from service.serving import SwapFailed

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])


@router.post("/rollback", summary="Serve an earlier snapshot (moves the CURRENT pointer)")
async def rollback(body: RollbackRequest, runtime: RuntimeDep) -> RollbackDone:
    """Moves the pointer (file and Redis key), loads and validates the version here,
    and tells the other replicas. A version that does not load is refused with 409
    and the pointer goes back."""
    serving = runtime.serving
    if body.version not in list_versions(serving.root):
        known = ", ".join(list_versions(serving.root)[-10:]) or "none"
        raise NotFound(f"version: no snapshot {body.version} in {serving.root} (have: {known})")
    try:
        previous = current_version(serving.root)
    except SnapshotError:  # a pointer naming no version: what a rollback is for
        previous = None
    serving.failed.pop(body.version, None)  # an operator's explicit ask gets a fresh try
    set_current(serving.root, body.version)  # first, so the pointer poll agrees with us
    try:
        await serving.load(body.version)
    except SwapFailed as exc:
        if previous is not None:
            set_current(serving.root, previous)
        raise Conflict(f"version: {exc}") from exc
    try:
        await runtime.store.announce_snapshot(body.version)
    except REDIS_ERRORS as exc:  # replicas still see the pointer by polling
        log.warning("rollback to %s not announced on Redis: %s", body.version, exc)
    log.info("rolled back from %s to %s", previous, body.version)
    return RollbackDone(version=body.version, previous=previous)
