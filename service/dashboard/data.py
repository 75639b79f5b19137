"""What one render of the dashboard shows, gathered by the route."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xsmoe.model.snapshot import MANIFEST, list_versions
from xsmoe.service.dashboard.traffic import TrafficPoint
from xsmoe.service.worker_status import ModelEvent, WorkerStatus


@dataclass
class VersionTraffic:
    requests: float = 0.0  # /v1 requests answered while this version served
    recommendations: float = 0.0
    fallbacks: float = 0.0
    client_errors: float = 0.0  # 4xx
    server_errors: float = 0.0  # 5xx


@dataclass
class DashboardData:
    version: str
    manifest: dict[str, Any]
    items_indexed: int
    swaps: int
    windows: list[dict[str, Any]]  # ledger lines (the worker's windows), oldest first
    online: dict[str, dict[str, float]]
    lag: dict[str, int]
    traffic: list[TrafficPoint] = field(default_factory=list)
    frozen: dict[str, tuple[int, ...]] = field(default_factory=dict)  # leading frozen experts
    worker: WorkerStatus | None = None
    model_events: list[ModelEvent] = field(default_factory=list)
    by_version: dict[str, VersionTraffic] = field(default_factory=dict)
    redis_ok: bool = True
    now: float = field(default_factory=time.time)


def manifests(root: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for version in list_versions(root):
        try:
            out[version] = json.loads((root / version / MANIFEST).read_text())
        except (OSError, ValueError):
            continue
    return out


def clock(t: float | None) -> str:
    """Wall-clock time of day, UTC (the page says so)."""
    return time.strftime("%H:%M:%S", time.gmtime(t)) if t else "—"
