"""The dashboard renders the real state: versions, gate, experts, utilization, traffic."""

from __future__ import annotations

import re
import time

from fastapi.testclient import TestClient

from common import ledger
from service.settings import ServiceSettings


def _window(n: int, version: str, outcome: str) -> dict[str, object]:
    return {
        "window": n,
        "outcome": outcome,
        "reason": f"window {n} reason",
        "version": version,
        "parent": "v000001",
        "created_at": time.time(),
        "events": 100,
        "stream_range": [],
        "metrics": {"gate": {"candidate": {"ndcg@10": 0.2 + n / 100}, "serving": {"ndcg@10": 0.2}}},
        "online": {"version": "v000001", "cases": 50, "hr@10": 0.1 * (n + 1), "ndcg@10": 0.05},
        "experts": {"text": [2 + n, 2 + n]},
        "utilization": {"text": [[0.5, 0.5], [0.4, 0.6]]},
    }


def _charts(html: str) -> dict[str, int]:
    """aria-label -> number of marks drawn."""
    return {
        label: int(marks)
        for marks, label in re.findall(r'data-marks="(\d+)"[^>]*aria-label="([^"]+)"', html)
    }


def test_dashboard_draws_windows_experts_and_traffic(
    client: TestClient, settings: ServiceSettings
) -> None:
    for n, (version, outcome) in enumerate([("v000002", "promoted"), ("v000003", "rejected")]):
        ledger.append(settings.snapshots, _window(n, version, outcome))
    for _ in range(3):
        client.post("/v1/recommendations", json={"item_ids": ["m1"]})
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    runtime.traffic.sample()
    client.post("/v1/recommendations", json={"item_ids": ["m2"]})
    runtime.traffic.sample()
    r = client.get("/dashboard")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "v000001" in html and 'http-equiv="refresh"' in html
    assert "<script" not in html and "http" not in html.split("<body>")[1].replace(
        "http-equiv", ""
    )  # no CDN, nothing fetched
    charts = _charts(html)
    quality = next(v for k, v in charts.items() if k.startswith("per window"))
    assert quality == 6  # 2 windows x (candidate, serving, online)
    experts = next(v for k, v in charts.items() if k.startswith("experts per stage"))
    assert experts == 6  # v000001 + 2 windows, 2 stages each
    points = len(runtime.traffic.points)  # the lifespan's sampler also took its first
    assert (
        points >= 1 and next(v for k, v in charts.items() if k.startswith("requests/s")) == points
    )
    assert "v000003 x" in html  # the rejected candidate is marked
    assert "window 1 reason" in html


def test_dashboard_needs_a_key_in_prod(settings: ServiceSettings) -> None:
    from service.app import create_app
    from service.settings import ApiSettings
    from tests.deployment import READ_KEY

    api = ApiSettings.model_validate({**settings.api.model_dump(), "mode": "prod",
                                      "read_key": READ_KEY,
                                      "write_key": "w", "admin_key": "a"})  # fmt: skip
    with TestClient(create_app(settings.model_copy(update={"api": api}))) as client:
        assert client.get("/dashboard").status_code == 401
        assert client.get(f"/dashboard?key={READ_KEY}").status_code == 200
