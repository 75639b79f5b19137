"""This process's mirror of the run-time catalog kept in Redis.

Every change gets a local sequence number. A serving state records the number
it reflects, so a snapshot loaded in the background can replay the changes that
arrived while it was loading: no item is lost across a swap.
"""

from __future__ import annotations

import bisect
from collections.abc import Container
from dataclasses import dataclass

from xsmoe.common.items import StoredItem


@dataclass(frozen=True)
class CatalogOp:
    seq: int
    item_id: str
    item: StoredItem | None  # None: a deletion


class RuntimeCatalog:
    def __init__(self) -> None:
        self.items: dict[str, StoredItem] = {}
        self.deleted: set[str] = set()
        self._ops: list[CatalogOp] = []
        self.seq = 0

    def add(self, item: StoredItem) -> bool:
        if item.item_id in self.items:
            return False
        self.items[item.item_id] = item
        self._log(item.item_id, item)
        return True

    def delete(self, item_id: str) -> bool:
        if item_id in self.deleted:
            return False
        self.deleted.add(item_id)
        self._log(item_id, None)
        return True

    def absorb(self, contained: Container[str]) -> int:
        """Forget run-time items a served snapshot now carries; changes up to now are
        reflected by that state, so their log goes too."""
        gone = [i for i in self.items if i in contained]
        for item_id in gone:
            del self.items[item_id]
        if gone:
            dropped = set(gone)
            self._ops = [op for op in self._ops if op.item_id not in dropped]
        return len(gone)

    def since(self, seq: int) -> list[CatalogOp]:
        """The changes after `seq`, oldest first; O(log n + changes) on the loop."""
        return self._ops[bisect.bisect_right(self._ops, seq, key=lambda op: op.seq) :]

    def _log(self, item_id: str, item: StoredItem | None) -> None:
        self.seq += 1
        self._ops.append(CatalogOp(self.seq, item_id, item))
        if len(self._ops) > 100_000:  # states older than this many changes are long gone
            del self._ops[:50_000]
