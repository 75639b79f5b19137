"""The worker's /metrics (scraped over HTTP from its own port and parsed), its status
hash and its expert-change stream, against a real Redis and a real training window."""

from __future__ import annotations

import threading
import time

import httpx
from fastapi.testclient import TestClient
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from tests.deployment import WRITE_KEY, planted_events, worker_settings_for
from xsmoe.common import ledger
from xsmoe.service.app import create_app
from xsmoe.service.settings import ServiceSettings
from xsmoe.workers.redis_client import connect
from xsmoe.workers.status import STATUS_TTL_S, expert_changes
from xsmoe.workers.worker import Worker

TYPES = {
    "xsmoe_worker_windows": "counter",
    "xsmoe_worker_snapshots_published": "counter",
    "xsmoe_worker_events_consumed": "counter",
    "xsmoe_worker_events_dead_lettered": "counter",
    "xsmoe_worker_expert_changes": "counter",
    "xsmoe_worker_window_seconds": "histogram",
    "xsmoe_worker_untrained_events": "gauge",
    "xsmoe_worker_window_events": "gauge",
    "xsmoe_worker_leader": "gauge",
    "process_cpu_seconds": "counter",
    "python_info": "gauge",
}


def _wait(check: object, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def _value(families: dict[str, Metric], sample: str, **labels: str) -> float:
    found = [
        s.value
        for f in families.values()
        for s in f.samples
        if s.name == sample and s.labels == labels
    ]
    return found[0] if found else 0.0


def test_a_trained_window_shows_in_the_worker_metrics_status_and_model_events(
    settings: ServiceSettings,
) -> None:
    db = connect(settings.redis_url)
    keys = settings.keys
    worker = Worker(worker_settings_for(settings, window_events=240, epsilon=1.0, metrics_port=0))
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        _wait(lambda: worker.metrics_server is not None, 30)
        assert worker.metrics_server is not None
        url = f"http://127.0.0.1:{worker.metrics_server.port}/metrics"
        _wait(lambda: db.hget(keys.worker_status, "leader") == b"test-worker", 30)
        with TestClient(create_app(settings)) as client:
            db.xadd(keys.stream(0), {"junk": "no event here"})  # dead-lettered as malformed
            events = planted_events(n_users=24, length=10)
            r = client.post(
                "/v1/feedback", json={"events": events}, headers={"X-API-Key": WRITE_KEY}
            )
            assert r.status_code == 202
            _wait(lambda: ledger.finished(settings.snapshots) == 0)
        record = ledger.records(settings.snapshots)[0]
        assert record["outcome"] == "promoted", record["reason"]
        _wait(lambda: db.hget(keys.worker_status, "last_outcome") == b"promoted", 10)
        text = httpx.get(url, timeout=10).text
    finally:
        worker.stop.set()
        thread.join(timeout=60)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert {n: families[n].type if n in families else None for n in TYPES} == TYPES
    assert _value(families, "xsmoe_worker_windows_total", outcome="promoted") == 1
    assert _value(families, "xsmoe_worker_snapshots_published_total") == 1
    assert _value(families, "xsmoe_worker_events_consumed_total") >= 240
    assert _value(families, "xsmoe_worker_window_seconds_count") == 1
    assert _value(families, "xsmoe_worker_leader") == 1
    # the bootstrap had 1 expert per stage and was trained: the candidate grew each stage
    grown = _value(families, "xsmoe_worker_expert_changes_total", kind="expansion", modality="text")
    assert grown == len(record["experts"]["text"]) == 2
    assert _value(families, "xsmoe_worker_events_dead_lettered_total", reason="malformed") == 1
    status = {k.decode(): v.decode() for k, v in db.hgetall(keys.worker_status).items()}
    assert status["leader"] == "test-worker" and status["window_events"] == "240"
    assert status["phase"] == "stopped"  # its last word as it stopped
    assert status["last_window"] == "0" and status["last_version"] == record["version"]
    assert status["window"] == "1" and int(status["fill"]) <= 240
    assert 0 < db.ttl(keys.worker_status) <= STATUS_TTL_S
    assert time.time() - float(status["updated_at"]) < 30
    entries = db.xrevrange(keys.model_events)
    assert len(entries) == 2  # one per stage of the text tower
    fields = {k.decode(): v.decode() for k, v in entries[-1][1].items()}
    assert fields["kind"] == "expansion" and fields["modality"] == "text"
    assert fields["before"] == "1" and fields["after"] == "2"
    assert fields["version"] == record["version"] and fields["outcome"] == "promoted"
    assert worker.metrics_server is None  # stopped with the worker: the port is free again
    try:
        httpx.get(url, timeout=2)
        raise AssertionError("the metrics port still answers after the worker stopped")
    except httpx.TransportError:
        pass


def test_expert_changes_name_each_pruned_or_grown_stage() -> None:
    before = {"text": [3, 8, 2], "image": [1]}
    after = {"text": (3, 8, 3), "image": (1,)}
    pruned: dict[str, list[int | None]] = {"text": [1, None, None], "image": [None]}
    changes = expert_changes(before, after, pruned)
    assert [(c["modality"], c["stage"], c["kinds"], c["before"], c["after"]) for c in changes] == [
        ("text", 1, ["pruning", "expansion"], 3, 3),
        ("text", 3, ["expansion"], 2, 3),
    ]  # stage 2 is at its cap and pruned nothing; the image tower did not change
