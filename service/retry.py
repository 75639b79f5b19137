"""When to try a refused snapshot version again: exponential backoff per version.

A version refused for a passing reason (the store was unreachable, a download broke
off) must be served once it can be; one refused for being invalid is tried again
too (a store can heal, an operator can re-upload), just less and less often.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Backoff:
    def __init__(
        self, first: float = 1.0, cap: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.first = first
        self.cap = cap
        self.clock = clock
        self._next: dict[str, tuple[float, float]] = {}  # version -> (when due, last delay)

    def due(self, version: str) -> bool:
        entry = self._next.get(version)
        return entry is None or self.clock() >= entry[0]

    def failed(self, version: str) -> float:
        """Record a failed try; returns the delay before the next one."""
        entry = self._next.get(version)
        delay = self.first if entry is None else min(self.cap, entry[1] * 2)
        self._next[version] = (self.clock() + delay, delay)
        return delay

    def clear(self, version: str) -> None:
        self._next.pop(version, None)
