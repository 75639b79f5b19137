"""The service as users run it: real `xsmoe serve` processes, real Redis, HTTP."""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import pytest

from tests.deployment import WRITE_KEY, publish_snapshot
from tests.e2e.conftest import Launcher
from xsmoe.service.settings import ServiceSettings
from xsmoe.workers.redis_client import connect
from xsmoe_client import ApiError, Client

pytestmark = pytest.mark.slow


def test_recommend_feedback_and_new_items_through_the_client(launch: Launcher) -> None:
    with Client(launch(), api_key=WRITE_KEY) as xs:
        first = xs.recommend(user_id="alice", k=5)
        assert first.fallback == "popular" and len(first.items) == 5
        clicked = first.items[0].item_id
        xs.feedback("alice", clicked, event_id="a-1")
        after = xs.recommend(user_id="alice", k=39)
        assert after.fallback is None
        assert clicked not in after.item_ids
        xs.add_item("brand-new", text="the love war story")
        assert xs.get_item("brand-new").indexed
        everything = xs.recommend(user_id="alice", k=39)
        assert "brand-new" in everything.item_ids
        xs.feedback("alice", "brand-new")  # feedback on it is accepted at once
        assert xs.model_info().items_added_since == 1
        with pytest.raises(ApiError) as err:
            xs.recommend(user_id="alice", k=500)
        assert err.value.status == 422 and err.value.field_names == ["body.k"]


def test_a_snapshot_published_under_load_is_served_within_2s_with_no_failed_request(
    launch: Launcher, settings: ServiceSettings
) -> None:
    url = launch()
    statuses: Counter[int] = Counter()
    versions: list[tuple[float, str]] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=url, timeout=10) as http:
            n = 0
            while not stop.is_set():
                n += 1
                body = {"item_ids": [f"m{n % 40}", f"m{(n * 7) % 40}"], "k": 10}
                try:
                    r = http.post("/v1/recommendations", json=body)
                except httpx.TransportError:
                    statuses[-1] += 1
                    continue
                statuses[r.status_code] += 1
                if r.status_code == 200:
                    versions.append((time.monotonic(), r.json()["model_version"]))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    version = publish_snapshot(settings.snapshots, settings, seed=7, experts=2)
    published = time.monotonic()
    connect(settings.redis_url).publish(settings.keys.snapshot_channel, version)
    deadline = published + 10
    while time.monotonic() < deadline and not any(v == version for _, v in versions[-50:]):
        time.sleep(0.01)
    time.sleep(1.0)  # keep hammering the new version for a while
    stop.set()
    for t in threads:
        t.join()
    assert set(statuses) == {200}, statuses  # zero failed requests across the swap
    first_new = min(t for t, v in versions if v == version)
    assert first_new - published < 2.0
    # Once the new version answered, the old one never did again (one reference swap).
    assert all(v == version for t, v in versions if t > first_new + 0.05)
    assert statuses[200] > 20


def test_an_item_added_or_deleted_on_one_replica_is_served_so_by_another_within_1s(
    launch: Launcher,
) -> None:
    first, second = launch(), launch()
    w = {"X-API-Key": WRITE_KEY}
    with httpx.Client(timeout=10) as http:
        r = http.post(f"{first}/v1/items", json={"item_id": "shared", "text": "space"}, headers=w)
        assert r.status_code == 201, r.text
        added = time.monotonic()
        while http.get(f"{second}/v1/items/shared").json().get("indexed") is not True:
            assert time.monotonic() - added < 1.0, "replica 2 did not index the item in 1 s"
            time.sleep(0.01)
        body = {"item_ids": ["m3"], "k": 40}
        ids = {
            x["item_id"]
            for x in http.post(f"{second}/v1/recommendations", json=body).json()["items"]
        }
        assert "shared" in ids
        victim = http.post(f"{second}/v1/recommendations", json=body).json()["items"][0]["item_id"]
        assert http.delete(f"{first}/v1/items/{victim}", headers=w).status_code == 200
        deleted = time.monotonic()
        while victim in {
            x["item_id"]
            for x in http.post(f"{second}/v1/recommendations", json=body).json()["items"]
        }:
            assert time.monotonic() - deleted < 1.0, "replica 2 still recommends a deleted item"
            time.sleep(0.01)
        assert http.get(f"{second}/v1/items/{victim}").status_code == 404
