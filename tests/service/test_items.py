from __future__ import annotations

import base64
import io

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from tests.deployment import WRITE_KEY
from xsmoe.service.app import create_app
from xsmoe.service.settings import ServiceSettings

W = {"X-API-Key": WRITE_KEY}


def _png(size: int = 40) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_an_added_item_is_recommendable_at_once(client: TestClient) -> None:
    r = client.post(
        "/v1/items", json={"item_id": "fresh", "text": "the space war movie"}, headers=W
    )
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["source"] == "runtime" and out["indexed"] and out["modalities"] == ["text"]
    everything = client.post("/v1/recommendations", json={"item_ids": ["m1"], "k": 40}).json()
    assert "fresh" in {x["item_id"] for x in everything["items"]}  # 39 others + the new one
    # The new item conditions a history like any other and is excluded once seen.
    body = client.post("/v1/recommendations", json={"item_ids": ["fresh"], "k": 40}).json()
    assert body["fallback"] is None and "fresh" not in {x["item_id"] for x in body["items"]}
    got = client.get("/v1/items/fresh").json()
    assert got["text"] == "the space war movie" and got["indexed"]
    assert client.get("/v1/items/m3").json()["source"] == "snapshot"
    info = client.get("/v1/model").json()
    assert info["items_indexed"] == 41 and info["items_added_since"] == 1


def test_item_ids_are_never_reused(client: TestClient) -> None:
    for item_id in ("m1", "again"):
        body = {"item_id": item_id, "text": "toy story"}
        if item_id == "again":
            assert client.post("/v1/items", json=body, headers=W).status_code == 201
        r = client.post("/v1/items", json=body, headers=W)
        assert r.status_code == 409 and "item_id" in r.json()["detail"]
    assert client.delete("/v1/items/again", headers=W).status_code == 200
    r = client.post("/v1/items", json={"item_id": "again", "text": "toy"}, headers=W)
    assert r.status_code == 409


def test_a_deleted_item_is_never_recommended_again(client: TestClient) -> None:
    top = client.post("/v1/recommendations", json={"item_ids": ["m2"], "k": 1}).json()
    victim = top["items"][0]["item_id"]
    r = client.delete(f"/v1/items/{victim}", headers=W)
    assert r.status_code == 200 and r.json()["indexed"] is False
    everything = client.post("/v1/recommendations", json={"item_ids": ["m2"], "k": 200}).json()
    assert victim not in {x["item_id"] for x in everything["items"]}
    assert len(everything["items"]) == 38
    popular = client.post("/v1/recommendations", json={"k": 200}).json()
    assert victim not in {x["item_id"] for x in popular["items"]}
    assert client.get(f"/v1/items/{victim}").status_code == 404
    assert client.delete(f"/v1/items/{victim}", headers=W).status_code == 404
    assert client.delete("/v1/items/never-was", headers=W).status_code == 404


def test_image_items_by_json_and_multipart(client: TestClient) -> None:
    # The tiny snapshot reads text only: an image alone cannot be scored by it.
    image_only = {"item_id": "pic", "image_base64": base64.b64encode(_png()).decode()}
    r = client.post("/v1/items", json=image_only, headers=W)
    assert r.status_code == 422 and "reads ['text']" in r.json()["detail"]
    both = {**image_only, "text": "love story"}
    r = client.post("/v1/items", json=both, headers=W)
    assert r.status_code == 201 and r.json()["warnings"][0].startswith("image ignored")
    r = client.post(
        "/v1/items/upload",
        data={"item_id": "up", "text": "horror night"},
        files={"image": ("a.png", _png(), "image/png")},
        headers=W,
    )
    assert r.status_code == 201, r.text
    assert client.get("/v1/items/up").json()["indexed"]


def test_bad_images_and_bodies_get_clear_4xx(client: TestClient) -> None:
    bad = {"item_id": "x1", "text": "toy", "image_base64": "!!!not base64"}
    r = client.post("/v1/items", json=bad, headers=W)
    assert r.status_code == 422 and r.json()["detail"].startswith("image_base64")
    junk = {"item_id": "x2", "text": "toy", "image_base64": base64.b64encode(b"GIF8junk").decode()}
    r = client.post("/v1/items", json=junk, headers=W)
    # The text-only model never decodes the image it ignores (so junk costs nothing).
    assert r.status_code == 201 and r.json()["warnings"][0].startswith(
        "image ignored (not decoded)"
    )
    r = client.post("/v1/items", json={"item_id": "x3"}, headers=W)
    assert r.status_code == 422 and "text or image_base64" in r.json()["detail"]
    r = client.post("/v1/items/upload", data={"item_id": "x4"}, headers=W)
    assert r.status_code == 422


def test_an_image_tower_snapshot_embeds_uploaded_images_at_once(
    settings: ServiceSettings,
) -> None:
    from tests.deployment import publish_snapshot

    version = publish_snapshot(settings.snapshots, settings, images=True)
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").json()["version"] == version
        r = client.post(
            "/v1/items/upload",
            data={"item_id": "photo-only"},  # no text: the text modality is masked
            files={"image": ("a.png", _png(), "image/png")},
            headers=W,
        )
        assert r.status_code == 201, r.text
        assert r.json()["warnings"] == []
        assert client.get("/v1/items/photo-only").json()["indexed"]
        every = client.post("/v1/recommendations", json={"item_ids": ["m1"], "k": 41}).json()
        assert "photo-only" in {x["item_id"] for x in every["items"]}  # recommendable at once
        junk = {"item_id": "bad", "image_base64": base64.b64encode(b"GIF8junk").decode()}
        r = client.post("/v1/items", json=junk, headers=W)
        assert r.status_code == 422 and "decodable" in r.json()["detail"]
