"""Snapshot items show what they are: MovieLens texts and genres, and the text of a
run-time item after a snapshot carries it (its features are gone from Redis then)."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from tests.deployment import WRITE_KEY, announce_pointer, publish_snapshot
from xsmoe.service.app import create_app
from xsmoe.service.settings import ServiceSettings
from xsmoe.workers.catalog import absorb_runtime_items
from xsmoe.workers.redis_client import connect

W = {"X-API-Key": WRITE_KEY}


def _as_movielens(settings: ServiceSettings, version: str) -> None:
    """Mark a snapshot as trained on ml-100k (the manifest is not checksummed)."""
    path = settings.snapshots / version / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["source"] = {"dataset": "ml-100k"}
    path.write_text(json.dumps(manifest))


def test_movielens_items_have_their_title_and_genres(settings: ServiceSettings) -> None:
    ids = [str(i) for i in range(40, 61)]
    version = publish_snapshot(settings.snapshots, settings, item_ids=ids, seed=1)
    _as_movielens(settings, version)
    with TestClient(create_app(settings)) as client:
        got = client.get("/v1/items/50").json()
        assert got["source"] == "snapshot" and got["model_version"] == version
        assert got["text"] == "Star Wars (1977). Genres: Action, Adventure, Romance, Sci-Fi, War"
        assert got["tags"] == ["Action", "Adventure", "Romance", "Sci-Fi", "War"]
        assert client.get("/v1/items/m1").json()["text"] is None  # not a MovieLens id
        body = {"item_ids": ["m1"], "k": 50, "filter": {"tags_any": ["Sci-Fi"]}}
        recs = client.post("/v1/recommendations", json=body).json()["items"]
        listed = {x["item_id"] for x in recs}
        assert "50" in listed and all(
            "Sci-Fi" in client.get(f"/v1/items/{i}").json()["tags"] for i in listed
        )


def test_a_runtime_item_keeps_its_text_once_a_snapshot_carries_it(
    settings: ServiceSettings,
) -> None:
    with TestClient(create_app(settings)) as client:
        body = {"text": "the love war story", "tags": ["new"]}
        assert client.put("/v1/items/late", json=body, headers=W).status_code == 201
    # The worker's next snapshot carries it; then its features leave Redis.
    ids = [f"m{i}" for i in range(40)] + ["late"]
    version = publish_snapshot(settings.snapshots, settings, item_ids=ids, seed=2)
    announce_pointer(settings, version)
    db = connect(settings.redis_url)
    absorb_runtime_items(db, settings.keys, ["late"])
    with TestClient(create_app(settings)) as client:
        got = client.get("/v1/items/late").json()
        assert got["model_version"] == version and got["source"] == "snapshot"
        assert got["text"] == "the love war story" and got["tags"] == ["new"]
        again = client.put("/v1/items/late", json=body, headers=W)
        assert again.status_code == 200 and again.json()["change"] == "unchanged"
