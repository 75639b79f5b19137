"""The dashboard renders the real state: versions, gate, experts, utilization, traffic."""

from __future__ import annotations

import math
import re
import time

from fastapi.testclient import TestClient

from tests.deployment import (
    ADMIN_KEY,
    READ_KEY,
    WRITE_KEY,
    publish_snapshot,
    worker_settings_for,
)
from xsmoe.common import ledger
from xsmoe.common.events import FeedbackEvent
from xsmoe.service.app import create_app
from xsmoe.service.dashboard import session, svg
from xsmoe.service.dashboard.traffic import TrafficSampler, quantile
from xsmoe.service.metrics import Metrics
from xsmoe.service.settings import ApiSettings, ServiceSettings
from xsmoe.workers.redis_client import connect
from xsmoe.workers.status import STATUS_TTL_S, expert_changes, publish_changes, status_fields
from xsmoe.workers.worker import Worker


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
    rate = next(v for k, v in charts.items() if k.startswith("requests/s"))
    assert points >= 1 and rate == 2 * points  # all and 5xx, one point per sample each
    latency = next(v for k, v in charts.items() if k.startswith("latency"))
    assert latency >= 2  # p50 and p99 of the interval that had requests
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


def _card(html: str, title: str) -> str:
    """The text of one card (tags dropped): `title value detail`."""
    found = re.search(
        rf'<div class="card">{re.escape(title)}<b>(.*?)</b><small>(.*?)</small>', html
    )
    assert found, f"no card {title!r}"
    return re.sub(r"<[^>]+>", "", f"{found[1]} | {found[2]}")


def _wait_serving(client: TestClient, version: str) -> None:
    deadline = time.monotonic() + 30
    while client.get("/readyz").json().get("version") != version:
        assert time.monotonic() < deadline, f"{version} not served"
        time.sleep(0.05)


def test_after_a_swap_online_hr_says_no_clicks_yet_and_keeps_the_previous_figure(
    settings: ServiceSettings,
) -> None:
    db = connect(settings.redis_url)
    keys = settings.keys
    db.hset(keys.online, mapping={"v000001|n": 50, "v000001|hits": 10, "v000001|ndcg": 5})
    with TestClient(create_app(settings)) as client:
        html = client.get("/dashboard").text
        assert _card(html, "online HR@10") == "0.200 | over 50 clicks on v000001 · NDCG@10 0.100"
        assert "parent — ·" in _card(html, "serving")  # a bootstrap snapshot has none
        assert "parent None" not in html
        version = publish_snapshot(settings.snapshots, settings, seed=1, announce=True)
        _wait_serving(client, version)
        html = client.get("/dashboard").text
        card = _card(html, "online HR@10")
        assert card == f"no clicks yet on {version} | v000001 had 0.200 over 50 clicks"
        assert "0.000" not in card
        db.delete(keys.online)
        card = _card(client.get("/dashboard").text, "online HR@10")
        assert card.startswith(f"no clicks yet on {version} | scored when the worker")


def test_the_page_shows_what_the_worker_published_and_says_when_it_went_quiet(
    settings: ServiceSettings,
) -> None:
    db = connect(settings.redis_url)
    keys = settings.keys
    worker = Worker(worker_settings_for(settings, window_events=240, window_seconds=300))
    assert worker.lock.acquire()
    for i in range(3):
        worker.buffer.add(f"1-{i}", FeedbackEvent(user_id="u1", item_id=f"m{i}"))
    worker.heartbeat.beat()  # what the worker's heartbeat thread writes every 2 s
    assert 0 < db.ttl(keys.worker_status) <= STATUS_TTL_S
    changes = expert_changes({"text": [2, 2]}, {"text": (2, 3)}, {"text": [0, None]})
    record = {"version": "v000002", "parent": "v000001", "outcome": "promoted", "window": 0}
    publish_changes(db, keys, worker.metrics, changes, record)
    with TestClient(create_app(settings)) as client:
        html = client.get("/dashboard").text
        card = _card(html, "worker")
        assert card.startswith("test-worker leads | window 0: 3 / 240, closes in ~"), card
        assert "no window closed yet" in card
        feedback = _card(html, "feedback not yet trained")
        assert "open window 3 / 240" in feedback and "dead-lettered 0" in feedback
        events = html.split("Pruning and expansion")[1].split("</table>")[0]
        assert events.count("<tr>") == 3  # header + one row per changed stage
        assert "pruning + expansion" in events and "2 → 2" in events
        assert "expansion" in events and "2 → 3" in events and "promoted" in events
        # the same status, as the worker wrote it two minutes ago and then went quiet
        old = status_fields(
            "test-worker", "reading", 4, worker.buffer, None, (0, True), time.time() - 120
        )
        db.hset(keys.worker_status, mapping=old)  # type: ignore[arg-type]
        card = _card(client.get("/dashboard").text, "worker")
        assert card.startswith("worker: not seen for 2 min | was test-worker, window 4"), card
        db.hset(keys.worker_status, "phase", "stopped")
        card = _card(client.get("/dashboard").text, "worker")
        assert card.startswith("worker: stopped 2 min ago | test-worker stopped on purpose")
        db.delete(keys.worker_status)
        card = _card(client.get("/dashboard").text, "worker")
        assert card.startswith("no worker seen")
    worker.lock.release()


