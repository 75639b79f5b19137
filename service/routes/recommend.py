"""What next? Recommendations for a stored user, a session's items, or both."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from xsmoe.common.events import Identifier
from xsmoe.model.retrieval import Recommendation, RetrievalResult
from xsmoe.service.auth import require_read
from xsmoe.service.deps import Runtime, RuntimeDep, StateDep
from xsmoe.service.errors import Conflict, InvalidInput, NotFound, StoreUnavailable
from xsmoe.service.openapi import errors
from xsmoe.service.query import forbid_unknown_query
from xsmoe.service.rec_filter import MAX_SCAN, TagLookup, passes
from xsmoe.service.redis_client import REDIS_ERRORS
from xsmoe.service.schemas import (
    MAX_DEPTH,
    MAX_K,
    VERSION_PATTERN,
    RecommendationList,
    RecommendRequest,
    ScoredItem,
)
from xsmoe.service.state import ServingState
from xsmoe.service.versions import UnknownVersion, VersionUnusable

router = APIRouter(
    prefix="/v1",
    tags=["recommendations"],
    dependencies=[Depends(require_read), Depends(forbid_unknown_query)],
)

MAX_LISTED = 10


async def _state_for(runtime: Runtime, state: ServingState, version: str | None) -> ServingState:
    try:
        asked = await runtime.serving.state_at(version)
    except UnknownVersion:
        raise NotFound(
            f"model_version: no snapshot {version!r}; GET /v1/models lists the versions",
            field="model_version",
        ) from None
    except VersionUnusable as exc:
        if exc.transient:
            raise StoreUnavailable(str(exc), headers={"Retry-After": "5"}) from exc
        raise Conflict(f"model_version: {exc}", field="model_version") from exc
    return asked or state


async def recommend(
    runtime: Runtime, state: ServingState, request: RecommendRequest
) -> RecommendationList:
    state = await _state_for(runtime, state, request.model_version)
    explicit = request.model_version is not None and state is not runtime.serving.current
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
    vector = None
    if rows and not explicit:  # the shared cache holds the serving version's vectors
        vector = await runtime.serving.user_vectors.vector(retriever, rows)
    elif rows:
        vector = retriever.user_vectors([rows])[0]
    popular = runtime.serving.popular() if vector is None else ()
    depth = request.k + request.offset

    def ranked(n: int) -> RetrievalResult:
        return retriever.recommend(
            history,
            n,
            exclude_seen=request.exclude_seen,
            exclude=[*request.exclude_item_ids, *disliked],
            popular=popular,
            vector=vector,
        )

    if request.filter is None:
        result = ranked(depth)
        items: list[Recommendation] = result.items
    else:
        lookup = TagLookup(runtime, state)
        n = min(max(depth * 4, 50), MAX_SCAN)
        while True:  # rank deeper until enough pass the filter, or nothing is left
            result = ranked(n)
            tags = await lookup.tags([r.item_id for r in result.items])
            items = [r for r in result.items if passes(request.filter, r.item_id, state, tags)]
            if len(items) >= depth or len(result.items) < n:
                break
            if n >= MAX_SCAN:
                warnings.append(
                    f"filter: {len(items)} of the top {MAX_SCAN} items passed; "
                    "fewer than asked are returned"
                )
                break
            n = min(n * 4, MAX_SCAN)
        warnings += lookup.warnings
    items = items[request.offset : depth]
    if result.unknown_ids:
        unknown = list(dict.fromkeys(result.unknown_ids))
        listed = ", ".join(unknown[:MAX_LISTED]) + (" ..." if len(unknown) > MAX_LISTED else "")
        warnings.append(f"{len(unknown)} unknown item ids ignored: {listed}")
    if result.fallback:
        runtime.metrics.fallbacks.inc()
    return RecommendationList(
        items=[ScoredItem(item_id=r.item_id, score=r.score) for r in items],
        model_version=state.version,
        fallback="popular" if result.fallback else None,
        warnings=warnings,
    )


@router.post(
    "/recommendations",
    summary="Recommend items for a user and/or recent items",
    operation_id="post_recommendations",
    responses=errors(401, 403, 404, 409, 422, 503),
)
async def post_recommendations(
    body: RecommendRequest, runtime: RuntimeDep, state: StateDep
) -> RecommendationList:
    """Top k items (after `offset`). With `user_id`, the stored history is used, then
    `item_ids` (newest last). No usable history at all: popular items, marked
    `fallback: "popular"`. `filter` keeps only items with the given tags or source;
    `model_version` asks one snapshot version instead of the serving one."""
    return await recommend(runtime, state, body)


@router.get(
    "/users/{user_id:path}/recommendations",
    summary="Recommend items for a stored user",
    operation_id="get_user_recommendations",
    responses=errors(401, 403, 404, 409, 422, 503),
)
async def get_user_recommendations(
    user_id: Annotated[Identifier, Path(examples=["196"])],
    runtime: RuntimeDep,
    state: StateDep,
    k: Annotated[int, Query(ge=1, le=MAX_K, description=f"1..{MAX_K}")] = 10,
    offset: Annotated[
        int, Query(ge=0, le=MAX_DEPTH, description=f"skip this many (k + offset <= {MAX_DEPTH})")
    ] = 0,
    exclude_seen: bool = True,
    model_version: Annotated[
        str | None, Query(pattern=VERSION_PATTERN, description="a snapshot version to ask")
    ] = None,
) -> RecommendationList:
    """The same as POST /v1/recommendations with only `user_id`."""
    if k + offset > MAX_DEPTH:
        raise InvalidInput(
            f"query.offset: k + offset is {k + offset}; at most {MAX_DEPTH}", field="query.offset"
        )
    request = RecommendRequest(
        user_id=user_id,
        k=k,
        offset=offset,
        exclude_seen=exclude_seen,
        model_version=model_version,
    )
    return await recommend(runtime, state, request)
