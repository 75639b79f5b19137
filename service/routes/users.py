"""Users: what is stored of one (history, dislikes, events not yet trained), and its
erasure."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Path

from xsmoe.common.events import Identifier
from xsmoe.service.auth import require_read, require_write
from xsmoe.service.deps import RuntimeDep
from xsmoe.service.errors import NotFound
from xsmoe.service.openapi import errors
from xsmoe.service.query import forbid_unknown_query
from xsmoe.service.schemas import UserErased, UserOut

router = APIRouter(prefix="/v1/users", tags=["users"], dependencies=[Depends(forbid_unknown_query)])
UserIdPath = Annotated[Identifier, Path(examples=["196"])]
log = logging.getLogger(__name__)

RETAINED = (
    "Model weights and item vectors of snapshots already trained on this user's events "
    "keep what they learned (they are not per-user data and cannot be un-trained; a "
    "later snapshot trained without the events replaces them). Aggregate popularity "
    "counts keep the user's clicks, unattributed. {kept}"
)


@router.get(
    "/{user_id:path}",
    dependencies=[Depends(require_read)],
    summary="What is stored of a user",
    operation_id="get_user",
    responses=errors(401, 403, 404, 422, 503),
)
async def get_user(user_id: UserIdPath, runtime: RuntimeDep) -> UserOut:
    """History (oldest first), dislikes, and the number of accepted events the worker
    has not trained on yet. 404 when nothing is stored."""
    state = await runtime.store.users.state(user_id)
    if state.empty:
        raise NotFound(f"no user {user_id!r}: nothing stored (no feedback, or erased)")
    return UserOut(
        user_id=user_id,
        history=state.history,
        disliked=state.disliked,
        pending_events=state.pending_events,
        pending_events_exact=state.pending_exact,
    )


@router.delete(
    "/{user_id:path}",
    dependencies=[Depends(require_write)],
    summary="Erase a user",
    operation_id="delete_user",
    responses=errors(401, 403, 404, 422, 503),
)
async def delete_user(user_id: UserIdPath, runtime: RuntimeDep) -> UserErased:
    """Removes the user's history, dislikes, the worker's training context, their
    dead-lettered events and their accepted events no worker has read yet (those are
    then never trained on). Events a worker has already read are kept (they may be in a
    window being trained) and said so in `retained`. 404 when nothing is stored."""
    erasure = await runtime.store.users.erase(user_id)
    if erasure.empty:
        raise NotFound(f"no user {user_id!r}: nothing stored (no feedback, or erased)")
    # Counts only: the log must not keep what was just erased.
    log.info(
        "user erased: %s, %d events kept (read by a worker)", erasure.erased, erasure.kept_events
    )
    kept = (
        f"{erasure.kept_events} events already read by the worker stay in its current "
        "window and will be trained on; erase again after it to remove its context."
        if erasure.kept_events
        else "No event of the user is waiting for training."
    )
    if not erasure.complete:
        kept += " The streams were too long to scan in one request: erase again."
    return UserErased(user_id=user_id, erased=erasure.erased, retained=RETAINED.format(kept=kept))
