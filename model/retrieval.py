"""Top-k retrieval over one snapshot: embed a history, search FAISS, exclude items.

A `Retriever` is immutable once built (model, index, id map of one snapshot),
so a server can swap it by replacing one reference. Exclusions are applied per
query with a FAISS ID selector; the shared index is never mutated.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import faiss
import numpy as np
import torch

from model.snapshot import Snapshot


@dataclass(frozen=True)
class Recommendation:
    item_id: str
    score: float


@dataclass(frozen=True)
class RetrievalResult:
    items: list[Recommendation]
    unknown_ids: list[str] = field(default_factory=list)  # history ids not in the snapshot
    fallback: str | None = None  # "popular" when there was no usable history


class Retriever:
    def __init__(self, snapshot: Snapshot, popular_ids: Sequence[str] = ()) -> None:
        self.snapshot = snapshot
        self.version = snapshot.version
        self.row_of = {item_id: row for row, item_id in enumerate(snapshot.item_ids)}
        self.popular_rows = [self.row_of[i] for i in popular_ids if i in self.row_of]
        self.max_len = snapshot.model.config.user.max_len

    def user_vector(self, history: Sequence[str]) -> tuple[np.ndarray | None, list[str]]:
        """The user vector for a history (newest last), and the ids it did not know."""
        known = [self.row_of[i] for i in history if i in self.row_of]
        unknown = [i for i in history if i not in self.row_of]
        if not known:
            return None, unknown
        rows = known[-self.max_len :]
        vectors = torch.from_numpy(self.snapshot.embeddings[rows])
        return self.snapshot.model.user_embedding(vectors).numpy(), unknown

    def search(
        self, vector: np.ndarray, k: int, exclude_rows: Iterable[int] = ()
    ) -> list[Recommendation]:
        excluded = np.fromiter(set(exclude_rows), np.int64)
        params = None
        if len(excluded):
            batch = faiss.IDSelectorBatch(excluded)  # kept referenced until the search ends
            selector = faiss.IDSelectorNot(batch)
            params = faiss.SearchParameters()
            params.sel = selector
        query = np.ascontiguousarray(vector.reshape(1, -1), dtype=np.float32)
        scores, rows = self.snapshot.index.search(query, k, params=params)
        return [
            Recommendation(self.snapshot.item_ids[int(r)], float(s))
            for r, s in zip(rows[0], scores[0], strict=True)
            if r >= 0
        ]

    def recommend(
        self,
        history: Sequence[str],
        k: int,
        *,
        exclude_seen: bool = True,
        exclude: Iterable[str] = (),
    ) -> RetrievalResult:
        """Top k for a history; no usable history falls back to popular items."""
        excluded = {self.row_of[i] for i in exclude if i in self.row_of}
        if exclude_seen:
            excluded |= {self.row_of[i] for i in history if i in self.row_of}
        vector, unknown = self.user_vector(history)
        if vector is None:
            popular = [r for r in self.popular_rows if r not in excluded][:k]
            items = [Recommendation(self.snapshot.item_ids[r], 0.0) for r in popular]
            return RetrievalResult(items, unknown, fallback="popular")
        return RetrievalResult(self.search(vector, k, excluded), unknown)
