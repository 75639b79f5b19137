"""What the API keeps in Redis stays bounded: markers only for client event ids,
expiring user state, run-time items dropped once a snapshot carries them."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from tests.deployment import WRITE_KEY, planted_events, worker_settings_for
from xsmoe.common import ledger
from xsmoe.service.app import create_app
from xsmoe.service.settings import ServiceSettings
from xsmoe.workers.redis_client import connect
from xsmoe.workers.worker import Worker

W = {"X-API-Key": WRITE_KEY}


def test_only_client_event_ids_leave_a_marker_and_user_state_expires(
    client: TestClient, settings: ServiceSettings
) -> None:
    keys = settings.keys
    db = connect(settings.redis_url)
    events = [
        {"user_id": "ttl-user", "item_id": "m1"},  # no event id: the server makes one
        {"user_id": "ttl-user", "item_id": "m2", "event_id": "given-1"},
        {"user_id": "ttl-user", "item_id": "m3", "type": "dislike"},
    ]
    r = client.post("/v1/feedback", json={"events": events}, headers=W)
    assert r.status_code == 202 and r.json()["accepted"] == 3
    markers = list(db.scan_iter(match=f"{keys.prefix}:*:evt:*"))
    assert markers == [keys.event("given-1", "ttl-user").encode()]
    assert 0 < db.ttl(markers[0]) <= settings.serving.event_ttl_seconds == 86400
    for key in (keys.history("ttl-user"), keys.disliked("ttl-user")):
        assert 0 < db.ttl(key) <= settings.serving.user_ttl_seconds
    again = client.post("/v1/feedback", json={"events": events[1:2]}, headers=W).json()
    assert again["duplicates"] == 1  # the marker still deduplicates a retried client id


def test_run_time_items_leave_redis_and_memory_once_a_snapshot_carries_them(
    settings: ServiceSettings,
) -> None:
    keys = settings.keys
    db = connect(settings.redis_url)
    with TestClient(create_app(settings)) as client:
        r = client.post("/v1/items", json={"item_id": "late", "text": "a new film"}, headers=W)
        assert r.status_code == 201
        assert db.sismember(keys.items, "late")
        events = planted_events(n_users=12, length=10)
        events[-1] = {**events[-1], "item_id": "late"}
        assert client.post("/v1/feedback", json={"events": events}, headers=W).status_code == 202
        worker = Worker(worker_settings_for(settings, window_events=120, epsilon=1.0))
        for _ in range(200):
            if ledger.finished(settings.snapshots) == 0:
                break
            worker.step()
        worker.lock.release()
        record = ledger.records(settings.snapshots)[0]
        assert record["outcome"] == "promoted"
        assert not db.sismember(keys.items, "late") and not db.exists(keys.item("late"))
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        deadline = time.monotonic() + 30
        while client.get("/readyz").json().get("version") != record["version"]:
            assert time.monotonic() < deadline, "the new version was not swapped in"
            time.sleep(0.05)
        assert "late" not in runtime.serving.catalog.items  # the replica's copy went too
        got = client.get("/v1/items/late").json()
        assert got["source"] == "snapshot" and got["indexed"]
        recs = client.post("/v1/recommendations", json={"item_ids": ["m1"], "k": 41}).json()
        assert "late" in {x["item_id"] for x in recs["items"]}
