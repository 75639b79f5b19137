"""The serving state: one immutable (model, index, id map, version) and its holder.

A request reads `holder.current` once and uses that state's model and index
together; a swap assigns a new state in one statement.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from common.items import StoredItem
from model.recommender import Recommender
from model.retrieval import ItemFeatures, Retriever, embed_features
from model.snapshot import Snapshot
from service.catalog import CatalogOp

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
        added = [op.item for op in ops if op.item is not None]
        catalog = self.retriever.catalog
        if added and self.retriever.model.content is not None:
            usable, features = item_features(self.retriever.model, added)
            if usable:
                vectors = embed_features(self.retriever.model, features)
                catalog = catalog.with_items([i.item_id for i in usable], vectors)
        catalog = catalog.without(op.item_id for op in ops if op.item is None)
        return replace(
            self, retriever=self.retriever.with_catalog(catalog), catalog_seq=ops[-1].seq
        )


def item_features(
    model: Recommender, items: Iterable[StoredItem]
) -> tuple[list[StoredItem], ItemFeatures]:
    """Stack stored features for the model's modalities; items with none are left out."""
    shapes = model.config.shapes
    usable = [i for i in items if any(_fits(i, m, shape) for m, shape in shapes.items())]
    features, present = {}, {}
    for m, (n_layers, hidden) in shapes.items():
        feats = np.zeros((len(usable), n_layers, hidden), np.float32)
        mask = np.zeros(len(usable), bool)
        for j, item in enumerate(usable):
            if _fits(item, m, (n_layers, hidden)):
                feats[j], mask[j] = item.features[m], True
        features[m], present[m] = feats, mask
    return usable, ItemFeatures(features, present)


def _fits(item: StoredItem, modality: str, shape: tuple[int, int]) -> bool:
    f = item.features.get(modality)
    return f is not None and tuple(f.shape) == shape


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
    missing = [i for i in items if i.item_id not in retriever.catalog]
    if missing and retriever.model.content is not None:
        usable, features = item_features(retriever.model, missing)
        if len(usable) < len(missing):
            log.warning(
                "%d run-time items have no modality model %s uses; not indexed",
                len(missing) - len(usable),
                snapshot.version,
            )
        if usable:
            vectors = embed_features(retriever.model, features)
            catalog = retriever.catalog.with_items([i.item_id for i in usable], vectors)
            retriever = retriever.with_catalog(catalog)
    retriever = retriever.with_catalog(retriever.catalog.without(deleted))
    ids = snapshot.item_ids
    rng = np.random.default_rng(0)
    for _ in range(warmup_queries if ids else 0):  # first calls allocate; pay that here
        history = [ids[int(r)] for r in rng.integers(0, len(ids), size=5)]
        retriever.recommend(history, k=10)
    popular = tuple(snapshot.manifest.get("popular") or ids[:1000])
    return ServingState(retriever, snapshot.manifest, catalog_seq, time.time(), popular)
