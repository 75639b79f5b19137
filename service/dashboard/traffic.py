"""Request rate and latency over time, sampled from this process's own histogram."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from xsmoe.service.metrics import Metrics

SAMPLE_EVERY_S = 5.0


@dataclass(frozen=True)
class TrafficPoint:
    at: float
    rate: float  # requests/s on /v1 routes
    mean_ms: float


class TrafficSampler:
    def __init__(self, metrics: Metrics, keep: int = 120) -> None:
        self.metrics = metrics
        self.points: deque[TrafficPoint] = deque(maxlen=keep)
        self._last: tuple[float, float, float] | None = None

    def _totals(self) -> tuple[float, float]:
        count = total = 0.0
        for family in self.metrics.latency.collect():
            for sample in family.samples:
                if not sample.labels.get("route", "").startswith("/v1"):
                    continue
                if sample.name.endswith("_count"):
                    count += sample.value
                elif sample.name.endswith("_sum"):
                    total += sample.value
        return count, total

    def sample(self) -> None:
        now = time.time()
        count, total = self._totals()
        if self._last is not None:
            t0, c0, s0 = self._last
            dc = count - c0
            rate = dc / max(now - t0, 1e-6)
            self.points.append(TrafficPoint(now, rate, (total - s0) / dc * 1e3 if dc else 0.0))
        self._last = (now, count, total)
