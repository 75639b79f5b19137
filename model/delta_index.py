"""Items added at run time: an append-only store searched by brute force.

A `DeltaIndex` value is immutable for its readers: it sees rows `0..count-1` of
storage that successive values share, and a row below some value's count is
never written again. Adding m items writes rows `count..count+m-1` in place
(amortised O(m): the storage doubles when full, and a grown copy leaves the old
arrays to the values that hold them), so an add costs the same at 20 items or
20,000, and a search in flight never sees a half-written row.

Only the newest value appends in place; adding to an older one (two branches of
one history) copies its rows first, so neither branch sees the other's items.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

FIRST_CAPACITY = 64


class _Storage:
    """Rows, ids and an id -> position map, all append-only; `count` rows are written."""

    def __init__(self, dim: int, capacity: int) -> None:
        self.vectors = np.empty((capacity, dim), np.float32)
        self.ids: list[str] = []
        self.positions: dict[str, int] = {}
        self.lock = threading.Lock()  # appends come from one thread at a time, but be sure

    @property
    def count(self) -> int:
        return len(self.ids)


class _IdView(Sequence[str]):
    """The first `count` ids of a shared list, read-only."""

    def __init__(self, ids: list[str], count: int) -> None:
        self._ids, self._count = ids, count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return self._ids[: self._count][i]
        if i < 0:
            i += self._count
        if not 0 <= i < self._count:
            raise IndexError(i)
        return self._ids[i]

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids[: self._count])

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._ids[: self._count]


@dataclass(frozen=True)
class DeltaIndex:
    """The first `count` rows of shared storage (positions 0.., catalog rows base+0..)."""

    storage: _Storage | None = None
    vectors: np.ndarray | None = None  # this value's array (the storage may have grown since)
    count: int = 0

    def __len__(self) -> int:
        return self.count

    @property
    def ids(self) -> Sequence[str]:
        return _IdView(self.storage.ids, self.count) if self.storage is not None else ()

    def position(self, item_id: str) -> int | None:
        if self.storage is None:
            return None
        pos = self.storage.positions.get(item_id)
        return pos if pos is not None and pos < self.count else None

    def item_id(self, position: int) -> str:
        if not 0 <= position < self.count or self.storage is None:
            raise IndexError(position)
        return self.storage.ids[position]

    def rows(self) -> np.ndarray:
        """(count, d) vectors, a read-only view."""
        if self.vectors is None:
            return np.empty((0, 0), np.float32)
        view = self.vectors[: self.count]
        view.flags.writeable = False
        return view

    def with_items(self, ids: Sequence[str], vectors: np.ndarray) -> DeltaIndex:
        """This delta plus `ids` (ids it has are skipped); O(len(ids)) amortised."""
        vectors = np.asarray(vectors, np.float32)
        first: dict[str, int] = {}  # a repeated id: its first vector wins
        for n, item_id in enumerate(ids):
            if self.position(item_id) is None:
                first.setdefault(item_id, n)
        fresh = list(first.values())
        if not fresh:
            return self
        new = vectors[fresh]
        storage = self.storage
        with storage.lock if storage is not None else threading.Lock():
            if storage is None or storage.count != self.count:  # first add, or a branch
                storage = self._copy(new.shape[1], self.count + len(fresh))
            data = storage.vectors
            end = self.count + len(fresh)
            if end > len(data):  # grow: a copy; older values keep the array they hold
                data = np.empty((max(end, 2 * len(data)), data.shape[1]), np.float32)
                data[: self.count] = storage.vectors[: self.count]
                storage.vectors = data
            data[self.count : end] = new
            for n, pos in zip(fresh, range(self.count, end), strict=True):
                storage.positions[ids[n]] = pos
                storage.ids.append(ids[n])  # last: `count` grows once the row is written
        return DeltaIndex(storage, data, end)

    def _copy(self, dim: int, need: int) -> _Storage:
        storage = _Storage(dim, max(FIRST_CAPACITY, 2 * need))
        if self.storage is not None and self.vectors is not None:
            storage.vectors[: self.count] = self.vectors[: self.count]
            storage.ids = self.storage.ids[: self.count]
            storage.positions = {i: p for p, i in enumerate(storage.ids)}
        return storage

    def search(
        self, query: np.ndarray, k: int, excluded: Collection[int] = ()
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top k (scores, positions) by inner product, best first, skipping `excluded`
        positions: exact, over every row of this value."""
        if self.vectors is None or self.count == 0 or k <= 0:
            return np.empty(0, np.float32), np.empty(0, np.int64)
        scores = self.vectors[: self.count] @ np.asarray(query, np.float32).reshape(-1)
        if excluded:
            skip = np.fromiter(excluded, np.int64, len(excluded))
            scores[skip] = -np.inf
        k = min(k, self.count)
        top = np.argpartition(-scores, k - 1)[:k] if k < self.count else np.arange(self.count)
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[np.isfinite(scores[top])]
        return scores[top], top
