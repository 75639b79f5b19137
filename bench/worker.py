"""Worker benchmark, two figures (issue 5):

1. ingestion: events/s the worker consumes, windows and acks with training off,
   against a floor measured in the same run (bare XREADGROUP + XACK, no parsing);
2. freshness: time from the last event of a 10,000-event window (posted through
   the API) to the new version being served (ML-100k catalog and bootstrap snapshot).

Run with `make bench` (2 cores). Needs the bootstrap snapshot (see bench/serve.py).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench.serve import ensure_snapshot, start
from xsmoe.common import ledger
from xsmoe.common.events import FeedbackEvent, stream_fields
from xsmoe.common.keys import Keys
from xsmoe.common.settings import Settings
from xsmoe.model.data import load_movielens_100k
from xsmoe.model.snapshot import current_version, set_current
from xsmoe.redis_server import EmbeddedRedis, free_port
from xsmoe.workers.settings import WorkerOptions, WorkerSettings
from xsmoe.workers.worker import Worker

log = logging.getLogger("bench.worker")
INGEST_EVENTS = int(os.environ.get("BENCH_INGEST_EVENTS", "100000"))
WINDOW = 10_000


def fill(client: redis.Redis, keys: Keys, n: int) -> None:
    rng = np.random.default_rng(0)
    with client.pipeline(transaction=False) as pipe:
        for i in range(n):
            event = FeedbackEvent(
                event_id=f"b{i}",
                user_id=f"u{rng.integers(1000)}",
                item_id=str(rng.integers(1, 1683)),
            )
            pipe.xadd(keys.feedback, stream_fields(event))
            if i % 5000 == 4999:
                pipe.execute()
        pipe.execute()


def drained(client: redis.Redis, keys: Keys, group: str) -> bool:
    info: Any = client.xinfo_groups(keys.feedback)
    mine = [g for g in info if g["name"].decode() == group]
    last: Any = client.xinfo_stream(keys.feedback)["last-generated-id"]
    return bool(mine) and mine[0]["pending"] == 0 and mine[0]["last-delivered-id"] == last


def floor_rate(client: redis.Redis, keys: Keys, n: int) -> float:
    """Bare consumer: XREADGROUP 1000 at a time, XACK them; no parsing, no windows."""
    client.xgroup_create(keys.feedback, "floor", id="0")
    start_t = time.perf_counter()
    got = 0
    while got < n:
        reply: Any = client.xreadgroup("floor", "f", {keys.feedback: ">"}, count=1000)
        ids = [entry_id for entry_id, _ in reply[0][1]]
        client.xack(keys.feedback, "floor", *ids)
        got += len(ids)
    return n / (time.perf_counter() - start_t)


def ingestion(work: Path) -> dict[str, float]:
    with EmbeddedRedis(work / "redis-ingest", persist=False) as server:
        client = redis.Redis.from_url(server.url)
        keys = Keys("ingest")
        fill(client, keys, INGEST_EVENTS)
        floor = floor_rate(client, keys, INGEST_EVENTS)
        settings = WorkerSettings(
            redis_url=server.url,
            redis_prefix="ingest",
            snapshot_dir=work / "ingest-snapshots",
            worker=WorkerOptions(consumer="bench", train=False, window_events=WINDOW, block_ms=50),
        )
        worker = Worker(settings)
        thread = threading.Thread(target=worker.run)
        t0 = time.perf_counter()
        thread.start()
        while not drained(client, keys, "trainers"):
            time.sleep(0.01)
        seconds = time.perf_counter() - t0
        worker.stop.set()
        thread.join()
        windows = len(ledger.records(settings.snapshots))
    rate = INGEST_EVENTS / seconds
    return {"events": INGEST_EVENTS, "seconds": seconds, "rate": rate, "floor": floor,
            "windows": windows}  # fmt: skip


def freshness(work: Path) -> dict[str, Any]:
    settings = Settings()
    source = settings.snapshots
    base = ensure_snapshot(source)
    root = work / "snapshots"
    root.mkdir()
    shutil.copytree(source / base, root / base)
    set_current(root, base)
    manifest = json.loads((root / base / "manifest.json").read_text())
    trained = int(manifest.get("source", {}).get("trained_interactions", 50_000))
    inter = load_movielens_100k().interactions
    window = [
        {"event_id": f"ml{i}", "user_id": str(inter.user_ids[i]), "item_id": str(inter.item_ids[i]),
         "ts": float(inter.timestamps[i])}
        for i in range(trained, trained + WINDOW)
    ]  # fmt: skip
    with EmbeddedRedis(work / "redis-fresh", persist=False) as server:
        port = free_port()
        api = f"http://127.0.0.1:{port}"
        env = {
            "XSMOE_REDIS_URL": server.url,
            "XSMOE_REDIS_PREFIX": "fresh",
            "XSMOE_SNAPSHOT_DIR": str(root),
            "XSMOE_DATA_DIR": str(settings.data_dir.resolve()),
            "XSMOE_SERVING__POLL_SECONDS": "0.5",
            "XSMOE_WORKER__WINDOW_EVENTS": str(WINDOW),
            "XSMOE_WORKER__WINDOW_SECONDS": "3600",
            "XSMOE_WORKER__CONSUMER": "bench",
            "XSMOE_TORCH_THREADS": "1",
        }
        procs = [start([sys.executable, "-m", "xsmoe", "serve", "--port", str(port)], env,
                       f"{api}/readyz", work / "serve.log")]  # fmt: skip
        out = (work / "worker.log").open("wb")
        procs.append(
            subprocess.Popen([sys.executable, "-m", "xsmoe", "worker"], env={**os.environ, **env},
                             stdout=out, stderr=subprocess.STDOUT)
        )  # fmt: skip
        try:
            with httpx.Client(base_url=api, timeout=60) as http:
                for lo in range(0, WINDOW, 1000):
                    http.post(
                        "/v1/feedback", json={"events": window[lo : lo + 1000]}
                    ).raise_for_status()
                last_event = time.monotonic()
                committed = served = None
                deadline = last_event + 600
                while time.monotonic() < deadline and served is None:
                    if committed is None and ledger.records(root):
                        committed = time.monotonic() - last_event
                    version = http.get("/readyz").json().get("version")
                    if version != base:
                        served = time.monotonic() - last_event
                    if committed is not None and ledger.records(root)[-1]["outcome"] != "promoted":
                        break
                    time.sleep(0.05)
                record = ledger.records(root)[-1] if ledger.records(root) else {}
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=30)
    return {
        "committed_s": committed,
        "served_s": served,
        "outcome": record.get("outcome"),
        "reason": record.get("reason"),
        "metrics": record.get("metrics"),
        "online": record.get("online"),
        "current": current_version(root),
    }


def main() -> int:
    logging.basicConfig(level="WARNING", format="%(asctime)s %(name)s: %(message)s")
    work = Path(tempfile.mkdtemp(prefix="xsmoe-bench-worker-"))
    try:
        ing = ingestion(work)
        print(
            f"ingestion (training off): {ing['events']:,} events in {ing['seconds']:.2f} s = "
            f"{ing['rate']:,.0f} events/s over {ing['windows']} windows; bare XREADGROUP+XACK "
            f"floor {ing['floor']:,.0f} events/s (ratio {ing['rate'] / ing['floor']:.2f}); "
            f"target >= 10,000 events/s: {'MET' if ing['rate'] >= 10_000 else 'MISSED'}"
        )
        fresh = freshness(work)
        served, committed = fresh["served_s"], fresh["committed_s"]
        print(
            f"freshness: last event of a {WINDOW:,}-event window -> committed in "
            f"{committed if committed is None else round(committed, 1)} s, "
            f"served in {served if served is None else round(served, 1)} s "
            f"(outcome {fresh['outcome']}: {fresh['reason']}); target <= 60 s: "
            f"{'MET' if served is not None and served <= 60 else 'MISSED'}"
        )
        out = Path("var/bench")
        out.mkdir(parents=True, exist_ok=True)
        (out / "worker.json").write_text(
            json.dumps({"ingestion": ing, "freshness": fresh}, indent=2)
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
