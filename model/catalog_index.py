"""The searchable catalog of one serving state: snapshot items plus items added since.

A `CatalogIndex` is immutable. Adding or deleting items returns a new one that
shares the snapshot's (large) index and appends to the delta of items added at
run time (model.delta_index: append-only, so an add costs O(items added), not
O(items added so far)), so searches in flight never see an index being mutated.

Rows: the snapshot's items keep their snapshot rows 0..N-1; added items get
N, N+1, ... Deleted rows stay in place and are excluded from every search.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import faiss
import numpy as np

from xsmoe.model.delta_index import DeltaIndex
from xsmoe.model.item_ids import ItemIds, as_item_ids

SELECTOR_ABOVE = 64  # exclusions a search drops itself; more: a FAISS selector


@dataclass(frozen=True)
class Hit:
    row: int
    score: float


@dataclass(frozen=True)
class CatalogIndex:
    main_ids: ItemIds  # snapshot rows, and id -> row; shared between versions of a catalog
    main_vectors: np.ndarray  # (N, d) float32, in RAM or memory-mapped
    main_index: faiss.Index
    added: DeltaIndex = field(default_factory=DeltaIndex)  # rows N, N+1, ...
    deleted: frozenset[int] = frozenset()
    nprobe: int = 0  # inverted lists probed per query (an IVF index); 0: not an IVF

    @classmethod
    def over(
        cls, ids: Sequence[str], vectors: np.ndarray, index: faiss.Index, *, nprobe: int = 0
    ) -> CatalogIndex:
        """Wrap an index already built over `vectors` (labels = rows). `vectors` may be
        a read-only memory map: only the rows of histories are ever read from it."""
        return cls(as_item_ids(ids), vectors, index, nprobe=nprobe)

    @property
    def main_rows(self) -> ItemIds:
        """id -> snapshot row (`get`, `in`): the id list itself answers it."""
        return self.main_ids

    # -- lookups -------------------------------------------------------------------
    @property
    def n_main(self) -> int:
        return len(self.main_ids)

    def __len__(self) -> int:
        """Items that can be recommended (deleted ones do not count)."""
        return self.n_main + len(self.added) - len(self.deleted)

    @property
    def added_ids(self) -> Sequence[str]:
        return self.added.ids

    @property
    def dim(self) -> int:
        return int(self.main_vectors.shape[1])

    def row_of(self, item_id: str) -> int | None:
        row = self.main_rows.get(item_id)
        if row is None:
            pos = self.added.position(item_id)
            row = None if pos is None else self.n_main + pos
        return row

    def rows_of(self, item_ids: Sequence[str]) -> list[int | None]:
        """`row_of` of many ids (a history), the snapshot's looked up in one search."""
        rows = self.main_ids.rows(item_ids)
        if len(self.added):
            for n, (item_id, row) in enumerate(zip(item_ids, rows, strict=True)):
                if row is None and (pos := self.added.position(item_id)) is not None:
                    rows[n] = self.n_main + pos
        return rows

    def __contains__(self, item_id: object) -> bool:
        return isinstance(item_id, str) and self.row_of(item_id) is not None

    def is_deleted(self, item_id: str) -> bool:
        row = self.row_of(item_id)
        return row is not None and row in self.deleted

    def item_id(self, row: int) -> str:
        return self.main_ids[row] if row < self.n_main else self.added.item_id(row - self.n_main)

    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        """(len(rows), d) embeddings of any rows, snapshot or added."""
        at = np.asarray(rows, np.int64)
        main = at < self.n_main
        if main.all():  # one gather (from the map, where it is one)
            return np.asarray(self.main_vectors[at], np.float32)
        out = np.empty((len(at), self.dim), np.float32)
        out[main] = self.main_vectors[at[main]]
        out[~main] = self.added.rows()[at[~main] - self.n_main]
        return out

    # -- copy-on-write changes -----------------------------------------------------
    def with_items(self, ids: Sequence[str], vectors: np.ndarray) -> CatalogIndex:
        """A catalog with `ids` added (ids already present are skipped)."""
        fresh = [n for n, i in enumerate(ids) if i not in self.main_rows]
        if not fresh:
            return self
        added = self.added.with_items([ids[n] for n in fresh], np.asarray(vectors)[fresh])
        return self if added is self.added else replace(self, added=added)

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
        if len(self.added):
            hits += self._search_added(q, k, excluded)
            hits.sort(key=lambda h: -h.score)
        return hits[:k]

    def _search_added(self, q: np.ndarray, k: int, excluded: frozenset[int]) -> list[Hit]:
        n = self.n_main
        skip = [r - n for r in excluded if n <= r < n + len(self.added)]
        scores, positions = self.added.search(q[0], k, skip)
        return [Hit(n + int(p), float(s)) for p, s in zip(positions, scores, strict=True)]

    def _search_one(
        self, index: faiss.Index, q: np.ndarray, k: int, excluded: frozenset[int]
    ) -> list[Hit]:
        n = self.n_main
        skip = [r for r in excluded if r < n]
        k = min(k, n - len(skip))
        if k <= 0:
            return []
        # A few exclusions (a history): fetch k more and drop them, which is exact and
        # cheaper than building FAISS selector objects per query; many (deletions): a
        # selector, so the search never wades through them.
        selector = None
        if len(skip) > SELECTOR_ABOVE:
            batch = faiss.IDSelectorBatch(np.asarray(skip, np.int64))
            selector = faiss.IDSelectorNot(batch)
        fetch = k if selector is not None else min(k + len(skip), n)
        nprobe, nlist = self.nprobe, int(getattr(index, "nlist", 0))
        while True:
            params: faiss.SearchParameters | None = None
            if nprobe:  # per query, not set on the shared index: searches run in threads
                params = faiss.SearchParametersIVF()
                params.nprobe = nprobe
            if selector is not None:
                params = params or faiss.SearchParameters()
                params.sel = selector
            scores, rows = index.search(q, fetch, params=params)  # selector alive until here
            hits = [
                Hit(r, s)
                for r, s in zip(rows[0].tolist(), scores[0].tolist(), strict=True)
                if r >= 0 and r not in excluded
            ][:k]
            # The probed lists may hold fewer than k eligible items (a deep page, many
            # exclusions): probe more rather than answer short.
            if len(hits) >= k or not nprobe or nprobe >= nlist:
                return hits
            nprobe = min(nprobe * 4, nlist)
