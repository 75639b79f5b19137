"""Top-k retrieval over one model and its catalog: embed a history, search, exclude.

A `Retriever` is immutable (model, catalog index, version), so a server can
swap it by replacing one reference. Exclusions are applied per query with a
FAISS ID selector; the shared index is never mutated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from xsmoe.model.catalog_index import CatalogIndex
from xsmoe.model.item_tower import ItemTable
from xsmoe.model.recommender import Recommender
from xsmoe.model.snapshot import Snapshot


@dataclass(frozen=True)
class Recommendation:
    item_id: str
    score: float


@dataclass(frozen=True)
class RetrievalResult:
    items: list[Recommendation]
    unknown_ids: list[str] = field(default_factory=list)  # history ids not in the catalog
    fallback: str | None = None  # "popular" when there was no usable history


@dataclass(frozen=True)
class ItemFeatures:
    """Frozen-encoder features of new items, per modality: (B, L, H) and presence (B,)."""

    features: Mapping[str, np.ndarray]
    present: Mapping[str, np.ndarray]


def embed_features(model: Recommender, items: ItemFeatures) -> np.ndarray:
    """(B, d) embeddings of items the model has never seen, from their features alone."""
    if model.content is None:
        raise ValueError("this model has no content tower: it cannot embed new items")
    shapes = model.config.shapes
    table = ItemTable(
        {m: torch.from_numpy(np.asarray(items.features[m], np.float32)) for m in shapes},
        {m: torch.from_numpy(np.asarray(items.present[m], bool)) for m in shapes},
        catalog=False,  # numbered from 0, not catalog rows: no ID residual applies
    )
    with torch.inference_mode():  # FAISS reads float32 on the CPU, whatever the model's
        return model.item_embeddings(table).float().cpu().numpy()


@dataclass(frozen=True)
class Retriever:
    model: Recommender
    catalog: CatalogIndex
    version: str

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot) -> Retriever:
        """Over the snapshot's own index, searched with the parameters it was measured at."""
        nprobe = int(snapshot.index_info.get("params", {}).get("nprobe", 0))
        catalog = CatalogIndex.over(
            snapshot.item_ids, snapshot.embeddings, snapshot.index, nprobe=nprobe
        )
        return cls(snapshot.model, catalog, snapshot.version)

    def with_catalog(self, catalog: CatalogIndex) -> Retriever:
        return replace(self, catalog=catalog)

    def _rows(self, history: Sequence[str]) -> tuple[list[int], list[str]]:
        """Catalog rows of every known item of a history (in order) and the unknown ids."""
        rows = self.catalog.rows_of(history)
        known = [r for r in rows if r is not None]
        unknown = [i for i, r in zip(history, rows, strict=True) if r is None]
        return known, unknown

    def history_rows(self, history: Sequence[str]) -> tuple[list[int], list[str]]:
        """Catalog rows of the known items (newest last, at most max_len) and unknown ids."""
        known, unknown = self._rows(history)
        return known[-self.model.config.user.max_len :], unknown

    def user_vectors(self, batch: Sequence[Sequence[int]]) -> np.ndarray:
        """(B, d) user vectors of several non-empty histories in one forward pass."""
        width = max(len(rows) for rows in batch)
        items = np.zeros((len(batch), width, self.catalog.dim), np.float32)
        valid = np.zeros((len(batch), width), bool)
        for b, rows in enumerate(batch):  # right-aligned: newest item last
            items[b, width - len(rows) :] = self.catalog.vectors(rows)
            valid[b, width - len(rows) :] = True
        with torch.inference_mode():
            out = self.model.user_embeddings(torch.from_numpy(items), torch.from_numpy(valid))
        # float32 CPU for FAISS; a view would keep the whole (B, T, d) state alive
        return out.float().cpu().numpy().copy()

    def user_vector(self, history: Sequence[str]) -> tuple[np.ndarray | None, list[str]]:
        """The user vector for a history (newest last), and the ids it did not know."""
        rows, unknown = self.history_rows(history)
        return (self.user_vectors([rows])[0] if rows else None), unknown

    def recommend(
        self,
        history: Sequence[str],
        k: int,
        *,
        exclude_seen: bool = True,
        exclude: Iterable[str] = (),
        popular: Sequence[str] = (),
        vector: np.ndarray | None = None,
    ) -> RetrievalResult:
        """Top k for a history; no usable history falls back to `popular` (best first).

        `vector`: the history's user vector if the caller already has it (batched or
        cached); otherwise it is computed here.
        """
        known, unknown = self._rows(history)  # one pass: exclusions and the user vector
        excluded = {r for r in map(self.catalog.row_of, exclude) if r is not None}
        if exclude_seen:
            excluded |= set(known)
        if vector is None and known:
            vector = self.user_vectors([known[-self.model.config.user.max_len :]])[0]
        if vector is None:
            return RetrievalResult(self._popular(popular, k, excluded), unknown, "popular")
        hits = self.catalog.search(vector, k, excluded)
        items = [Recommendation(self.catalog.item_id(h.row), h.score) for h in hits]
        return RetrievalResult(items, unknown)

    def _popular(self, popular: Sequence[str], k: int, excluded: set[int]) -> list[Recommendation]:
        out: list[Recommendation] = []
        for item_id in popular:
            row = self.catalog.row_of(item_id)
            if row is None or row in excluded or row in self.catalog.deleted:
                continue
            excluded.add(row)
            out.append(Recommendation(item_id, 0.0))
            if len(out) == k:
                break
        return out
