"""The worker against a real Redis and the real API: windows, training, gate, publish."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.deployment import WRITE_KEY, planted_events, worker_settings_for
from xsmoe.common import ledger
from xsmoe.model.snapshot import current_version
from xsmoe.service.app import create_app
from xsmoe.service.settings import ServiceSettings
from xsmoe.workers.leader import LeaderLock
from xsmoe.workers.redis_client import connect
from xsmoe.workers.worker import Worker

W = {"X-API-Key": WRITE_KEY}


def wait_for(check: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


@pytest.fixture
def running(settings: ServiceSettings) -> Iterator[Worker]:
    worker = Worker(worker_settings_for(settings, window_events=240, epsilon=0.05))
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    yield worker
    worker.stop.set()
    thread.join(timeout=30)


def test_feedback_through_the_api_becomes_a_new_served_version(
    settings: ServiceSettings, running: Worker
) -> None:
    root = settings.snapshots
    with TestClient(create_app(settings)) as client:
        events = planted_events(n_users=24, length=10)
        r = client.post("/v1/feedback", json={"events": events}, headers=W)
        assert r.status_code == 202 and r.json()["accepted"] == 240
        wait_for(lambda: ledger.finished(root) == 0)  # committed, promoted and acked
        record = ledger.records(root)[0]
        assert record["outcome"] == "promoted", record["reason"]
        version = record["version"]
        assert current_version(root) == version
        wait_for(lambda: client.get("/readyz").json()["version"] == version, timeout=10)
        info = client.get("/v1/model").json()
        parent = json.loads((root / "v000001" / "manifest.json").read_text())
        child = json.loads((root / version / "manifest.json").read_text())
        # XSMoE: each stage lost at most one expert (prune) and gained one (expand, capped).
        for m, counts in parent["experts"].items():
            for s, n in enumerate(counts):
                pruned = child["pruned"][m][s] is not None
                assert child["experts"][m][s] == min(n - pruned + 1, 8)
        assert info["experts"] == child["experts"] and info["parent"] == "v000001"
        assert child["gate"]["outcome"] == "promoted"
        gate = child["metrics"]["gate"]
        assert gate["candidate"]["ndcg@10"] >= gate["serving"]["ndcg@10"] - 0.05
        assert child["utilization"]["text"] and len(child["utilization"]["text"]) == 2
        detail = ledger.detail(root, record)
        assert sorted(detail["event_ids"]) == sorted(e["event_id"] for e in events)
        assert "event_ids" not in record  # the ledger line stays small: ranges and a digest
        assert running.consumer.pending_count() == 0
        # Prequential metrics of the version that was serving, in the API.
        online = client.get("/v1/model").json()["online"]
        assert online["v000001"]["n"] > 0 and 0 <= online["v000001"]["hr@10"] <= 1


def test_malformed_events_are_dead_lettered_and_acked(
    settings: ServiceSettings, running: Worker
) -> None:
    keys = settings.keys
    r = connect(settings.redis_url, decode_responses=True)
    r.xadd(keys.feedback, {"user_id": "u", "type": "zap"})  # no item, bad type
    wait_for(lambda: r.xlen(keys.dead_letter) == 1, timeout=20)
    dead = r.xrange(keys.dead_letter)[0][1]
    assert dead["reason"].startswith("malformed event") and dead["user_id"] == "u"
    wait_for(lambda: running.consumer.pending_count() == 0, timeout=10)


def test_only_one_worker_leads(settings: ServiceSettings) -> None:
    client = connect(settings.redis_url)
    key = settings.keys.leader
    first = LeaderLock(client, key, "a", ttl_ms=1000)
    second = LeaderLock(client, key, "b", ttl_ms=1000)
    assert first.acquire() and not second.acquire()
    time.sleep(1.5)  # the first keeps renewing in the background
    assert first.held and not second.acquire()
    first.release()
    assert second.acquire()
    second.release()
    # A leader that dies (stops renewing) loses the lock when it expires.
    third = LeaderLock(client, key, "c", ttl_ms=300)
    assert client.set(key, "dead-leader", nx=True, px=300)
    wait_for(lambda: third.acquire(), timeout=5)
    third.release()


def test_a_redis_restart_is_survived(settings: ServiceSettings, tmp_path: Path) -> None:
    from xsmoe.redis_server import EmbeddedRedis

    server = EmbeddedRedis(tmp_path / "redis", persist=True).start()
    own = settings.model_copy(update={"redis_url": server.url})
    worker = Worker(worker_settings_for(own, window_events=120, epsilon=1.0))
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        keys = own.keys
        wait_for(lambda: worker.lock.held, timeout=10)
        server.stop()
        time.sleep(1.0)  # the worker sees connection errors and backs off
        server = EmbeddedRedis(tmp_path / "redis", port=server.port, persist=True).start()
        r = connect(server.url, decode_responses=True)
        from xsmoe.common.events import FeedbackEvent, stream_fields

        for e in planted_events(n_users=12, length=10, seed=3):
            r.xadd(keys.feedback, stream_fields(FeedbackEvent.model_validate(e)))
        wait_for(lambda: len(ledger.records(own.snapshots)) >= 1, timeout=90)
        assert ledger.records(own.snapshots)[0]["events"] == 120
    finally:
        worker.stop.set()
        thread.join(timeout=30)
        server.stop()


def test_a_content_only_first_snapshot_is_trained_by_the_first_window(
    settings: ServiceSettings,
) -> None:
    from tests.deployment import publish_snapshot

    root = settings.snapshots
    first = publish_snapshot(root, settings, content_only=True)  # a catalog, no interactions
    worker = Worker(worker_settings_for(settings, window_events=240, epsilon=0.05))
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        with TestClient(create_app(settings)) as client:
            r = client.post("/v1/feedback", json={"events": planted_events(24, 10)}, headers=W)
            assert r.status_code == 202
            wait_for(lambda: len(ledger.records(root)) >= 1)
    finally:
        worker.stop.set()
        thread.join(timeout=30)
    record = ledger.records(root)[0]
    assert record["outcome"] == "promoted", record["reason"]
    child = json.loads((root / record["version"] / "config.json").read_text())["recommender"]
    parent = json.loads((root / first / "config.json").read_text())["recommender"]
    assert parent["content_only"] and not child["content_only"]
    assert child["trained_windows"] == 1
    assert child["experts"] == parent["experts"]  # the first window trains as built: no growth


def test_a_candidate_whose_index_misses_the_recall_target_is_not_published(
    settings: ServiceSettings,
) -> None:
    from tests.deployment import publish_snapshot
    from xsmoe.common.settings import IndexSettings

    root = settings.snapshots
    # 640 items in an IVF of 10 lists, allowed 1 probe: recall@10 cannot reach 1.0
    serving = publish_snapshot(root, settings, item_ids=[f"m{i}" for i in range(640)])
    strict = IndexSettings(exact_max_items=0, min_recall=1.0, max_nprobe=1)
    opts = worker_settings_for(settings, window_events=240, epsilon=1.0)
    worker = Worker(opts.model_copy(update={"index": strict}))
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        with TestClient(create_app(settings)) as client:
            r = client.post("/v1/feedback", json={"events": planted_events(24, 10)}, headers=W)
            assert r.status_code == 202
            wait_for(lambda: ledger.finished(root) == 0)
    finally:
        worker.stop.set()
        thread.join(timeout=30)
    [record] = ledger.records(root)
    assert record["outcome"] == "rejected" and record["version"] is None
    assert "recall@10" in record["reason"] and "not published" in record["reason"]
    assert "experts" not in record  # nothing changed in what serves
    assert current_version(root) == serving
    assert sorted(p.name for p in root.iterdir() if p.name.startswith("v")) == sorted(
        ["v000001", serving]
    )
    assert worker.consumer.pending_count() == 0  # acked: never trained again
    assert len(ledger.detail(root, record)["event_ids"]) == 240
