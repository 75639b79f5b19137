"""What is serving (version, lineage, experts per stage, metrics) and every version
the snapshot store holds, with its gate decision."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from xsmoe.model.snapshot_layout import index_entry
from xsmoe.service.auth import require_read
from xsmoe.service.deps import RuntimeDep, StateDep
from xsmoe.service.errors import NotFound, StoreUnavailable
from xsmoe.service.openapi import errors
from xsmoe.service.query import forbid_unknown_query
from xsmoe.service.redis_client import REDIS_ERRORS
from xsmoe.service.schemas import VERSION_PATTERN, ModelInfo, ModelList, ModelVersion
from xsmoe.service.versions import UnknownVersion, VersionUnusable

router = APIRouter(
    prefix="/v1",
    tags=["model"],
    dependencies=[Depends(require_read), Depends(forbid_unknown_query)],
)
VersionPath = Annotated[str, Path(pattern=VERSION_PATTERN, examples=["v000001"])]


@router.get(
    "/model",
    summary="The serving snapshot",
    operation_id="get_model",
    responses=errors(401, 403, 422, 503),
)
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
        index=index_entry(manifest),
        loaded_at=state.loaded_at,
        swaps=runtime.serving.swaps,
        refused=runtime.serving.refusals(),
    )


def _version(version: str, manifest: dict[str, Any], serving: str | None) -> ModelVersion:
    return ModelVersion(
        version=version,
        parent=manifest.get("parent"),
        created_at=manifest.get("created_at"),
        serving=version == serving,
        gate=manifest.get("gate") or {},
        metrics=manifest.get("metrics") or {},
    )


async def _manifest(runtime: RuntimeDep, version: str) -> dict[str, Any]:
    try:
        return await runtime.serving.versions.manifest(version)
    except VersionUnusable as exc:
        raise StoreUnavailable(str(exc), headers={"Retry-After": "5"}) from exc


@router.get(
    "/models",
    summary="Every snapshot version, newest first",
    operation_id="list_models",
    responses=errors(401, 403, 422, 503),
)
async def list_models(runtime: RuntimeDep) -> ModelList:
    """Versions in the snapshot store with their lineage, gate decision and offline
    metrics; `serving` names the one this replica serves."""
    current = runtime.serving.current
    serving = current.version if current else None
    try:
        names = await runtime.serving.versions.names()
    except OSError as exc:
        raise StoreUnavailable(
            "the snapshot store did not answer; retry shortly", headers={"Retry-After": "5"}
        ) from exc
    versions = []
    for name in reversed(names):
        try:
            versions.append(_version(name, await _manifest(runtime, name), serving))
        except UnknownVersion:  # removed by retention while listing
            continue
    return ModelList(serving=serving, versions=versions)


@router.get(
    "/models/{version}",
    summary="One snapshot version",
    operation_id="get_model_version",
    responses=errors(401, 403, 404, 422, 503),
)
async def get_model_version(version: VersionPath, runtime: RuntimeDep) -> ModelVersion:
    current = runtime.serving.current
    try:
        manifest = await _manifest(runtime, version)
    except UnknownVersion:
        raise NotFound(f"no snapshot {version!r}; GET /v1/models lists the versions") from None
    return _version(version, manifest, current.version if current else None)