def test_experts_are_a_table_and_traffic_is_counted_per_version(client: TestClient) -> None:
    client.post("/v1/recommendations", json={"item_ids": ["m1"]})
    client.get("/v1/users/nobody/recommendations")  # no history: a fallback
    client.get("/v1/items/no-such-item")  # a 404
    html = client.get("/dashboard").text
    table = html.split("Experts of v000001")[1].split("</table>")[0]
    assert "<th>modality</th><th class=n>stage</th><th class=n>experts</th>" in table
    assert "<td>text</td><td class=n>1</td><td class=n>1</td><td class=n>0</td>" in table
    assert '{"text"' not in html  # no raw JSON
    versions = html.split("Traffic by version")[1].split("</table>")[0]
    row = re.sub(r"<[^>]+>", " ", versions.split("v000001 (serving)")[1].split("</tr>")[0]).split()
    assert row == ["3", "2", "50.0%", "33.3%", "0.0%"]  # requests, recommend, fallback, 4xx, 5xx
    answers = _card(html, "answers on v000001 (this replica)")
    assert answers == "50.0% fallback | 5xx 0.00% · 4xx 33.3% of 3 requests (2 recommend)"


def test_charts_scale_with_the_page_use_round_ticks_and_never_reuse_the_backbone_colour() -> None:
    assert svg.nice_ticks(0, 3.45) == [0, 1, 2, 3, 4]
    assert svg.nice_ticks(0, 0.27) == [0, 0.1, 0.2, 0.3]
    assert svg.nice_ticks(0, 1234) == [0, 500, 1000, 1500]
    assert svg.nice_ticks(0, 2, integer=True) == [0, 1, 2]  # counts: no 0.5 steps
    assert svg.nice_ticks(0, 2) == [0, 0.5, 1, 1.5, 2]
    names = ["backbone", *(f"expert {k}" for k in range(1, 12))]
    palette = svg.colors(names, {"backbone": svg.BACKBONE})
    assert palette["backbone"] == svg.BACKBONE
    assert len(set(palette.values())) == len(names)  # 11 experts, 12 distinct colours
    chart = svg.bar_chart("utilization", ["text stage 1"], {n: [0.1] for n in names})
    assert 'width="100%"' in chart and 'width="560"' not in chart
    height = float(re.search(r'viewBox="0 0 \d+ (\d+)"', chart)[1])  # type: ignore[index]
    assert height > svg.H  # the legend wrapped and the chart grew to hold it
    ys = {float(y) for y in re.findall(r'<text x="[\d.]+" y="([\d.]+)" class="legend"', chart)}
    assert len(ys) >= 2 and max(ys) < height
    ticks = re.findall(r'class="tick" text-anchor="end">([^<]+)<', chart)
    assert ticks == ["0", "0.02", "0.04", "0.06", "0.08", "0.10"]
    now = 1_700_000_000.0
    line = svg.line_chart("rate", {"a": [(now + 10 * i, float(i)) for i in range(30)]}, x_time=True)
    clocks = re.findall(r'text-anchor="middle">(\d\d:\d\d(?::\d\d)?)<', line)
    assert len(clocks) >= 3 and "time (UTC)" in line


def test_latency_is_p50_and_p99_of_the_interval_so_a_rare_slow_call_shows_only_in_p99() -> None:
    metrics = Metrics()
    sampler = TrafficSampler(metrics)
    sampler.sample()
    for _ in range(98):
        metrics.latency.labels("POST", "/v1/recommendations", "200").observe(0.0015)
    for _ in range(2):  # an item whose image is encoded: seconds, not milliseconds
        metrics.latency.labels("PUT", "/v1/items/{item_id}", "201").observe(2.0)
    metrics.latency.labels("GET", "/metrics", "200").observe(5.0)  # not a /v1 route
    sampler.sample()
    point = sampler.points[-1]
    assert 1.0 < point.p50_ms < 2.0  # the mean would be 41 ms, matching no request
    assert 1000 < point.p99_ms <= 2500
    assert point.errors == 0 and point.rate > 0
    sampler.sample()  # nothing in this interval: no latency, not 0 ms
    assert math.isnan(sampler.points[-1].p50_ms) and sampler.points[-1].rate == 0
    assert quantile(0.5, [(0.001, 0), (0.002, 10), (math.inf, 10)]) == 0.0015
