"""What next? Recommendations for a stored user, a session's items, or both."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from xsmoe.common.events import Identifier
from xsmoe.service.auth import require_read
from xsmoe.service.deps import Runtime, RuntimeDep, StateDep
from xsmoe.service.redis_client import REDIS_ERRORS
from xsmoe.service.schemas import MAX_K, RecommendationList, RecommendRequest, ScoredItem
from xsmoe.service.state import ServingState

router = APIRouter(prefix="/v1", tags=["recommendations"], dependencies=[Depends(require_read)])

MAX_LISTED = 10


async def recommend(
    runtime: Runtime, state: ServingState, request: RecommendRequest
) -> RecommendationList:
    warnings: list[str] = []
    history: list[str] = []
    disliked: set[str] = set()
    if request.user_id is not None:
        try:
            history, disliked = await runtime.store.user_state(
                request.user_id, runtime.settings.api.max_history
            )
        except REDIS_ERRORS:
            warnings.append("stored history unavailable (Redis unreachable): used item_ids only")
    history += request.item_ids
    retriever = state.retriever
    rows, _ = retriever.history_rows(history)
    vector = await runtime.serving.user_vectors.vector(retriever, rows) if rows else None
    result = retriever.recommend(
        history,
        request.k,
        exclude_seen=request.exclude_seen,
        exclude=[*request.exclude_item_ids, *disliked],
        popular=runtime.serving.popular() if vector is None else (),
        vector=vector,
    )
    if result.unknown_ids:
        unknown = list(dict.fromkeys(result.unknown_ids))
        listed = ", ".join(unknown[:MAX_LISTED]) + (" ..." if len(unknown) > MAX_LISTED else "")
        warnings.append(f"{len(unknown)} unknown item ids ignored: {listed}")
    if result.fallback:
        runtime.metrics.fallbacks.inc()
    return RecommendationList(
        items=[ScoredItem(item_id=r.item_id, score=r.score) for r in result.items],
        model_version=state.version,
        fallback="popular" if result.fallback else None,
        warnings=warnings,
    )


@router.post("/recommendations", summary="Recommend items for a user and/or recent items")
async def post_recommendations(
    body: RecommendRequest, runtime: RuntimeDep, state: StateDep
) -> RecommendationList:
    """Top k items. With `user_id`, the stored history is used, then `item_ids` (newest
    last). No usable history at all: popular items, marked `fallback: "popular"`."""
    return await recommend(runtime, state, body)


@router.get("/users/{user_id:path}/recommendations", summary="Recommend items for a stored user")
async def get_user_recommendations(
    user_id: Annotated[Identifier, Path(examples=["196"])],
    runtime: RuntimeDep,
    state: StateDep,
    k: Annotated[int, Query(ge=1, le=MAX_K, description=f"1..{MAX_K}")] = 10,
    exclude_seen: bool = True,
) -> RecommendationList:
    """The same as POST /v1/recommendations with only `user_id`."""
    request = RecommendRequest(user_id=user_id, k=k, exclude_seen=exclude_seen)
    return await recommend(runtime, state, request)
