"""Your own files, end to end: catalog + log -> `xsmoe bootstrap` -> API -> feedback ->
worker window -> a new served version; an uploaded image is recommendable at once."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.deployment import WRITE_KEY, env_of, own_files, settings_for, worker_settings_for
from xsmoe.cli import main
from xsmoe.common import ledger
from xsmoe.common.settings import ImageEncoderSettings
from xsmoe.model.snapshot import load_current
from xsmoe.service.app import create_app
from xsmoe.workers.worker import Worker

pytestmark = pytest.mark.slow
W = {"X-API-Key": WRITE_KEY}


def _png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), colour).save(buf, "PNG")
    return buf.getvalue()


def test_files_to_bootstrap_to_serving_to_a_retrained_version(
    tmp_path: Path,
    redis_url: str,
    tiny_bert_dir: Path,
    tiny_vit_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_for(tmp_path / "snapshots", redis_url, tiny_bert_dir, tiny_vit_dir)
    settings = settings.model_copy(
        update={
            "image": ImageEncoderSettings(
                model=str(tiny_vit_dir), layers=[0, 1, 2], image_size=32, resize_size=36
            )
        }
    )
    for name, value in env_of(settings).items():  # the CLI reads the deployment's settings
        monkeypatch.setenv(name, value)
    catalog = tmp_path / "shop" / "items.jsonl"
    catalog.parent.mkdir()
    events = own_files(catalog, n_items=30, images=True)

    assert main(["bootstrap", "--catalog", str(catalog), "--interactions", str(events),
                 "--max-epochs", "2"]) == 0  # fmt: skip
    first = load_current(settings.snapshots)
    assert first.version == "v000001" and set(first.model.config.shapes) == {"text", "image"}
    assert first.manifest["source"]["dataset"] == "items"

    worker = Worker(worker_settings_for(settings, window_events=200, epsilon=1.0))
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        with TestClient(create_app(settings)) as client:
            assert client.get("/readyz").json()["version"] == "v000001"
            body = client.post("/v1/recommendations", json={"item_ids": ["p1", "p2"], "k": 5})
            assert body.status_code == 200
            got = [x["item_id"] for x in body.json()["items"]]
            assert len(got) == 5 and not {"p1", "p2"} & set(got)
            # An image-only item, uploaded: embedded by the served image tower, recommendable.
            r = client.post(
                "/v1/items/upload",
                data={"item_id": "new-photo"},
                files={"image": ("n.png", _png((10, 200, 30)), "image/png")},
                headers=W,
            )
            assert r.status_code == 201 and r.json()["modalities"] == ["image"], r.text
            every = client.post("/v1/recommendations", json={"item_ids": ["p1"], "k": 30}).json()
            assert "new-photo" in {x["item_id"] for x in every["items"]}
            # Feedback on the catalog's items fills the worker's window.
            feedback = [
                {"event_id": f"e{u}-{k}", "user_id": f"w{u}", "item_id": f"p{(u + k) % 30}"}
                for k in range(10)
                for u in range(20)
            ]
            r = client.post("/v1/feedback", json={"events": feedback}, headers=W)
            assert r.status_code == 202 and r.json()["accepted"] == 200
            deadline = time.monotonic() + 120
            while not ledger.records(settings.snapshots):
                assert time.monotonic() < deadline, "the worker closed no window"
                time.sleep(0.1)
            record = ledger.records(settings.snapshots)[0]
            assert record["outcome"] == "promoted" and record["events"] == 200, record
            deadline = time.monotonic() + 10
            while client.get("/readyz").json()["version"] != record["version"]:
                assert time.monotonic() < deadline, "the new version was not swapped in"
                time.sleep(0.05)
            assert client.get("/v1/model").json()["parent"] == "v000001"
            # Read-your-writes: the user's stored history drives the new version's answer.
            mine = client.post("/v1/recommendations", json={"user_id": "w3", "k": 5}).json()
            assert mine["fallback"] is None
            seen = {f"p{(3 + k) % 30}" for k in range(10)}
            assert not seen & {x["item_id"] for x in mine["items"]}
    finally:
        worker.stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
