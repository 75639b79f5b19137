"""The serving state: one immutable (model, index, id map, version) and its holder.

A request reads `holder.current` once and uses that state's model and index
together; a swap assigns a new state in one statement.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xsmoe.common.items import StoredItem, stack_features
from xsmoe.common.snapshot_store import SnapshotStore
from xsmoe.model.catalog_index import CatalogIndex
from xsmoe.model.features import ModalitySpec
from xsmoe.model.recommender import Recommender
from xsmoe.model.retrieval import ItemFeatures, Retriever, embed_features
from xsmoe.model.snapshot import Snapshot, load_snapshot
from xsmoe.service.catalog import CatalogOp, RuntimeCatalog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServingState:
    retriever: Retriever
    manifest: dict[str, Any]
    catalog_seq: int  # run-time catalog changes reflected (service.catalog)
    loaded_at: float
    popular: tuple[str, ...]  # the snapshot's own popularity order (fallback of the fallback)
    tower: str = ""  # digest of what embeds a new item (tower_digest); "" unknown

    @property
    def version(self) -> str:
        return self.retriever.version

    def with_changes(self, ops: Sequence[CatalogOp]) -> ServingState:
        """This state with run-time changes applied (blocking: it embeds added items)."""
        if not ops:
            return self
        retriever = with_items(self.retriever, [op.item for op in ops if op.item is not None])
        catalog = retriever.catalog.without(op.item_id for op in ops if op.item is None)
        return replace(self, retriever=retriever.with_catalog(catalog), catalog_seq=ops[-1].seq)


EMBED_BATCH = 256  # run-time items embedded at a time on a swap: bounded memory


def tower_digest(model: Recommender) -> str:
    """What a new item's embedding depends on: the item tower's tensors, less the ID
    residual (rows of snapshot items; a run-time item never reads it). Two models
    with the same digest embed every run-time item alike."""
    tower = model.content
    if tower is None:
        return ""
    h = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(tower.state_dict().items()):
        if name.startswith("id_residual."):
            continue
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def with_items(
    retriever: Retriever,
    items: Sequence[StoredItem],
    reuse: CatalogIndex | None = None,
    batch: int = EMBED_BATCH,
) -> Retriever:
    """The retriever with run-time items it lacks embedded by its model and indexed;
    items with no modality the model reads are left out (and logged). `reuse`: a
    catalog whose run-time vectors this model would compute alike (the same tower):
    its vectors are taken instead of embedding again. Blocking: call it off the loop."""
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
    catalog = retriever.catalog
    if reuse is not None and usable:
        # added rows only: a snapshot row's vector may carry that snapshot's ID residual
        rows = [reuse.row_of(i.item_id) for i in usable]
        rows = [r if r is not None and r >= reuse.n_main else None for r in rows]
        known = [(i, r) for i, r in zip(usable, rows, strict=True) if r is not None]
        if known:
            vectors = reuse.vectors([r for _, r in known])
            catalog = catalog.with_items([i.item_id for i, _ in known], vectors)
        usable = [i for i, r in zip(usable, rows, strict=True) if r is None]
    for lo in range(0, len(usable), batch):
        chunk = usable[lo : lo + batch]
        stacked = stack_features(chunk, shapes)
        features = {m: f for m, (f, _) in stacked.items()}
        present = {m: p for m, (_, p) in stacked.items()}
        vectors = embed_features(model, ItemFeatures(features, present))
        catalog = catalog.with_items([i.item_id for i in chunk], vectors)
    return retriever.with_catalog(catalog)


def build_state(
    snapshot: Snapshot,
    items: Sequence[StoredItem],
    deleted: Iterable[str],
    catalog_seq: int,
    *,
    warmup_queries: int,
    previous: ServingState | None = None,
) -> ServingState:
    """A new serving state: snapshot + run-time items + deletions; warmed up. The
    run-time items' vectors are `previous`'s when its tower is the same (a rollback,
    a re-publication, an explicit version), else embedded again in batches."""
    retriever = Retriever.from_snapshot(snapshot)
    tower = tower_digest(snapshot.model)
    reuse = previous.retriever.catalog if previous and tower and previous.tower == tower else None
    same = reuse is not None
    started = time.perf_counter()
    retriever = with_items(retriever, items, reuse)
    if items:
        log.info(
            "%d run-time items for %s: %s in %.2f s",
            len(retriever.catalog.added),
            snapshot.version,
            "vectors reused (same item tower)" if same else "embedded",
            time.perf_counter() - started,
        )
    retriever = retriever.with_catalog(retriever.catalog.without(deleted))
    ids = snapshot.item_ids
    rng = np.random.default_rng(0)
    for _ in range(warmup_queries if ids else 0):  # first calls allocate; pay that here
        history = [ids[int(r)] for r in rng.integers(0, len(ids), size=5)]
        retriever.recommend(history, k=10)
    popular = tuple(snapshot.manifest.get("popular") or ids[:1000])
    return ServingState(retriever, snapshot.manifest, catalog_seq, time.time(), popular, tower)


async def load_state(
    store: SnapshotStore,
    root: Path,
    version: str,
    expected_features: dict[str, ModalitySpec] | None,
    catalog: RuntimeCatalog,
    warmup_queries: int,
    previous: ServingState | None = None,
) -> ServingState:
    """Fetch `version` into `root`, load and check it, and build its state with the
    run-time catalog as it is now (later changes: `with_changes`), off the loop;
    `previous`: the state served now, whose run-time vectors may be reused."""
    seq = catalog.seq
    items, deleted = list(catalog.items.values()), set(catalog.deleted)
    path = await asyncio.to_thread(store.fetch, version, root)
    known = None  # the same catalog as now (most windows): its ids are not parsed again
    digest = (previous.manifest.get("checksums") or {}).get("items.json") if previous else None
    if previous is not None and digest:
        known = (str(digest), previous.retriever.catalog.main_ids)
    snapshot = await asyncio.to_thread(load_snapshot, path, expected_features, known)
    return await asyncio.to_thread(
        build_state,
        snapshot,
        items,
        deleted,
        seq,
        warmup_queries=warmup_queries,
        previous=previous,
    )
