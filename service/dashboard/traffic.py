"""Request rate, error rate and latency percentiles over time, sampled from this
process's own latency histogram (so a rare slow route shows in p99, not in a mean)."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from xsmoe.service.metrics import Metrics

SAMPLE_EVERY_S = 5.0


@dataclass(frozen=True)
class TrafficPoint:
    at: float  # seconds since the epoch
    rate: float  # requests/s on /v1 routes
    errors: float  # of which 5xx, per second
    p50_ms: float  # NaN when no request came in the interval
    p99_ms: float


@dataclass(frozen=True)
class _Totals:
    count: float
    errors: float
    buckets: tuple[tuple[float, float], ...]  # (upper bound, cumulative count), by bound


def quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """Prometheus's histogram_quantile over cumulative (bound, count) pairs: linear
    within the bucket the rank falls in; the last finite bound for the +Inf bucket."""
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return math.nan
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, cumulative in buckets:
        if cumulative >= rank:
            if math.isinf(bound):
                return lower
            inside = cumulative - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, cumulative
    return lower


class TrafficSampler:
    def __init__(self, metrics: Metrics, keep: int = 120) -> None:
        self.metrics = metrics
        self.points: deque[TrafficPoint] = deque(maxlen=keep)
        self._last: tuple[float, _Totals] | None = None

    def _totals(self) -> _Totals:
        count = errors = 0.0
        buckets: dict[float, float] = {}
        for family in self.metrics.latency.collect():
            for sample in family.samples:
                if not sample.labels.get("route", "").startswith("/v1"):
                    continue
                if sample.name.endswith("_bucket"):
                    bound = float(sample.labels["le"])
                    buckets[bound] = buckets.get(bound, 0.0) + sample.value
                elif sample.name.endswith("_count"):
                    count += sample.value
                    if sample.labels.get("status", "").startswith("5"):
                        errors += sample.value
        return _Totals(count, errors, tuple(sorted(buckets.items())))

    def sample(self) -> None:
        now = time.time()
        totals = self._totals()
        if self._last is not None:
            t0, old = self._last
            seconds = max(now - t0, 1e-6)
            before = dict(old.buckets)
            delta = [(b, c - before.get(b, 0.0)) for b, c in totals.buckets]
            self.points.append(
                TrafficPoint(
                    now,
                    (totals.count - old.count) / seconds,
                    (totals.errors - old.errors) / seconds,
                    quantile(0.5, delta) * 1e3,
                    quantile(0.99, delta) * 1e3,
                )
            )
        self._last = (now, totals)
