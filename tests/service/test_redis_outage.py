"""Redis gone: reads keep answering from memory, writes say 503 + Retry-After."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import ServiceSettings
from tests.deployment import WRITE_KEY
from xsmoe.redis_server import EmbeddedRedis


def test_without_redis_recommendations_answer_and_feedback_is_refused_not_lost(
    settings: ServiceSettings, tmp_path: Path
) -> None:
    server = EmbeddedRedis(tmp_path / "redis", persist=False).start()
    own = settings.model_copy(update={"redis_url": server.url})
    with TestClient(create_app(own)) as client:
        w = {"X-API-Key": WRITE_KEY}
        assert client.post("/v1/feedback", json={"user_id": "u", "item_id": "m1"}, headers=w)
        server.stop()
        r = client.post("/v1/feedback", json={"user_id": "u", "item_id": "m2"}, headers=w)
        assert r.status_code == 503 and r.headers["Retry-After"] == "1"
        assert r.json()["error"] == "redis_unavailable"
        r = client.post("/v1/recommendations", json={"user_id": "u", "item_ids": ["m3"], "k": 3})
        assert r.status_code == 200 and len(r.json()["items"]) == 3
        assert "Redis unreachable" in r.json()["warnings"][0]
        r = client.post("/v1/items", json={"item_id": "n", "text": "toy"}, headers=w)
        assert r.status_code == 503
        assert client.get("/readyz").status_code == 200  # serving from memory
