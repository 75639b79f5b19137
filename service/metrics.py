"""Prometheus metrics of one API process (its own registry, so apps do not collide).

One metric per meaning: counters end in `_total`, latencies are histograms, the
serving version is a label (`xsmoe_model_info{version="v000003"} 1`), never a number.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10,
)  # fmt: skip
KEEP_VERSIONS = 5  # per-version series kept: every swap adds a version
RECOMMEND = "recommend"


class ModelInfo(Collector):
    """`xsmoe_model_info{version=...} 1` for the version serving when scraped."""

    def __init__(self, source: Callable[[], str | None]) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "xsmoe_model_info", "The serving snapshot (value 1; the version is a label)",
            labels=["version"],
        )  # fmt: skip
        version = self.source()
        if version is not None:
            family.add_metric([version], 1.0)
        yield family


class _Total:
    def __init__(self) -> None:
        self.value = 0.0

    def set(self, value: float) -> None:
        self.value = float(value)


class MirroredCounters(Collector):
    """Counters another object keeps (the user-vector cache counts its own hits): its
    running totals are copied in with `labels(kind).set(total)` and exposed as
    counters, one metric per kind."""

    def __init__(self, names: dict[str, tuple[str, str]]) -> None:
        self.names = names  # kind -> (metric name without _total, help)
        self.totals = {kind: _Total() for kind in names}

    def labels(self, kind: str) -> _Total:
        return self.totals[kind]

    def collect(self) -> Iterator[Metric]:
        for kind, (name, text) in self.names.items():
            yield CounterMetricFamily(name, text, value=self.totals[kind].value)


class GaugesByName:
    """`labels(name).set(v)` onto one gauge per name: a count and ratios never share
    one metric."""

    def __init__(self, gauges: dict[str, Gauge]) -> None:
        self.gauges = gauges

    def labels(self, name: str) -> Gauge:
        return self.gauges[name]


class VersionCounter:
    """A counter whose first label is the serving version; only the last
    KEEP_VERSIONS versions keep their series (versions never stop coming)."""

    def __init__(
        self, counter: Counter, names: tuple[str, ...], versions: Callable[[], str | None]
    ) -> None:
        self.counter = counter
        self.names = names  # the labels after the version
        self.versions = versions
        self.series: dict[str, set[tuple[str, ...]]] = {}  # version -> other labels, in order

    def inc(self, *labels: str, version: str | None = None) -> None:
        version = version or self.versions() or "none"
        seen = self.series.setdefault(version, set())
        if labels not in seen:
            seen.add(labels)
            while len(self.series) > KEEP_VERSIONS:
                old = next(iter(self.series))
                for rest in self.series.pop(old):
                    self.counter.remove(old, *rest)
        self.counter.labels(version, *labels).inc()

    def totals(self) -> dict[str, dict[tuple[str, ...], float]]:
        """version -> other labels -> count, oldest version first."""
        out: dict[str, dict[tuple[str, ...], float]] = {v: {} for v in self.series}
        for family in self.counter.collect():
            for sample in family.samples:
                if not sample.name.endswith("_total"):
                    continue
                key = tuple(sample.labels[n] for n in self.names)
                out.setdefault(sample.labels["version"], {})[key] = sample.value
        return out


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        # Set by the app once it serves: the version every label below is about.
        self.serving_version: Callable[[], str | None] = lambda: None
        self.latency = Histogram(
            "xsmoe_request_seconds",
            "Request latency by route template, method and status",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.requests = VersionCounter(
            Counter(
                "xsmoe_version_requests_total",
                "/v1 requests by the version serving when answered, kind (recommend or "
                "other) and status class (2xx, 4xx, 5xx)",
                ["version", "kind", "status_class"],
                registry=r,
            ),
            ("kind", "status_class"),
            lambda: self.serving_version(),
        )
        self.fallbacks = VersionCounter(
            Counter(
                "xsmoe_fallback_total",
                "Recommendations answered from popularity (no usable history), by version",
                ["version"],
                registry=r,
            ),
            (),
            lambda: self.serving_version(),
        )
        self.feedback = Counter(
            "xsmoe_feedback_events_total",
            "Feedback events by type and outcome",
            ["type", "outcome"],
            registry=r,
        )
        self.items = Counter(
            "xsmoe_catalog_changes_total", "Items added/deleted", ["op"], registry=r
        )
        self.swaps = Counter("xsmoe_swaps_total", "Snapshot swaps", ["outcome"], registry=r)
        self.swap_seconds = Histogram(
            "xsmoe_swap_seconds",
            "Load + validate + warm-up + swap time",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
            registry=r,
        )
        self.index_items = Gauge("xsmoe_index_items", "Recommendable items", registry=r)
        self.model_version = ModelInfo(lambda: self.serving_version())
        r.register(self.model_version)
        self.user_vectors = MirroredCounters(
            {
                "hit": ("xsmoe_user_vector_cache_hits", "User vectors found in the cache"),
                "miss": ("xsmoe_user_vector_cache_misses", "User vectors computed afresh"),
                "batch": ("xsmoe_user_vector_batches", "Forward passes run (one per batch)"),
            }
        )
        r.register(self.user_vectors)
        self.online = GaugesByName(
            {
                "hr@10": Gauge(
                    "xsmoe_online_hr_at_10",
                    "Prequential HR@10 of the serving version (worker-recorded; 0 until clicks)",
                    registry=r,
                ),
                "ndcg@10": Gauge(
                    "xsmoe_online_ndcg_at_10",
                    "Prequential NDCG@10 of the serving version (worker-recorded)",
                    registry=r,
                ),
                "n": Gauge(
                    "xsmoe_online_scored_clicks",
                    "Clicks the online metrics of the serving version are over (restarts "
                    "at a swap)",
                    registry=r,
                ),
            }
        )


# nginx's "client closed request": the client left before the answer, so no status
# was sent, and it is not a server error either.
CLIENT_CLOSED = 499


# A label takes only these: any other method would be a new series per request.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _kind(route: str) -> str:
    return RECOMMEND if route.endswith("/recommendations") else "other"


class LatencyMiddleware:
    """Observes every request under its route template (not the raw path); a request
    whose client disconnected before the answer started counts under 499. /v1
    requests are also counted by the serving version."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status: int | None = None
        disconnected = False

        async def watch_receive() -> Message:
            nonlocal disconnected
            message = await receive()
            disconnected = disconnected or message["type"] == "http.disconnect"
            return message

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, watch_receive, send_status)
        finally:
            if status is None:
                status = CLIENT_CLOSED if disconnected else 500
            route = scope.get("route")
            path = str(
                getattr(route, "path_format", None) or getattr(route, "path", None) or "unmatched"
            )
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            self.metrics.latency.labels(method, path, str(status)).observe(
                time.perf_counter() - start
            )
            if path.startswith("/v1/"):
                self.metrics.requests.inc(_kind(path), f"{status // 100}xx")
