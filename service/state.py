"""The serving state: one immutable (model, index, id map, version) and its holder.

A request reads `holder.current` once and uses that state's model and index
together; a swap assigns a new state in one statement.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from xsmoe.common.items import StoredItem, stack_features
from xsmoe.common.snapshot_store import SnapshotStore
from xsmoe.model.features import ModalitySpec
from xsmoe.model.retrieval import ItemFeatures, Retriever, embed_features
from xsmoe.model.snapshot import Snapshot, load_snapshot
from xsmoe.service.catalog import CatalogOp, RuntimeCatalog
from xsmoe.service.settings import ServingSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServingState:
    retriever: Retriever
    manifest: dict[str, Any]
    catalog_seq: int  # run-time catalog changes reflected (service.catalog)
    loaded_at: float
    popular: tuple[str, ...]  # the snapshot's own popularity order (fallback of the fallback)

    @property
    def version(self) -> str:
        return self.retriever.version

    def with_changes(self, ops: Sequence[CatalogOp]) -> ServingState:
        if not ops:
            return self
        retriever = with_items(self.retriever, [op.item for op in ops if op.item is not None])
        catalog = retriever.catalog.without(op.item_id for op in ops if op.item is None)
        return replace(self, retriever=retriever.with_catalog(catalog), catalog_seq=ops[-1].seq)


def with_items(retriever: Retriever, items: Sequence[StoredItem]) -> Retriever:
    """The retriever with run-time items it lacks embedded by its model and indexed;
    items with no modality the model reads are left out (and logged)."""
    model = retriever.model
    missing = [i for i in items if i.item_id not in retriever.catalog]
    if not missing or model.content is None:
        return retriever
    shapes = model.config.shapes
    usable = [i for i in missing if any(i.fits(m, shape) for m, shape in shapes.items())]
    if len(usable) < len(missing):
        log.warning(
            "%d run-time items have no modality model %s uses; not indexed",
            len(missing) - len(usable),
            retriever.version,
        )
    if not usable:
        return retriever
    stacked = stack_features(usable, shapes)
    features = {m: f for m, (f, _) in stacked.items()}
    present = {m: p for m, (_, p) in stacked.items()}
    vectors = embed_features(model, ItemFeatures(features, present))
    return retriever.with_catalog(
        retriever.catalog.with_items([i.item_id for i in usable], vectors)
    )


def build_state(
    snapshot: Snapshot,
    items: Sequence[StoredItem],
    deleted: Iterable[str],
    catalog_seq: int,
    *,
    hnsw_above: int,
    ef_search: int,
    warmup_queries: int,
) -> ServingState:
    """A new serving state: snapshot + run-time items re-embedded + deletions; warmed up."""
    retriever = Retriever.from_snapshot(snapshot, hnsw_above=hnsw_above, ef_search=ef_search)
    retriever = with_items(retriever, items)
    retriever = retriever.with_catalog(retriever.catalog.without(deleted))
    ids = snapshot.item_ids
    rng = np.random.default_rng(0)
    for _ in range(warmup_queries if ids else 0):  # first calls allocate; pay that here
        history = [ids[int(r)] for r in rng.integers(0, len(ids), size=5)]
        retriever.recommend(history, k=10)
    popular = tuple(snapshot.manifest.get("popular") or ids[:1000])
    return ServingState(retriever, snapshot.manifest, catalog_seq, time.time(), popular)


async def load_state(
    store: SnapshotStore,
    root: Path,
    version: str,
    expected_features: dict[str, ModalitySpec] | None,
    catalog: RuntimeCatalog,
    settings: ServingSettings,
    warmup_queries: int,
) -> ServingState:
    """Fetch `version` into `root`, load and check it, and build its state with the
    run-time catalog as it is now (later changes: `with_changes`), off the loop."""
    seq = catalog.seq
    items, deleted = list(catalog.items.values()), set(catalog.deleted)
    path = await asyncio.to_thread(store.fetch, version, root)
    snapshot = await asyncio.to_thread(load_snapshot, path, expected_features)
    return await asyncio.to_thread(
        build_state,
        snapshot,
        items,
        deleted,
        seq,
        hnsw_above=settings.hnsw_above,
        ef_search=settings.ef_search,
        warmup_queries=warmup_queries,
    )
