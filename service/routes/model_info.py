"""What is serving: version, lineage, experts per stage, metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from xsmoe.service.auth import require_read
from xsmoe.service.deps import RuntimeDep, StateDep
from xsmoe.service.redis_client import REDIS_ERRORS
from xsmoe.service.schemas import ModelInfo

router = APIRouter(prefix="/v1", tags=["model"], dependencies=[Depends(require_read)])


@router.get("/model", summary="The serving snapshot")
async def get_model(runtime: RuntimeDep, state: StateDep) -> ModelInfo:
    manifest = state.manifest
    config = state.retriever.model.current_config()
    catalog = state.retriever.catalog
    try:
        online = await runtime.store.online()
    except REDIS_ERRORS:
        online = {}
    return ModelInfo(
        version=state.version,
        parent=manifest.get("parent"),
        created_at=manifest.get("created_at"),
        experts={m: list(c) for m, c in config.experts.items()},
        frozen={m: list(c) for m, c in config.frozen.items()},
        utilization=manifest.get("utilization", {}),
        metrics=manifest.get("metrics", {}),
        gate=manifest.get("gate", {}),
        online=online,
        items_indexed=len(catalog),
        items_added_since=len(catalog.added_ids),
        loaded_at=state.loaded_at,
        swaps=runtime.serving.swaps,
        refused=runtime.serving.failed,
    )
