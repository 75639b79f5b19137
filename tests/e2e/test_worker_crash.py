"""SIGKILL the worker mid-training and mid-publish: no accepted event is lost, none is
trained twice; checked from the ledger and the manifests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.deployment import WRITE_KEY, planted_events, worker_env, worker_settings_for
from xsmoe.common import ledger
from xsmoe.service.app import create_app
from xsmoe.service.settings import ServiceSettings
from xsmoe.workers.redis_client import connect

pytestmark = pytest.mark.slow


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    cmd = [sys.executable, "-m", "xsmoe", "worker"]
    return subprocess.Popen(cmd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)


def _wait_log(log: Path, text: str, after: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while log.read_text().count(text) <= after:
        assert time.monotonic() < deadline, f"{text!r} not logged:\n{log.read_text()[-3000:]}"
        time.sleep(0.02)


def test_sigkill_during_training_and_after_commit_loses_and_repeats_nothing(
    settings: ServiceSettings, tmp_path: Path
) -> None:
    root = settings.snapshots
    keys = settings.keys
    db = connect(settings.redis_url, decode_responses=True)
    accepted: list[str] = []
    with TestClient(create_app(settings)) as client:
        for seed in range(3):
            events = planted_events(n_users=20, length=10, seed=seed)
            r = client.post(
                "/v1/feedback", json={"events": events}, headers={"X-API-Key": WRITE_KEY}
            )
            assert r.status_code == 202
            accepted += [e["event_id"] for e in r.json()["events"]]
    db.xadd(keys.feedback, {"user_id": "broken"})  # one malformed entry among them
    wsettings = worker_settings_for(settings, window_events=200, epsilon=1.0, claim_idle_ms=500)
    env = worker_env(wsettings)
    log = tmp_path / "worker.log"
    log.write_text("")

    worker = _start(env, log)
    _wait_log(log, "window 0 closed", 0)
    time.sleep(0.5)  # inside training
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert ledger.records(root) == []  # killed before its commit point

    worker = _start(env, log)
    _wait_log(log, "window 0 promoted", 0)  # the commit; kill before it can ack much more
    worker.send_signal(signal.SIGKILL)
    worker.wait()

    worker = _start(env, log)
    try:
        deadline = time.monotonic() + 180
        while True:
            done = all(
                (info := db.xinfo_groups(s)[0])["pending"] == 0
                and info["last-delivered-id"] == db.xinfo_stream(s)["last-generated-id"]
                for s in keys.streams
            )
            if done and sum(r["events"] for r in ledger.records(root)) >= len(accepted) - 200:
                break
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)

    records = ledger.records(root)
    details = [ledger.detail(root, r) for r in records]
    trained = Counter(e for d in details for e in d["event_ids"])
    assert all(n == 1 for n in trained.values()), "an event was trained twice"
    dead = db.xrange(keys.dead_letter)
    assert [d[1].get("user_id") for d in dead] == ["broken"]
    # 600 accepted = 3 full windows; every one is in exactly one committed window.
    assert set(trained) == set(accepted) and len(records) == 3
    versions = [r["version"] for r in records]
    assert len(set(versions)) == 3
    for record, detail in zip(records, details, strict=True):  # manifests agree
        manifest = json.loads((root / record["version"] / "manifest.json").read_text())
        assert manifest["window"]["number"] == record["window"]
        assert manifest["window"]["stream_range"] == record["stream_range"]
        assert record["digest"] == ledger.digest(detail["stream_ids"])
