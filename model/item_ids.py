"""A snapshot's item ids in row order, compact, with id -> row lookups.

A list of a million str objects and a dict from them to their rows cost a
replica about 140 MB and take half a second to build on every swap. Here the ids
are one UTF-8 blob with end offsets, and lookups go through their hashes sorted
once (a binary search, then a comparison of the stored id): about 35 bytes an
item. `hash(str)` is salted per process, which is fine: the index never leaves
the process that built it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import overload

import numpy as np


class ItemIds(Sequence[str]):
    def __init__(self, ids: Iterable[str]) -> None:
        strings = [str(i) for i in ids]
        encoded = [s.encode() for s in strings]
        n = len(encoded)
        self._ends = np.cumsum(np.fromiter(map(len, encoded), np.int64, n))
        self._blob = b"".join(encoded)
        hashes = np.fromiter(map(hash, strings), np.int64, n)
        self._order = np.argsort(hashes, kind="stable")
        self._hashes = hashes[self._order]

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, row: int) -> str: ...
    @overload
    def __getitem__(self, row: slice) -> list[str]: ...
    def __getitem__(self, row: int | slice) -> str | list[str]:
        if isinstance(row, slice):
            return [self._at(r) for r in range(*row.indices(len(self)))]
        if row < 0:
            row += len(self)
        if not 0 <= row < len(self):
            raise IndexError(f"row {row} of {len(self)} items")
        return self._at(row)

    def _at(self, row: int) -> str:
        start = int(self._ends[row - 1]) if row else 0
        return self._blob[start : int(self._ends[row])].decode()

    def __iter__(self) -> Iterator[str]:
        ends = self._ends.tolist()
        starts = [0, *ends[:-1]] if ends else []
        blob = self._blob
        return (blob[a:b].decode() for a, b in zip(starts, ends, strict=True))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ItemIds):
            return self._blob == other._blob and bool(np.array_equal(self._ends, other._ends))
        if isinstance(other, list | tuple):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal by content, like a list

    def get(self, item_id: str) -> int | None:
        """The row of `item_id`, or None."""
        h = hash(item_id)
        at = int(np.searchsorted(self._hashes, h))
        while at < len(self._hashes) and self._hashes[at] == h:
            row = int(self._order[at])
            if self._at(row) == item_id:
                return row
            at += 1
        return None

    def rows(self, item_ids: Sequence[str]) -> list[int | None]:
        """`get` of many ids in one binary search (a history: tens of ids a request)."""
        if not item_ids:
            return []
        wanted = np.fromiter((hash(i) for i in item_ids), np.int64, len(item_ids))
        ats = np.searchsorted(self._hashes, wanted).tolist()
        out: list[int | None] = []
        for item_id, at in zip(item_ids, ats, strict=True):
            row = int(self._order[at]) if at < len(self._order) else -1
            if row >= 0 and self._at(row) == item_id:
                out.append(row)
            else:  # a miss, or a hash shared with another id: the careful path
                out.append(self.get(item_id))
        return out

    def __contains__(self, item_id: object) -> bool:
        return isinstance(item_id, str) and self.get(item_id) is not None

    def duplicates(self) -> list[str]:
        """Ids that occur more than once (equal hashes are neighbours once sorted)."""
        same = np.flatnonzero(self._hashes[1:] == self._hashes[:-1])
        out: set[str] = set()
        for at in same.tolist():
            a, b = self._at(int(self._order[at])), self._at(int(self._order[at + 1]))
            if a == b:
                out.add(a)
        return sorted(out)


def as_item_ids(ids: Sequence[str]) -> ItemIds:
    return ids if isinstance(ids, ItemIds) else ItemIds(ids)
