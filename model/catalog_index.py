"""The searchable catalog of one serving state: snapshot items plus items added since.

A `CatalogIndex` is immutable. Adding or deleting items returns a new one that
shares the snapshot's (large) index and only rebuilds the small delta index of
items added at run time, so searches in flight never see an index being mutated.

Rows: the snapshot's items keep their snapshot rows 0..N-1; added items get
N, N+1, ... Deleted rows stay in place and are excluded from every search.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import faiss
import numpy as np

from xsmoe.model.index import build_index

HNSW_NEIGHBOURS = 32


@dataclass(frozen=True)
class Hit:
    row: int
    score: float


def build_serving_index(embeddings: np.ndarray, hnsw_above: int, ef_search: int) -> faiss.Index:
    """Exact inner product up to `hnsw_above` items, HNSW (approximate) above."""
    vectors = np.ascontiguousarray(embeddings, dtype=np.float32)
    if len(vectors) <= hnsw_above:
        return build_index(vectors)
    index = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 80
    index.hnsw.efSearch = ef_search
    index.add(vectors)  # HNSW labels are insertion positions = rows
    return index


@dataclass(frozen=True)
class CatalogIndex:
    main_ids: Sequence[str]  # snapshot rows; shared between versions of this catalog
    main_rows: Mapping[str, int]
    main_vectors: np.ndarray  # (N, d) float32
    main_index: faiss.Index
    added_ids: tuple[str, ...] = ()
    added_rows: Mapping[str, int] = field(default_factory=dict)
    added_vectors: np.ndarray | None = None
    added_index: faiss.Index | None = None
    deleted: frozenset[int] = frozenset()
    ef_search: int = 64

    @classmethod
    def build(
        cls, ids: Sequence[str], vectors: np.ndarray, *, hnsw_above: int, ef_search: int = 64
    ) -> CatalogIndex:
        index = build_serving_index(vectors, hnsw_above, ef_search)
        rows = {item_id: row for row, item_id in enumerate(ids)}
        return cls(list(ids), rows, np.asarray(vectors, np.float32), index, ef_search=ef_search)

    @classmethod
    def over(cls, ids: Sequence[str], vectors: np.ndarray, index: faiss.Index) -> CatalogIndex:
        """Wrap an index already built over `vectors` (ids = rows)."""
        rows = {item_id: row for row, item_id in enumerate(ids)}
        return cls(list(ids), rows, np.asarray(vectors, np.float32), index)

    # -- lookups -------------------------------------------------------------------
    @property
    def n_main(self) -> int:
        return len(self.main_ids)

    def __len__(self) -> int:
        """Items that can be recommended (deleted ones do not count)."""
        return self.n_main + len(self.added_ids) - len(self.deleted)

    @property
    def dim(self) -> int:
        return int(self.main_vectors.shape[1])

    def row_of(self, item_id: str) -> int | None:
        row = self.main_rows.get(item_id)
        if row is None:
            row = self.added_rows.get(item_id)
        return row

    def __contains__(self, item_id: object) -> bool:
        return isinstance(item_id, str) and self.row_of(item_id) is not None

    def is_deleted(self, item_id: str) -> bool:
        row = self.row_of(item_id)
        return row is not None and row in self.deleted

    def item_id(self, row: int) -> str:
        return self.main_ids[row] if row < self.n_main else self.added_ids[row - self.n_main]

    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        """(len(rows), d) embeddings of any rows, snapshot or added."""
        out = np.empty((len(rows), self.dim), np.float32)
        for i, row in enumerate(rows):
            if row < self.n_main:
                out[i] = self.main_vectors[row]
            else:
                assert self.added_vectors is not None
                out[i] = self.added_vectors[row - self.n_main]
        return out

    # -- copy-on-write changes -----------------------------------------------------
    def with_items(self, ids: Sequence[str], vectors: np.ndarray) -> CatalogIndex:
        """A catalog with `ids` added (ids already present are skipped)."""
        fresh = [(i, v) for i, v in zip(ids, vectors, strict=True) if i not in self]
        if not fresh:
            return self
        new_ids = self.added_ids + tuple(i for i, _ in fresh)
        new_vecs = np.stack([v for _, v in fresh]).astype(np.float32)
        if self.added_vectors is not None:
            new_vecs = np.concatenate([self.added_vectors, new_vecs])
        labels = np.arange(self.n_main, self.n_main + len(new_ids), dtype=np.int64)
        return replace(
            self,
            added_ids=new_ids,
            added_rows={item_id: self.n_main + j for j, item_id in enumerate(new_ids)},
            added_vectors=new_vecs,
            added_index=build_index(new_vecs, labels),
        )

    def without(self, ids: Iterable[str]) -> CatalogIndex:
        rows = {r for r in (self.row_of(i) for i in ids) if r is not None}
        if rows <= self.deleted:
            return self
        return replace(self, deleted=self.deleted | rows)

    # -- search --------------------------------------------------------------------
    def search(self, query: np.ndarray, k: int, exclude_rows: Iterable[int] = ()) -> list[Hit]:
        """Top k rows by inner product, skipping deleted and excluded rows."""
        excluded = self.deleted.union(exclude_rows)
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        hits = self._search_one(self.main_index, q, k, excluded)
        if self.added_index is not None:
            hits += self._search_one(self.added_index, q, k, excluded)
            hits.sort(key=lambda h: -h.score)
        return hits[:k]

    def _search_one(
        self, index: faiss.Index, q: np.ndarray, k: int, excluded: frozenset[int]
    ) -> list[Hit]:
        k = min(k, index.ntotal)
        if k <= 0:
            return []
        params: faiss.SearchParameters | None = None
        if isinstance(index, faiss.IndexHNSW):
            hnsw_params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
            hnsw_params.efSearch = max(self.ef_search, k)
            params = hnsw_params
        if excluded:
            batch = faiss.IDSelectorBatch(np.fromiter(excluded, np.int64, len(excluded)))
            selector = faiss.IDSelectorNot(batch)
            params = params or faiss.SearchParameters()
            params.sel = selector
        scores, rows = index.search(q, k, params=params)  # batch/selector alive until here
        return [Hit(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]
