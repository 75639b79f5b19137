"""Prometheus metrics of one worker process (its own registry), served on a port of
its own (`XSMOE_WORKER__METRICS_PORT`; off when unset)."""

from __future__ import annotations

import logging
import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)

log = logging.getLogger(__name__)

# A window trains for seconds (tiny catalogs) up to tens of minutes (large ones).
WINDOW_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.windows = Counter(
            "xsmoe_worker_windows_total",
            "Windows closed, by outcome: promoted, rejected (refused by the gate), skipped, "
            "ingested (training off), failed (training raised)",
            ["outcome"],
            registry=r,
        )
        self.published = Counter(
            "xsmoe_worker_snapshots_published_total",
            "Versions this worker made current (pointer moved and announced)",
            registry=r,
        )
        self.consumed = Counter(
            "xsmoe_worker_events_consumed_total",
            "Feedback stream entries read into a window",
            registry=r,
        )
        self.dead_lettered = Counter(
            "xsmoe_worker_events_dead_lettered_total",
            "Entries moved to the dead-letter stream, by why: malformed, unknown_item, poison",
            ["reason"],
            registry=r,
        )
        self.expert_changes = Counter(
            "xsmoe_worker_expert_changes_total",
            "Experts added (expansion) or removed (pruning) in a trained candidate",
            ["kind", "modality"],
            registry=r,
        )
        self.window_seconds = Histogram(
            "xsmoe_worker_window_seconds",
            "From a window's close to its commit: training, gate and snapshot write",
            buckets=WINDOW_BUCKETS,
            registry=r,
        )
        self.untrained = Gauge(
            "xsmoe_worker_untrained_events",
            "Feedback entries not yet trained: undelivered plus delivered-unacked, all shards "
            "(the streams' length on a Redis older than 7, which reports no lag)",
            registry=r,
        )
        self.window_fill = Gauge(
            "xsmoe_worker_window_events",
            "Events in the open window",
            registry=r,
        )
        self.leader = Gauge(
            "xsmoe_worker_leader",
            "1 while this process holds the training leader lock",
            registry=r,
        )


class MetricsServer:
    """The registry over HTTP on a port of its own, stopped with the worker."""

    def __init__(self, metrics: WorkerMetrics, port: int, host: str = "0.0.0.0") -> None:
        self.server: WSGIServer
        self.thread: threading.Thread
        self.server, self.thread = start_http_server(port, host, metrics.registry)
        self.port = int(self.server.server_port)
        log.info("worker metrics on http://%s:%d/metrics", host, self.port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
