"""Hot swap: new snapshots are validated, warmed up and swapped; bad ones are refused."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np
from fastapi.testclient import TestClient

from tests.deployment import ADMIN_KEY, WRITE_KEY, publish_snapshot
from tests.model.tamper import rewrite_snapshot_file
from xsmoe.model.snapshot import current_version, set_current
from xsmoe.service.app import create_app
from xsmoe.service.settings import ServiceSettings, ServingSettings
from xsmoe.workers.redis_client import connect

W, A = {"X-API-Key": WRITE_KEY}, {"X-API-Key": ADMIN_KEY}


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> float:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, "condition not reached in time"
        time.sleep(0.02)
    return time.monotonic() - start


def _version(client: TestClient) -> str:
    return str(client.get("/readyz").json()["version"])


def test_a_published_snapshot_is_served_and_carries_runtime_items(
    client: TestClient, settings: ServiceSettings
) -> None:
    root = settings.snapshots
    added = client.post("/v1/items", json={"item_id": "late", "text": "war story"}, headers=W)
    assert added.status_code == 201
    assert client.delete("/v1/items/m4", headers=W).status_code == 200
    before = client.post("/v1/recommendations", json={"item_ids": ["m1"], "k": 5}).json()
    publish_snapshot(root, settings, seed=1, experts=2)
    wait_for(lambda: _version(client) == "v000002")
    info = client.get("/v1/model").json()
    assert info["experts"] == {"text": [2, 2]} and info["metrics"]["val_ndcg@10"] == 0.11
    assert info["items_added_since"] == 1 and info["items_indexed"] == 40  # 40 + late - m4
    after = client.post("/v1/recommendations", json={"item_ids": ["m1"], "k": 40}).json()
    assert after["model_version"] == "v000002" and after["items"] != before["items"]
    ids = {x["item_id"] for x in after["items"]}
    assert "late" in ids and "m4" not in ids and len(ids) == 39  # 41 - m4 - m1 (seen)
    metrics = client.get("/metrics").text
    assert 'xsmoe_swaps_total{outcome="ok"} 2.0' in metrics
    assert 'xsmoe_model_info{version="v000002"} 1.0' in metrics
    assert "xsmoe_index_items 40.0" in metrics


def test_corrupt_or_incompatible_snapshots_are_refused_and_the_old_one_serves(
    client: TestClient, settings: ServiceSettings, tmp_path: Path
) -> None:
    root = settings.snapshots
    bad = publish_snapshot(root, settings, seed=2, make_current=False)
    (root / bad / "weights.safetensors").write_bytes(b"tampered")
    set_current(root, bad)
    wait_for(lambda: bad in client.get("/v1/model").json()["refused"])
    assert _version(client) == "v000001"
    reason = client.get("/v1/model").json()["refused"][bad]
    assert "checksum" in reason and str(root) not in reason  # no server path shown
    assert client.post("/v1/recommendations", json={"item_ids": ["m1"]}).status_code == 200
    # Features from another encoder (a 3-layer view of the text model) are refused too.
    other = settings.model_copy(
        update={
            "text": settings.text.model_copy(update={"layers": [0, 2]}),
            "data_dir": tmp_path / "other",  # its own feature store
        }
    )
    odd = publish_snapshot(root, other, seed=3)
    wait_for(lambda: odd in client.get("/v1/model").json()["refused"])
    assert "features" in client.get("/v1/model").json()["refused"][odd]
    assert _version(client) == "v000001"
    assert 'xsmoe_swaps_total{outcome="failed"} 2.0' in client.get("/metrics").text


def test_rollback_moves_the_pointer_and_refuses_what_does_not_load(
    client: TestClient, settings: ServiceSettings
) -> None:
    root = settings.snapshots
    publish_snapshot(root, settings, seed=1)
    wait_for(lambda: _version(client) == "v000002")
    r = client.post("/v1/admin/rollback", json={"version": "v000001"}, headers=A)
    assert r.json() == {"version": "v000001", "previous": "v000002"}
    assert _version(client) == "v000001" and current_version(root) == "v000001"
    time.sleep(0.3)  # several polls: the pointer agrees, nothing flips back
    assert _version(client) == "v000001"
    r = client.post("/v1/admin/rollback", json={"version": "v000009"}, headers=A)
    assert r.status_code == 404 and "v000002" in r.json()["detail"]
    r = client.post("/v1/admin/rollback", json={"version": "latest"}, headers=A)
    assert r.status_code == 422
    broken = publish_snapshot(root, settings, seed=4, make_current=False)
    (root / broken / "manifest.json").write_text(json.dumps({"format": 1}))
    r = client.post("/v1/admin/rollback", json={"version": broken}, headers=A)
    assert r.status_code == 409 and current_version(root) == "v000001"


def test_pubsub_announcement_swaps_without_waiting_for_the_poll(
    settings: ServiceSettings,
) -> None:
    slow_poll = settings.model_copy(
        update={"serving": ServingSettings(poll_seconds=60, warmup_queries=1)}
    )
    with TestClient(create_app(slow_poll)) as client:
        assert _version(client) == "v000001"
        time.sleep(0.3)  # let the subscriber connect
        version = publish_snapshot(settings.snapshots, settings, seed=5)
        connect(settings.redis_url).publish(settings.keys.snapshot_channel, version)
        took = wait_for(lambda: _version(client) == version, timeout=20)
        assert took < 30  # far below the 60 s poll (not a timing assertion: a liveness one)


def _refused(client: TestClient) -> dict[str, str]:
    refused: dict[str, str] = client.get("/v1/model").json()["refused"]
    return refused


def test_snapshots_that_lie_are_refused_with_a_reason_and_the_old_one_serves(
    settings: ServiceSettings,
) -> None:
    no_warmup = settings.model_copy(
        update={"serving": settings.serving.model_copy(update={"warmup_queries": 0})}
    )
    root = settings.snapshots
    with TestClient(create_app(no_warmup)) as client:
        twice = publish_snapshot(root, settings, seed=2, make_current=False)
        ids = json.loads((root / twice / "items.json").read_text())
        rewrite_snapshot_file(root / twice, "items.json", json.dumps(ids[:-1] + ids[:1]).encode())
        set_current(root, twice)
        wait_for(lambda: twice in _refused(client))
        assert f"item id {ids[0]!r} appears more than once" in _refused(client)[twice]
        narrow = publish_snapshot(root, settings, seed=3, make_current=False)
        index = faiss.IndexFlatIP(16)
        index.add(np.zeros((len(ids), 16), np.float32))
        rewrite_snapshot_file(root / narrow, "index.faiss", faiss.serialize_index(index).tobytes())
        set_current(root, narrow)  # with no warm-up, only the load's checks stand between
        wait_for(lambda: narrow in _refused(client))
        assert "index has dimension 16, the model embeds in 32" in _refused(client)[narrow]
        (root / "CURRENT").write_text("../../etc\n")
        wait_for(lambda: "CURRENT" in _refused(client))
        assert "names '../../etc', not a version" in _refused(client)["CURRENT"]
        assert _version(client) == "v000001"
        r = client.post("/v1/recommendations", json={"item_ids": ["m1"], "k": 40})
        assert r.status_code == 200 and len(r.json()["items"]) == 39  # one of each, m1 seen
        r = client.post("/v1/admin/rollback", json={"version": "v000001"}, headers=A)
        assert r.json() == {"version": "v000001", "previous": None}  # how it is repaired
        wait_for(lambda: "CURRENT" not in _refused(client))
        # The rollback set the Redis pointer, which replicas now follow over CURRENT.
        fixed = publish_snapshot(root, settings, seed=4, announce=True)
        wait_for(lambda: _version(client) == fixed)
