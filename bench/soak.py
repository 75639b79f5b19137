"""Soak: many feedback events through the API while the worker trains; memory must
stay flat, not grow with the number of events.

Real processes (embedded redis-server, `xsmoe serve`, `xsmoe worker`) on the
ML-100k bootstrap snapshot. Events come from a fixed population of users (Zipf
activity, items by ML-100k popularity), 1% of them with a client event id (the
rest get server ids, which leave no dedup marker). The poster waits while the
worker is more than a few windows behind, so what is measured is what the system
keeps per event, not a backlog. Prints Redis used_memory, key counts, API and
worker RSS at start, quarter points and end, and the growth from the middle to
the end against the growth from start to middle.

    BENCH_SOAK_EVENTS=1000000 .venv/bin/python bench/soak.py   (make bench: 200,000)
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import redis
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench.serve import ensure_snapshot, rss_mb, start
from xsmoe.common import ledger
from xsmoe.common.keys import Keys
from xsmoe.common.settings import Settings
from xsmoe.model.data import load_movielens_100k
from xsmoe.model.snapshot import set_current
from xsmoe.redis_server import EmbeddedRedis, free_port

log = logging.getLogger("bench.soak")
EVENTS = int(os.environ.get("BENCH_SOAK_EVENTS", "200000"))  # 1M: about 80 min on 2 cores
USERS = 20_000
BATCH = 500
CONCURRENCY = 4
WINDOW = 20_000
MAX_BEHIND = 3 * WINDOW
PREFIX = "soak"


def batches(n: int, items: list[str], weights: np.ndarray, seed: int = 0) -> list[list[dict]]:
    rng = np.random.default_rng(seed)
    users = rng.zipf(1.3, size=n) % USERS
    picked = rng.choice(len(items), size=n, p=weights)
    kinds = rng.choice(["click", "view", "purchase", "like", "dislike"], size=n,
                       p=[0.6, 0.2, 0.08, 0.08, 0.04])  # fmt: skip
    out, batch = [], []
    for i in range(n):
        event = {"user_id": f"s{users[i]}", "item_id": items[picked[i]], "type": str(kinds[i])}
        if i % 100 == 0:
            event["event_id"] = f"soak-{i}"
        batch.append(event)
        if len(batch) == BATCH:
            out.append(batch)
            batch = []
    return out + ([batch] if batch else [])


def behind(db: redis.Redis, keys: Keys) -> int:
    """Entries still in the stream: the worker trims what it has consumed, so this is
    what is not trained yet (plus at most the window in training)."""
    return int(db.xlen(keys.feedback))


def drained(db: redis.Redis, keys: Keys) -> bool:
    try:
        groups: Any = db.xinfo_groups(keys.feedback)
    except redis.ResponseError:
        return False
    last: Any = db.xinfo_stream(keys.feedback)["last-generated-id"]
    return any(g["pending"] == 0 and g["last-delivered-id"] == last for g in groups)


def sample(db: redis.Redis, keys: Keys, api: int, worker: int, posted: int, root: Path) -> dict:
    info: Any = db.info("memory")
    markers = sum(1 for _ in db.scan_iter(match=f"{PREFIX}:evt:*", count=10_000))
    return {
        "posted": posted,
        "redis_used_mb": info["used_memory"] / 2**20,
        "keys": int(db.dbsize()),
        "markers": markers,
        "stream": int(db.xlen(keys.feedback)),
        "behind": behind(db, keys),
        "api_rss_mb": rss_mb(api),
        "worker_rss_mb": rss_mb(worker),
        "windows": len(ledger.records(root)),
    }


async def post_all(base: str, plan: list[list[dict]], db: redis.Redis, keys: Keys,
                   checkpoint: Any) -> float:  # fmt: skip
    queue: asyncio.Queue[list[dict] | None] = asyncio.Queue(maxsize=CONCURRENCY * 2)
    failed = 0

    async def send(http: httpx.AsyncClient) -> None:
        nonlocal failed
        while (batch := await queue.get()) is not None:
            r = await http.post("/v1/feedback", json={"events": batch})
            failed += r.status_code != 202

    start_t = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        senders = [asyncio.create_task(send(http)) for _ in range(CONCURRENCY)]
        posted = 0
        with tqdm(total=sum(len(b) for b in plan), unit="ev", desc="soak") as bar:
            for batch in plan:
                while behind(db, keys) > MAX_BEHIND:  # let the worker catch up
                    await asyncio.sleep(0.2)
                await queue.put(batch)
                posted += len(batch)
                bar.update(len(batch))
                checkpoint(posted)
            for _ in senders:
                await queue.put(None)
            await asyncio.gather(*senders)
    if failed:
        raise SystemExit(f"{failed} feedback requests failed")
    return time.perf_counter() - start_t


def main() -> int:
    logging.basicConfig(level="WARNING", format="%(asctime)s %(name)s: %(message)s")
    settings = Settings()
    base_version = ensure_snapshot(settings.snapshots)
    work = Path(tempfile.mkdtemp(prefix="xsmoe-soak-"))
    root = work / "snapshots"
    root.mkdir()
    shutil.copytree(settings.snapshots / base_version, root / base_version)
    set_current(root, base_version)
    inter = load_movielens_100k().interactions
    ids, counts = np.unique(np.asarray(inter.item_ids).astype(str), return_counts=True)
    plan = batches(EVENTS, [str(i) for i in ids], counts / counts.sum())
    keys = Keys(PREFIX)
    try:
        with EmbeddedRedis(work / "redis", persist=False) as server:
            port = free_port()
            env = {
                "XSMOE_REDIS_URL": server.url,
                "XSMOE_REDIS_PREFIX": PREFIX,
                "XSMOE_SNAPSHOT_DIR": str(root),
                "XSMOE_DATA_DIR": str(settings.data_dir.resolve()),
                "XSMOE_WORKER__WINDOW_EVENTS": str(WINDOW),
                "XSMOE_WORKER__WINDOW_SECONDS": "30",
                "XSMOE_WORKER__MAX_EPOCHS": "2",
                "XSMOE_WORKER__CONSUMER": "soak",
                "XSMOE_TORCH_THREADS": "1",
                "XSMOE_LOG_LEVEL": "WARNING",
            }
            api_url = f"http://127.0.0.1:{port}"
            api = start([sys.executable, "-m", "xsmoe", "serve", "--port", str(port)], env,
                        f"{api_url}/readyz", work / "serve.log")  # fmt: skip
            worker_log = (work / "worker.log").open("wb")
            worker = subprocess.Popen([sys.executable, "-m", "xsmoe", "worker"],
                                      env={**os.environ, **env}, stdout=worker_log,
                                      stderr=subprocess.STDOUT)  # fmt: skip
            db = redis.Redis.from_url(server.url)
            samples = [sample(db, keys, api.pid, worker.pid, 0, root)]
            marks = {EVENTS * q // 4 for q in (1, 2, 3)}

            def checkpoint(posted: int) -> None:
                if any(posted >= m > samples[-1]["posted"] for m in marks):
                    samples.append(sample(db, keys, api.pid, worker.pid, posted, root))
                    tqdm.write(json.dumps(samples[-1]))

            try:
                seconds = asyncio.run(post_all(api_url, plan, db, keys, checkpoint))
                deadline = time.monotonic() + 900
                while not drained(db, keys) and time.monotonic() < deadline:
                    time.sleep(0.5)
                time.sleep(2.0)  # the last window's acks, trim and retention
                samples.append(sample(db, keys, api.pid, worker.pid, EVENTS, root))
                errors = sum(r.get("outcome") == "failed" for r in ledger.records(root))
                dead = int(db.xlen(keys.dead_letter))
            finally:
                for proc in (api, worker):
                    proc.terminate()
                    try:
                        proc.wait(timeout=60)
                    except subprocess.TimeoutExpired:
                        log.error("%s did not stop in 60 s: killed", proc.args)
                        proc.kill()
                        proc.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(samples, seconds, errors, dead)
    out = Path("var/bench")
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(json.dumps({"events": EVENTS, "seconds": seconds,
                                               "samples": samples}, indent=2))  # fmt: skip
    return 0


def report(samples: list[dict], seconds: float, errors: int, dead: int) -> None:
    print(f"soak: {EVENTS:,} events through the API in {seconds:.0f} s "
          f"({EVENTS / seconds:,.0f} events/s, paced by the training worker); "
          f"{samples[-1]['windows']} windows; dead-lettered {dead}")  # fmt: skip
    head = f"{'posted':>9} {'redis MB':>9} {'keys':>8} {'markers':>8} {'stream':>7} "
    print(head + f"{'behind':>7} {'API RSS':>8} {'worker RSS':>10} {'windows':>7}")
    for s in samples:
        print(f"{s['posted']:>9,} {s['redis_used_mb']:>9.1f} {s['keys']:>8,} {s['markers']:>8,} "
              f"{s['stream']:>7,} {s['behind']:>7,} {s['api_rss_mb']:>8.0f} "
              f"{s['worker_rss_mb']:>10.0f} {s['windows']:>7}")  # fmt: skip
    # From the first quarter on: at the start the worker has not loaded its model yet.
    base, mid = samples[1], samples[len(samples) // 2]
    for name in ("redis_used_mb", "api_rss_mb", "worker_rss_mb"):
        first, second = mid[name] - base[name], samples[-1][name] - mid[name]
        print(f"{name}: quarter->middle {first:+.1f} MB, middle->end {second:+.1f} MB")


if __name__ == "__main__":
    raise SystemExit(main())
