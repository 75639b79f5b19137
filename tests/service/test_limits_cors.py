"""Deployment settings the API honours: the feedback batch limit and CORS (a real
browser preflight, over a socket); ids and times in the forms clients send them."""

from __future__ import annotations

import httpx
from fastapi.testclient import TestClient

from tests.deployment import WRITE_KEY
from tests.service.live import live_server
from xsmoe.service.app import create_app
from xsmoe.service.settings import ApiSettings, ServiceSettings
from xsmoe.workers.redis_client import connect

W = {"X-API-Key": WRITE_KEY}
SHOP = "https://shop.example"


def _with_api(settings: ServiceSettings, **api: object) -> ServiceSettings:
    merged = ApiSettings.model_validate({**settings.api.model_dump(), **api})
    return settings.model_copy(update={"api": merged})


def test_the_feedback_batch_limit_is_the_setting(settings: ServiceSettings) -> None:
    event = {"user_id": "u", "item_id": "m1"}
    with TestClient(create_app(_with_api(settings, max_events=5))) as client:
        assert client.post("/v1/feedback", json={"events": [event] * 5}, headers=W).is_success
        r = client.post("/v1/feedback", json={"events": [event] * 6}, headers=W)
        assert r.status_code == 422 and "XSMOE_API__MAX_EVENTS" in r.json()["detail"]
        assert r.json()["fields"][0]["field"] == "body.batch.events"  # the batch form
    with TestClient(create_app(_with_api(settings, max_events=1500))) as client:
        r = client.post("/v1/feedback", json={"events": [event] * 1200}, headers=W)
        assert r.status_code == 202 and r.json()["accepted"] == 1200


def test_numeric_ids_and_iso_timestamps(client: TestClient, redis_url: str) -> None:
    assert client.put("/v1/items/777", json={"text": "toy story"}, headers=W).status_code == 201
    event = {"user_id": 196, "item_id": 777, "timestamp": "2026-01-02T03:00:00Z"}
    r = client.post("/v1/feedback", json=event, headers=W)
    assert r.status_code == 202, r.text
    local = {"user_id": "196", "item_id": "m1", "ts": "2026-01-02T04:00:00+01:00"}
    assert client.post("/v1/feedback", json=local, headers=W).status_code == 202
    keys = client.app.state.runtime.keys  # type: ignore[attr-defined]
    db = connect(redis_url, decode_responses=True)
    entries = [f for _, f in db.xrange(keys.stream(keys.shard("196")))]
    assert [(e["user_id"], e["item_id"], float(e["ts"])) for e in entries] == [
        ("196", "777", 1767322800.0),
        ("196", "m1", 1767322800.0),
    ]
    assert client.get("/v1/users/196").json()["history"] == ["777", "m1"]
    r = client.post("/v1/feedback", json={**event, "timestamp": "yesterday"}, headers=W)
    assert r.status_code == 422 and "ISO-8601" in r.json()["detail"]
    r = client.post("/v1/feedback", json={**event, "user_id": True}, headers=W)
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "body.event.user_id"


def test_cors_preflight_allows_the_configured_origin(settings: ServiceSettings) -> None:
    preflight = {
        "Origin": SHOP,
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "x-api-key, content-type",
    }
    with live_server(_with_api(settings, cors_origins=[SHOP])) as live:
        r = httpx.options(f"{live.url}/v1/items/p1", headers=preflight, timeout=10)
        assert r.status_code == 200, r.text
        assert r.headers["access-control-allow-origin"] == SHOP
        assert "PUT" in r.headers["access-control-allow-methods"]
        assert "x-api-key" in r.headers["access-control-allow-headers"].lower()
        assert "access-control-allow-credentials" not in r.headers
        other = httpx.options(
            f"{live.url}/v1/items/p1", headers={**preflight, "Origin": "https://evil.example"}
        )
        assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
        r = httpx.get(f"{live.url}/v1/model", headers={"Origin": SHOP}, timeout=10)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == SHOP
        r = httpx.put(
            f"{live.url}/v1/items/p1",
            json={"text": "toy story"},
            headers={"Origin": SHOP, **W},
            timeout=30,
        )
        assert r.status_code == 201 and r.headers["access-control-allow-origin"] == SHOP
    with live_server(settings) as live:  # the default: CORS off
        r = httpx.options(f"{live.url}/v1/items/p1", headers=preflight, timeout=10)
        assert r.status_code == 405 and "access-control-allow-origin" not in r.headers


def test_cors_origins_are_checked() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="not an origin"):
        ApiSettings.model_validate({"cors_origins": ["https://shop.example/app"]})
    api = ApiSettings.model_validate({"cors_origins": "https://a.example, http://localhost:3000"})
    assert api.cors_origins == ["https://a.example", "http://localhost:3000"]
    assert ApiSettings().cors_origins == []
