"""GET /v1/models and a recommendation from a version asked explicitly."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.deployment import WRITE_KEY, publish_snapshot
from tests.seaweed import SeaweedS3
from tests.service.test_s3_replica import on_s3, replica_of
from xsmoe.common.snapshot_store import open_store
from xsmoe.service.app import create_app
from xsmoe.service.settings import ServiceSettings

W = {"X-API-Key": WRITE_KEY}


def test_models_lists_every_version_newest_first(
    client: TestClient, settings: ServiceSettings
) -> None:
    first = client.get("/v1/models").json()
    assert first["serving"] == "v000001"
    assert [v["version"] for v in first["versions"]] == ["v000001"]
    assert first["versions"][0]["serving"] and first["versions"][0]["metrics"] == {
        "val_ndcg@10": 0.1
    }
    publish_snapshot(settings.snapshots, settings, seed=3, make_current=False)
    listed = client.get("/v1/models").json()
    assert [(v["version"], v["serving"]) for v in listed["versions"]] == [
        ("v000002", False),
        ("v000001", True),
    ]
    one = client.get("/v1/models/v000002").json()
    assert one["parent"] is None and one["created_at"] and one["gate"] == {}
    assert one["metrics"] == {"val_ndcg@10": 0.13}
    r = client.get("/v1/models/v000099")
    assert r.status_code == 404 and "GET /v1/models" in r.json()["detail"]
    assert client.get("/v1/models/latest").status_code == 422
    assert client.get("/v1/models?all=1").status_code == 422


def test_a_version_can_be_asked_explicitly(client: TestClient, settings: ServiceSettings) -> None:
    for seed in (4, 5, 6):
        publish_snapshot(settings.snapshots, settings, seed=seed, make_current=False)
    body = {"item_ids": ["m1", "m2"], "k": 10}
    serving = client.post("/v1/recommendations", json=body).json()
    asked = client.post("/v1/recommendations", json={**body, "model_version": "v000002"})
    assert asked.status_code == 200, asked.text
    assert asked.json()["model_version"] == "v000002" and serving["model_version"] == "v000001"
    assert asked.json()["items"] != serving["items"]  # another model's ranking
    same = client.post("/v1/recommendations", json={**body, "model_version": "v000001"}).json()
    assert same["items"] == serving["items"]
    # An item added now is recommendable by the explicitly asked version too.
    assert client.put("/v1/items/fresh", json={"text": "toy story"}, headers=W).status_code == 201
    every = client.post(
        "/v1/recommendations", json={"item_ids": ["m1"], "k": 40, "model_version": "v000002"}
    ).json()
    assert "fresh" in {x["item_id"] for x in every["items"]}
    for version in ("v000003", "v000004", "v000002"):
        r = client.get("/v1/users/u1/recommendations", params={"model_version": version})
        assert r.status_code == 200 and r.json()["model_version"] == version
    versions = client.app.state.runtime.serving.versions  # type: ignore[attr-defined]
    assert list(versions.loaded) == ["v000004", "v000002"]  # at most two kept, LRU
    r = client.post("/v1/recommendations", json={**body, "model_version": "v000042"})
    assert r.status_code == 404 and r.json()["fields"][0]["field"] == "model_version"
    r = client.post("/v1/recommendations", json={**body, "model_version": "../etc"})
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "body.model_version"
    assert client.get("/v1/model").json()["version"] == "v000001"  # serving is untouched


def test_a_damaged_version_is_refused_once_then_at_once(
    client: TestClient, settings: ServiceSettings, caplog: pytest.LogCaptureFixture
) -> None:
    """Asked again, a version that cannot be served is not downloaded and loaded again."""
    bad = publish_snapshot(settings.snapshots, settings, seed=7, make_current=False)
    (settings.snapshots / bad / "weights.safetensors").write_bytes(b"tampered")
    body = {"item_ids": ["m1"], "k": 5, "model_version": bad}
    with caplog.at_level(logging.ERROR, logger="xsmoe.service.versions"):
        answers = [client.post("/v1/recommendations", json=body) for _ in range(3)]
    assert all(r.status_code == 409 for r in answers), answers[0].text
    assert str(settings.snapshots) not in answers[0].json()["detail"]
    loads = [r for r in caplog.records if "cannot be served" in r.getMessage()]
    assert len(loads) == 1  # the first ask loaded it; the others were refused from memory


def test_new_routes_declare_their_operations_and_errors(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    expected = {
        ("/v1/items/{item_id}", "put"): ("put_item", {"201", "409", "422"}),
        ("/v1/items", "get"): ("list_items", {"422"}),
        ("/v1/items:batch", "post"): ("batch_items", {"413", "422"}),
        ("/v1/users/{user_id}", "get"): ("get_user", {"404"}),
        ("/v1/users/{user_id}", "delete"): ("delete_user", {"401", "404"}),
        ("/v1/models", "get"): ("list_models", {"503"}),
        ("/v1/models/{version}", "get"): ("get_model_version", {"404", "422"}),
    }
    for (path, method), (operation, statuses) in expected.items():
        route = paths[path][method]
        assert route["operationId"] == operation
        assert statuses <= set(route["responses"]), (path, method)
    batch = paths["/v1/items:batch"]["post"]["requestBody"]["content"]["application/json"]
    assert batch["schema"]["$ref"].endswith("/ItemBatch")


def test_an_explicit_version_is_fetched_from_s3_beside_the_serving_one(
    settings: ServiceSettings, s3_server: SeaweedS3, tmp_path: Path
) -> None:
    shared = on_s3(settings, s3_server)
    version = publish_snapshot(settings.snapshots, settings, seed=7, make_current=False)
    open_store(shared).put(settings.snapshots / version)  # listed, not pointed at
    replica = replica_of(shared, tmp_path / "replica")
    with TestClient(create_app(replica)) as client:
        listed = client.get("/v1/models").json()
        assert listed["serving"] == "v000001"
        assert [v["version"] for v in listed["versions"]] == [version, "v000001"]
        body = {"item_ids": ["m1"], "k": 5, "model_version": version}
        r = client.post("/v1/recommendations", json=body)
        assert r.status_code == 200 and r.json()["model_version"] == version
        cache = replica.snapshot_cache
        assert (cache / ".extra" / version).is_dir() and not (cache / version).exists()
        assert client.get("/readyz").json()["version"] == "v000001"
