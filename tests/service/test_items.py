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


def test_put_is_an_idempotent_upsert(client: TestClient) -> None:
    body = {"text": "the space war movie", "tags": ["sci-fi"]}
    r = client.put("/v1/items/p1", json=body, headers=W)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["change"] == "created" and out["tags"] == ["sci-fi"] and out["indexed"]
    assert out["created_at"] and out["updated_at"] is None
    again = client.put("/v1/items/p1", json=body, headers=W)  # a retry: same answer, no clash
    assert again.status_code == 200 and again.json()["change"] == "unchanged"
    assert client.post("/v1/items", json={"item_id": "p1", **body}, headers=W).status_code == 409
    r = client.put("/v1/items/p1", json={"tags": ["sci-fi", "staff-pick"]}, headers=W)
    assert r.status_code == 200 and r.json()["change"] == "updated"
    got = client.get("/v1/items/p1").json()
    assert got["tags"] == ["sci-fi", "staff-pick"] and got["updated_at"] >= got["created_at"]
    assert got["text"] == "the space war movie" and got["change"] is None
    r = client.put("/v1/items/p1", json={"text": "another movie"}, headers=W)
    assert r.status_code == 409 and "other content" in r.json()["detail"]
    every = client.post("/v1/recommendations", json={"item_ids": ["m1"], "k": 40}).json()
    assert "p1" in {x["item_id"] for x in every["items"]}


def test_put_on_deleted_snapshot_and_empty_items(client: TestClient) -> None:
    assert client.delete("/v1/items/m4", headers=W).status_code == 200
    r = client.put("/v1/items/m4", json={"text": "toy story"}, headers=W)
    assert r.status_code == 409 and "deleted" in r.json()["detail"]
    # A snapshot item: its tags may be set, its content is the snapshot's.
    r = client.put("/v1/items/m3", json={"tags": ["blue"]}, headers=W)
    assert r.status_code == 200 and r.json()["change"] == "updated", r.text
    assert r.json()["source"] == "snapshot" and r.json()["tags"] == ["blue"]
    assert client.put("/v1/items/m3", json={"tags": ["blue"]}, headers=W).json()["change"] == (
        "unchanged"
    )
    r = client.put("/v1/items/m3", json={"text": "toy story"}, headers=W)
    assert r.status_code == 409 and "snapshot" in r.json()["detail"]
    r = client.put("/v1/items/nothing-here", json={"tags": ["x"]}, headers=W)
    assert r.status_code == 422 and "new item" in r.json()["detail"]
    assert client.put("/v1/items/x", json={"text": "toy"}).status_code == 401
    r = client.put("/v1/items/x", json={"text": "toy", "colour": "red"}, headers=W)
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "body.colour"


def test_numeric_item_ids_become_strings(client: TestClient) -> None:
    r = client.post("/v1/items", json={"item_id": 12345, "text": "toy story"}, headers=W)
    assert r.status_code == 201 and r.json()["item_id"] == "12345"
    assert client.get("/v1/items/12345").json()["text"] == "toy story"
    r = client.post("/v1/items", json={"item_id": 1.5, "text": "toy"}, headers=W)
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "body.item_id"


def test_batch_reports_each_item(client: TestClient) -> None:
    assert client.put("/v1/items/b-old", json={"text": "love story"}, headers=W).status_code == 201
    items = [
        {"item_id": "b1", "text": "the horror night", "tags": ["dark"]},
        {"item_id": 77, "text": "a comedy day"},
        {"item_id": "b-old", "text": "love story"},  # the same again
        {"item_id": "b-old", "text": "love story", "tags": ["x"]},  # twice in one batch
        {"item_id": "m2", "tags": ["blue"]},  # a snapshot item's tags
        {"item_id": "m5", "text": "not its text"},  # a snapshot item's content: refused
        {"item_id": "bad/id", "text": "toy"},
        {"text": "no id"},
        {"item_id": "b-img", "text": "toy", "image_base64": "!!!"},
    ]
    r = client.post("/v1/items:batch", json={"items": items}, headers=W)
    assert r.status_code == 200, r.text
    out = r.json()
    statuses = [x["status"] for x in out["results"]]
    assert statuses == [
        "created", "created", "unchanged", "failed", "updated", "failed", "failed", "failed",
        "failed",
    ]  # fmt: skip
    assert (out["created"], out["updated"], out["unchanged"], out["failed"]) == (2, 1, 1, 5)
    errors = [x["error"] for x in out["results"]]
    assert "items[2]" in errors[3]["detail"] and errors[5]["error"] == "conflict"
    assert errors[6]["fields"][0]["field"] == "items[6].item_id"
    assert errors[7]["fields"][0]["field"] == "items[7].item_id"
    assert errors[8]["detail"].startswith("items[8].image_base64")
    assert out["results"][1]["item_id"] == "77" and out["results"][7]["item_id"] is None
    every = client.post("/v1/recommendations", json={"item_ids": ["m1"], "k": 60}).json()
    assert {"b1", "77"} <= {x["item_id"] for x in every["items"]}
    assert client.get("/v1/items/b1").json()["tags"] == ["dark"]
    # The whole batch again: nothing new, nothing failed that did not fail before.
    again = client.post("/v1/items:batch", json={"items": items[:3]}, headers=W).json()
    assert [x["status"] for x in again["results"]] == ["unchanged"] * 3
    too_many = [{"item_id": f"n{i}", "text": "toy"} for i in range(1001)]
    r = client.post("/v1/items:batch", json={"items": too_many}, headers=W)
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "body.items"
    assert client.post("/v1/items:batch", json={"items": []}, headers=W).status_code == 422


