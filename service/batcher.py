"""User vectors for concurrent requests: one forward pass per event-loop turn, plus a
small cache.

Requests that need a vector while the loop is busy are answered together: a
batch of 8 histories costs about 3x one, not 8x. The cache is keyed by model
version and the exact history rows, so a click (a new row) or a swap (a new
version) can never serve a stale vector.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from xsmoe.model.retrieval import Retriever

MAX_BATCH = 64

# (version, history rows as int32 bytes): bytes are not tracked by the garbage
# collector, tuples of ints are; 10,000 cached tuples made gen-2 collections stall
# the event loop for tens of milliseconds.
Key = tuple[str, bytes]


class UserVectors:
    def __init__(self, cache_size: int = 10_000) -> None:
        self.cache_size = cache_size
        self._cache: OrderedDict[Key, np.ndarray] = OrderedDict()
        self._pending: list[tuple[Retriever, Sequence[int], asyncio.Future[np.ndarray]]] = []
        self.hits = self.misses = self.batches = 0

    async def vector(self, retriever: Retriever, rows: Sequence[int]) -> np.ndarray:
        key = (retriever.version, np.asarray(rows, np.int32).tobytes())
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            self.hits += 1
            return cached
        self.misses += 1
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending.append((retriever, rows, future))
        return await future

    def clear(self) -> None:
        self._cache.clear()

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        groups: dict[int, list[tuple[Retriever, Sequence[int], asyncio.Future[np.ndarray]]]]
        groups = {}
        for entry in pending:  # one batch per serving state (a swap may split a turn)
            groups.setdefault(id(entry[0]), []).append(entry)
        for group in groups.values():
            retriever = group[0][0]
            for lo in range(0, len(group), MAX_BATCH):
                chunk = group[lo : lo + MAX_BATCH]
                try:
                    vectors = retriever.user_vectors([rows for _, rows, _ in chunk])
                except Exception as exc:  # surfaces in each request, not in the loop
                    for _, _, future in chunk:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                self.batches += 1
                for (_, rows, future), vector in zip(chunk, vectors, strict=True):
                    key = (retriever.version, np.asarray(rows, np.int32).tobytes())
                    self._cache[key] = vector
                    if not future.done():
                        future.set_result(vector)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
