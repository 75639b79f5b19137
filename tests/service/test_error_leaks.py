"""Each error the service, admin and feedback routes document, triggered for real: the
body says what to do and names no server path, store location or Redis address
(those are in the server log)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from fastapi.testclient import TestClient
from httpx import Response

from tests.deployment import ADMIN_KEY, WRITE_KEY, publish_snapshot
from xsmoe.service.app import create_app
from xsmoe.service.settings import ServiceSettings

A = {"X-API-Key": ADMIN_KEY}


def _says_nothing_of(r: Response, *secrets: str) -> dict[str, object]:
    text = r.text
    for secret in secrets:
        assert secret not in text, f"{secret!r} leaked: {text}"
    assert "/tmp/" not in text and "pytest-of-" not in text, text
    body: dict[str, object] = r.json()
    return body


def _break(root: Path, version: str) -> None:
    (root / version / "manifest.json").write_text(json.dumps({"format": 1}))


def test_no_model_says_what_to_do_and_when_to_retry(
    settings: ServiceSettings, tmp_path: Path
) -> None:
    root = tmp_path / "refused"
    shutil.copytree(settings.snapshots, root)
    _break(root, "v000001")  # the version CURRENT names does not load
    empty = settings.model_copy(update={"snapshot_dir": root})
    with TestClient(create_app(empty)) as client:
        r = client.post("/v1/recommendations", json={"item_ids": ["m1"]})
        assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 1
        body = _says_nothing_of(r, str(root))
        assert body["error"] == "no_model" and "xsmoe bootstrap" in str(body["detail"])
        assert "refused: v000001" in str(body["detail"])
        ready = client.get("/readyz")
        assert ready.status_code == 503 and int(ready.headers["Retry-After"]) >= 1
        assert _says_nothing_of(ready, str(root))["status"] == "not ready"


def test_rollback_errors_name_the_version_not_the_store(
    client: TestClient, settings: ServiceSettings
) -> None:
    root = settings.snapshots
    r = client.post("/v1/admin/rollback", json={"version": "v000009"}, headers=A)
    assert r.status_code == 404
    body = _says_nothing_of(r, str(root))
    assert "v000001" in str(body["detail"]) and body["fields"] == [
        {"field": "version", "message": body["detail"]}
    ]
    broken = publish_snapshot(root, settings, seed=4, make_current=False)
    _break(root, broken)
    r = client.post("/v1/admin/rollback", json={"version": broken}, headers=A)
    assert r.status_code == 409
    body = _says_nothing_of(r, str(root), "manifest")
    assert "stays at v000001" in str(body["detail"])
    (root / "CURRENT").unlink()
    (root / "CURRENT").mkdir()  # the pointer cannot be written: the store failed us
    r = client.post("/v1/admin/rollback", json={"version": "v000001"}, headers=A)
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    assert _says_nothing_of(r, str(root))["error"] == "store_unavailable"


def test_redis_down_is_a_503_without_its_address(settings: ServiceSettings, tmp_path: Path) -> None:
    socket = tmp_path / "no-redis.sock"
    away = settings.model_copy(update={"redis_url": f"unix://{socket}"})
    with TestClient(create_app(away)) as client:
        event = {"user_id": "u", "item_id": "m1"}
        r = client.post("/v1/feedback", json=event, headers={"X-API-Key": WRITE_KEY})
        assert r.status_code == 503 and r.headers["Retry-After"] == "1"
        body = _says_nothing_of(r, str(socket), "no-redis")
        assert body == {"error": "redis_unavailable", "detail": "Redis unavailable; retry shortly"}


def test_an_unreadable_body_is_a_400_that_says_what_to_send(client: TestClient) -> None:
    headers = {"X-API-Key": WRITE_KEY, "content-type": "application/json"}
    r = client.post("/v1/feedback", content=b'{"user_id": "\xff"}', headers=headers)
    assert r.status_code == 400
    assert r.json() == {
        "error": "bad_request",
        "detail": "body: could not be parsed; send UTF-8 JSON (or a form)",
    }
