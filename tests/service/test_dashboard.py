"""The dashboard renders the real state: versions, gate, experts, utilization, traffic."""

from __future__ import annotations

import re
import time

from fastapi.testclient import TestClient

from tests.deployment import ADMIN_KEY, READ_KEY, WRITE_KEY
from xsmoe.common import ledger
from xsmoe.service.app import create_app
from xsmoe.service.dashboard import session
from xsmoe.service.settings import ApiSettings, ServiceSettings


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


def _prod(settings: ServiceSettings) -> ServiceSettings:
    api = ApiSettings.model_validate(
        {**settings.api.model_dump(), "mode": "prod", "read_key": READ_KEY}
    )
    return settings.model_copy(update={"api": api})


def test_dashboard_in_prod_opens_with_the_header_or_a_signed_in_cookie(
    settings: ServiceSettings,
) -> None:
    with TestClient(create_app(_prod(settings)), follow_redirects=False) as client:
        r = client.get("/dashboard")
        assert r.status_code == 303 and r.headers["location"] == "/dashboard/login"
        assert client.get("/dashboard", headers={"X-API-Key": READ_KEY}).status_code == 200
        assert client.get("/dashboard", headers={"X-API-Key": "wrong"}).status_code == 403
        form = client.get("/dashboard/login")
        assert form.status_code == 200 and 'method="post"' in form.text
        r = client.post("/dashboard/login", data={"key": "not-a-key-at-all"})
        assert r.status_code == 403 and "does not open" in r.text
        assert session.COOKIE not in client.cookies
        r = client.post("/dashboard/login", data={"key": WRITE_KEY})  # any reading key
        assert r.status_code == 303 and r.headers["location"] == "/dashboard"
        cookie = r.headers["set-cookie"]
        for attribute in ("HttpOnly", "SameSite=strict", "Path=/dashboard", "Max-Age=43200"):
            assert attribute in cookie
        value = client.cookies[session.COOKIE]
        assert WRITE_KEY not in value and READ_KEY not in value  # an HMAC, not the key
        page = client.get("/dashboard")
        assert page.status_code == 200 and "v000001" in page.text
        for key in (READ_KEY, WRITE_KEY, ADMIN_KEY):  # nowhere in what the browser gets
            assert key not in page.text and key not in str(page.url)
        assert client.get("/v1/model").status_code == 401  # the cookie opens no API route
        r = client.post("/dashboard/logout")
        assert r.status_code == 303 and session.COOKIE not in client.cookies
        assert client.get("/dashboard").status_code == 303


def test_a_tampered_or_expired_cookie_and_a_key_in_the_url_are_refused(
    settings: ServiceSettings,
) -> None:
    prod = _prod(settings)
    now = int(time.time())
    good = session.sign(prod.api, now + 3600)
    expiry, _, mac = good.partition(".")
    bad = {
        "expired": session.sign(prod.api, now - 1),
        "extended": f"{now + 10 * 86400}.{mac}",
        "forged": f"{expiry}.{'0' * len(mac)}",
        "signed with other keys": session.sign(settings.api, now + 3600),
        "raw key": READ_KEY,
    }
    with TestClient(create_app(prod), follow_redirects=False) as client:
        client.cookies.set(session.COOKIE, good, path="/dashboard")
        assert client.get("/dashboard").status_code == 200
        for why, value in bad.items():
            client.cookies.set(session.COOKIE, value, path="/dashboard")
            r = client.get("/dashboard")
            assert r.status_code == 303, why
        for path in ("/dashboard", "/dashboard/login"):
            r = client.get(path, params={"key": READ_KEY})
            assert r.status_code == 400, path
            out = r.json()
            assert out["fields"][0]["field"] == "key" and "/dashboard/login" in out["detail"]
            assert READ_KEY not in r.text