def test_a_large_batch_is_encoded_in_batches(client: TestClient) -> None:
    encoder = client.app.state.runtime.encoder.encoder  # type: ignore[attr-defined]
    calls = []
    real = encoder.encode

    def counted(texts: list[str | None], images: list[object], specs: object) -> object:
        calls.append(len(texts))
        return real(texts, images, specs)

    encoder.encode = counted  # counts the real encoder's calls; it still does the work
    items = [{"item_id": f"bulk-{i}", "text": f"the {i} story"} for i in range(150)]
    out = client.post("/v1/items:batch", json={"items": items}, headers=W).json()
    assert out["created"] == 150 and calls == [64, 64, 22]


def test_items_are_listed_by_id_page_by_page(client: TestClient) -> None:
    for item_id in ("r-1", "r-2"):
        client.put(f"/v1/items/{item_id}", json={"text": "toy story"}, headers=W)
    client.delete("/v1/items/m7", headers=W)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, object] = {"limit": 7}
        if cursor:
            params["cursor"] = cursor
        r = client.get("/v1/items", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += [x["item_id"] for x in page["items"]]
        pages += 1
        if pages == 2:  # items added while paging: after the cursor shows, before does not
            client.put("/v1/items/zz-late", json={"text": "war story"}, headers=W)
            client.put("/v1/items/a-early", json={"text": "war story"}, headers=W)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    expected = sorted({*(f"m{i}" for i in range(40)), "r-1", "r-2", "zz-late"} - {"m7"})
    assert seen == expected and pages == 6  # 42 items, 7 a page
    runtime = client.get("/v1/items", params={"source": "runtime"}).json()
    assert [x["item_id"] for x in runtime["items"]] == ["a-early", "r-1", "r-2", "zz-late"]
    assert [x["text"] for x in runtime["items"]] == [
        "war story",
        "toy story",
        "toy story",
        "war story",
    ]
    assert {x["source"] for x in runtime["items"]} == {"runtime"}
    first = client.get("/v1/items", params={"limit": 1, "source": "snapshot"}).json()
    assert first["items"][0]["item_id"] == "m0" and first["next_cursor"]
    r = client.get("/v1/items", params={"cursor": "not-a-cursor"})
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "query.cursor"
    r = client.get("/v1/items", params={"limit": 1001})
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "query.limit"
    r = client.get("/v1/items", params={"limt": 5})
    assert r.status_code == 422 and "query.limt" in r.json()["detail"]
    assert r.json()["fields"][0]["field"] == "query.limt"


def _flat_png(width: int, height: int) -> str:
    """A few KB of PNG that decodes to width x height pixels."""
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_a_batch_of_small_files_with_huge_images_is_bounded(settings: ServiceSettings) -> None:
    """Decoded images wait for one batched encode: each is scaled down first, and a
    request's images may hold only so many pixels in all; past that, 413 per item."""
    from tests.deployment import publish_snapshot
    from xsmoe.service import item_writes

    publish_snapshot(settings.snapshots, settings, images=True)
    square = _flat_png(4000, 4000)  # 16 M pixels, scaled to 512 x 512 when kept
    thin = _flat_png(20_000, 500)  # 10 M pixels, its short side already small: kept so
    items = [{"item_id": f"sq-{n}", "image_base64": square} for n in range(3)]
    items += [{"item_id": f"thin-{n}", "image_base64": thin} for n in range(7)]
    with TestClient(create_app(settings)) as client:
        r = client.post("/v1/items:batch", json={"items": items}, headers=W)
        assert r.status_code == 200, r.text
        status = {x["item_id"]: x["status"] for x in r.json()["results"]}
        assert all(status[f"sq-{n}"] == "created" for n in range(3))
        # 3 x 512^2 + 6 x 10 M pixels fit in REQUEST_PIXELS (64 M); a seventh does not
        assert item_writes.REQUEST_PIXELS == 64_000_000
        assert [status[f"thin-{n}"] for n in range(7)] == ["created"] * 6 + ["failed"]
        failed = next(x for x in r.json()["results"] if x["status"] == "failed")
        assert failed["error"]["error"] == "payload_too_large"
        assert "fewer images per call" in failed["error"]["detail"]
