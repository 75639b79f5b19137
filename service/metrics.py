"""Prometheus metrics of one API process (its own registry, so apps do not collide)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5, 10)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.latency = Histogram(
            "xsmoe_request_seconds",
            "Request latency by route",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.feedback = Counter(
            "xsmoe_feedback_events_total",
            "Feedback events by type",
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
        self.model_version = Gauge("xsmoe_model_version", "Serving snapshot version", registry=r)
        self.user_vectors = Gauge(
            "xsmoe_user_vectors",
            "User-vector cache hits and misses, and forward passes (batches) run",
            ["kind"],
            registry=r,
        )
        self.online = Gauge(
            "xsmoe_online_metric",
            "Prequential metrics of the serving version (worker-recorded)",
            ["metric"],
            registry=r,
        )
        self.fallbacks = Counter(
            "xsmoe_fallback_total", "Answers from popularity (no usable history)", registry=r
        )


# nginx's "client closed request": the client left before the answer, so no status
# was sent, and it is not a server error either.
CLIENT_CLOSED = 499


class LatencyMiddleware:
    """Observes every request under its route template (not the raw path); a request
    whose client disconnected before the answer started counts under 499."""

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
            path = getattr(route, "path_format", None) or getattr(route, "path", "unmatched")
            self.metrics.latency.labels(scope["method"], path, str(status)).observe(
                time.perf_counter() - start
            )
