"""Feedback in: appended to the stream, the user's history updated before the reply."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends

from xsmoe.common.events import FeedbackEvent
from xsmoe.service.auth import require_write
from xsmoe.service.deps import Runtime, RuntimeDep
from xsmoe.service.errors import InvalidInput
from xsmoe.service.openapi import errors, example, with_examples
from xsmoe.service.request_limits import apply_limits
from xsmoe.service.schemas import AcceptedEvent, FeedbackAccepted, FeedbackBatch, FeedbackPayload

# apply_limits before the body is validated: the batch size limit is the deployment's.
router = APIRouter(
    prefix="/v1",
    tags=["feedback"],
    dependencies=[Depends(require_write), Depends(apply_limits)],
)

EXAMPLES = {
    "one event": {"value": {"user_id": "196", "item_id": "242", "type": "click"}},
    "a batch": {
        "value": {
            "events": [
                {"event_id": "e-1", "user_id": "196", "item_id": "242", "type": "click"},
                {"event_id": "e-2", "user_id": "196", "item_id": "51", "type": "dislike"},
            ]
        }
    },
}
ACCEPTED = {
    "accepted": 1,
    "duplicates": 1,
    "events": [
        {"event_id": "e-1", "stream_id": "1764748800000-0", "duplicate": False},
        {"event_id": "e-2", "stream_id": "1764748790000-0", "duplicate": True},
    ],
}
RESPONSES = {202: {"content": {"application/json": {"example": ACCEPTED}}}, **errors(503)}
with_examples(  # Redis down, or the write not on the replicas asked for yet: retry, deduplicated
    RESPONSES,
    503,
    example("redis_unavailable", "Redis unavailable; retry shortly"),
    example(
        "redis_unavailable",
        "Redis unavailable (feedback reached 0 of 1 replicas in 200 ms; retry with the same "
        "event_id); retry shortly",
    ),
)


async def _unknown_items(runtime: Runtime, events: list[FeedbackEvent]) -> list[str]:
    """Fields naming items this deployment has never had (checked locally, then Redis)."""
    state = runtime.serving.current
    if state is None:
        return []  # nothing to check against yet; the worker dead-letters unknown items
    catalog, mirror = state.retriever.catalog, runtime.serving.catalog
    suspects = {e.item_id for e in events if e.item_id not in catalog}
    suspects -= mirror.items.keys() | mirror.deleted
    if suspects:  # maybe added through another replica a moment ago
        ordered = sorted(suspects)
        known = await runtime.store.redis.smismember(runtime.keys.items, ordered)
        suspects = {i for i, k in zip(ordered, known, strict=True) if not k}
    return [f"events[{n}].item_id" for n, e in enumerate(events) if e.item_id in suspects]


@router.post(
    "/feedback",
    status_code=202,
    summary="Post one feedback event or a batch",
    responses=RESPONSES,
)
async def post_feedback(
    payload: Annotated[FeedbackPayload, Body(openapi_examples=EXAMPLES)], runtime: RuntimeDep
) -> FeedbackAccepted:
    """Appends to the feedback stream (the worker trains on it) and updates the user's
    history at once: the very next recommendation conditions on the item and excludes
    it. A repeated `event_id` is accepted once. Redis down: 503 with Retry-After."""
    events = payload.events if isinstance(payload, FeedbackBatch) else [payload]
    unknown = await _unknown_items(runtime, events)
    if unknown:
        listed = ", ".join(unknown[:10])
        raise InvalidInput(
            f"unknown item ids in {listed}: add items with POST /v1/items before feedback"
        )
    ttl = runtime.settings.serving
    accepted = await runtime.store.append_feedback(
        events, runtime.settings.api.max_history, ttl.event_ttl_seconds, ttl.user_ttl_seconds
    )
    for event, result in zip(events, accepted, strict=True):
        outcome = "duplicate" if result.duplicate else "accepted"
        runtime.metrics.feedback.labels(event.type, outcome).inc()
    duplicates = sum(a.duplicate for a in accepted)
    return FeedbackAccepted(
        accepted=len(accepted) - duplicates,
        duplicates=duplicates,
        events=[
            AcceptedEvent(event_id=a.event_id, stream_id=a.stream_id, duplicate=a.duplicate)
            for a in accepted
        ],
    )
