"""A worker window on a large catalog: wall time and memory of one window at 100k / 1M items.

The catalogs are SYNTHETIC, built from the real ML-100k feature store: synthetic item
j is real item (j mod 1682)'s cached text rows plus small Gaussian noise (std 0.01 of
the features' own std), so every item has real-looking features and the model's real
cost per item. The window is 10,000 real ML-100k feedback events (the ones after the
bootstrap snapshot's training data), each user's earlier items as context (50 at
most, as the worker gives), mapped onto the catalog: real item r of a user in group
g (user id mod 64) is synthetic row r + 1682 * k(g, r) with k a fixed random copy, so
each real item has up to 64 copies in use and sequences stay consistent per group.

Each size runs in its own process (`--measure`), through the worker's own path: the
table the worker builds (`workers.worker._table`), `window_data` and the real
`train_and_gate` with the default WorkerOptions on the CPU. Figures: wall time (table
+ window + train_and_gate, and its parts), the process's peak RSS (VmHWM) and the
peaks of RssAnon and RssFile sampled every 0.1 s (mapped feature pages count in
RssFile while they are resident).

Stores go under --work (default /work/tmp-bench) and are deleted afterwards unless
--keep. Run under the bench lock: `flock /work/bench.lock taskset -c 0,1 python
bench/worker_catalog.py`.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from xsmoe.common.events import FeedbackEvent
from xsmoe.common.settings import Settings
from xsmoe.model.data import load_movielens_100k
from xsmoe.model.features import FeatureStore, ModalityRows
from xsmoe.model.snapshot import current_version, load_snapshot

log = logging.getLogger("bench.worker_catalog")
WINDOW = 10_000
GROUPS = 64
CONTEXT = 50
NOISE = 0.01  # of the features' std
CHUNK = 50_000


def build_store(real: FeatureStore, path: Path, n: int, modalities: list[str]) -> float:
    """A synthetic store of n items (see the module's docstring); seconds it took."""
    start = time.perf_counter()
    specs = {m: real.specs[m] for m in modalities}
    store = FeatureStore.create(path, specs)
    rng = np.random.default_rng(0)
    base = {m: np.asarray(real.features(m), np.float32) for m in modalities}
    present = {m: real.present(m) for m in modalities}
    scale = {m: NOISE * float(base[m].std()) for m in modalities}
    n_real = len(real)
    for lo in range(0, n, CHUNK):
        rows = np.arange(lo, min(lo + CHUNK, n)) % n_real
        batch = {}
        for m in modalities:
            feats = base[m][rows]
            feats += scale[m] * rng.standard_normal(feats.shape, dtype=np.float32)
            batch[m] = ModalityRows(feats, present[m][rows])
        store.append([f"s{j}" for j in range(lo, lo + len(rows))], batch)
    return time.perf_counter() - start


def copy_of(n_items: int, n_real: int) -> np.ndarray:
    """(GROUPS, n_real): which copy of real row r users of group g interact with."""
    copies = max(1, n_items // n_real)
    rng = np.random.default_rng(1)
    return rng.integers(0, copies, size=(GROUPS, n_real))


def window(
    n_items: int, real: FeatureStore, trained: int
) -> tuple[list[FeedbackEvent], dict[str, list[str]]]:
    """The 10,000 events after `trained`, and each user's earlier items, on the catalog."""
    inter = load_movielens_100k().interactions
    real_row = {item: r for r, item in enumerate(real.item_ids)}
    n_real = len(real)
    copy = copy_of(n_items, n_real)

    def item(user: str, real_id: str) -> str:
        r = real_row[real_id]
        return f"s{r + n_real * int(copy[int(user) % GROUPS, r])}" if n_items > n_real else real_id

    events = []
    for i in range(trained, trained + WINDOW):
        user = str(inter.user_ids[i])
        events.append(
            FeedbackEvent(
                event_id=f"w{i}", user_id=user, item_id=item(user, str(inter.item_ids[i]))
            )
        )
    users = {e.user_id for e in events}
    earlier: dict[str, list[str]] = {}
    for i in range(trained):
        user = str(inter.user_ids[i])
        if user in users:
            earlier.setdefault(user, []).append(item(user, str(inter.item_ids[i])))
    return events, {u: items[-CONTEXT:] for u, items in earlier.items()}


class MemoryPeaks:
    """Samples /proc/self/status every 0.1 s: the peaks of RssAnon and RssFile."""

    def __init__(self) -> None:
        self.peak: dict[str, int] = {"RssAnon": 0, "RssFile": 0}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @staticmethod
    def now() -> dict[str, int]:
        fields = {}
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                fields[key] = int(value.split()[0]) * 1024
        return fields

    def _run(self) -> None:
        while not self.stop.wait(0.1):
            now = self.now()
            for key in self.peak:
                self.peak[key] = max(self.peak[key], now[key])

    def close(self) -> dict[str, int]:
        self.stop.set()
        self.thread.join()
        return {**self.now(), **{f"peak_{k}": v for k, v in self.peak.items()}}


def measure(store_path: Path, n_items: int) -> dict[str, Any]:
    """One window through the worker's path, in this (fresh) process."""
    import torch

    from xsmoe.workers.settings import WorkerOptions
    from xsmoe.workers.trainer import train_and_gate, window_data
    from xsmoe.workers.worker import _table

    torch.set_num_threads(2)
    settings = Settings()
    snapshot = load_snapshot(settings.snapshots / str(current_version(settings.snapshots)))
    real = FeatureStore.open(settings.features_dir("ml-100k"))
    trained = int(snapshot.manifest.get("source", {}).get("trained_interactions", 50_000))
    events, contexts = window(n_items, real, trained)
    opts = WorkerOptions(consumer="bench", device="cpu")
    memory = MemoryPeaks()
    before = MemoryPeaks.now()
    t0 = time.perf_counter()
    store = FeatureStore.open(store_path)
    table = _table(store, snapshot)
    row_of = {item_id: row for row, item_id in enumerate(store.item_ids)}
    t_table = time.perf_counter() - t0
    data, unknown = window_data(events, row_of, contexts, opts)
    t_data = time.perf_counter() - t0 - t_table
    result = train_and_gate(snapshot.model, table, data, opts, seed=0)
    seconds = time.perf_counter() - t0
    mem = memory.close()
    assert not unknown, unknown[:5]
    assert result.report is not None and result.item_vectors is not None
    return {
        "items": len(store),
        "store_bytes": sum(f.stat().st_size for f in store_path.iterdir()),
        "table_bytes": table.nbytes,
        "rows_in_window": len(np.unique(data.rows)),
        "seconds": seconds,
        "table_seconds": t_table,
        "window_data_seconds": t_data,
        "train_seconds": result.report.seconds,
        "epochs": result.report.epochs,
        "loss": result.report.loss,
        "val_items": result.report.val_items,
        "outcome": result.outcome,
        "reason": result.reason,
        "online": result.online,
        "gate": result.metrics["gate"],
        "phase_seconds": result.metrics["seconds"],
        "item_vectors": list(result.item_vectors.shape),
        "query_vectors": list(result.query_vectors.shape)
        if result.query_vectors is not None
        else None,
        "rss_before": before["VmRSS"],
        **mem,
    }


def measure_worker(store_path: Path, n_items: int) -> dict[str, Any]:
    """One window through the whole worker: events XADDed to an embedded Redis, read by
    `Worker.step`, closed by `Worker.close_window` (train, gate, snapshot written and
    published, entries acked), in this (fresh) process."""
    import tempfile

    import redis
    import torch

    from xsmoe.common import ledger
    from xsmoe.common.events import stream_fields
    from xsmoe.model.snapshot import set_current
    from xsmoe.redis_server import EmbeddedRedis
    from xsmoe.workers.settings import WorkerOptions, WorkerSettings
    from xsmoe.workers.worker import Worker

    torch.set_num_threads(2)
    settings = Settings()
    base = str(current_version(settings.snapshots))
    snapshot = load_snapshot(settings.snapshots / base)
    real = FeatureStore.open(settings.features_dir("ml-100k"))
    trained = int(snapshot.manifest.get("source", {}).get("trained_interactions", 50_000))
    events, contexts = window(n_items, real, trained)
    work = Path(tempfile.mkdtemp(prefix="xsmoe-bench-wc-", dir=store_path.parent))
    try:
        root = work / "snapshots"
        root.mkdir()
        shutil.copytree(settings.snapshots / base, root / base)
        set_current(root, base)
        with EmbeddedRedis(work / "redis", persist=False) as server:
            opts = WorkerOptions(
                consumer="bench",
                device="cpu",
                features_dir=store_path,
                window_events=WINDOW,
                window_seconds=3600,
                block_ms=50,
            )
            worker = Worker(
                WorkerSettings(
                    redis_url=server.url, redis_prefix="wc", snapshot_dir=root, worker=opts
                )
            )
            client = redis.Redis.from_url(server.url)
            with client.pipeline(transaction=False) as pipe:
                for user, items in contexts.items():
                    pipe.rpush(worker.keys.context(user), *items)
                for event in events:
                    pipe.xadd(worker.keys.feedback, stream_fields(event))
                pipe.execute()
            memory = MemoryPeaks()
            t0 = time.perf_counter()
            while not ledger.records(root):
                worker.step()
            seconds = time.perf_counter() - t0
            mem = memory.close()
            record = ledger.records(root)[-1]
            pending = worker.consumer.pending_count()
            version = record.get("version")
            snapshot_bytes = (
                sum(f.stat().st_size for f in (root / version).iterdir()) if version else 0
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "items": n_items,
        "seconds": seconds,
        "outcome": record["outcome"],
        "reason": record["reason"],
        "version": version,
        "snapshot_bytes": snapshot_bytes,
        "pending_after": pending,
        "metrics": record.get("metrics"),
        "online": record.get("online"),
        **mem,
    }


def child(mode: str, n: int, store: Path) -> dict[str, Any]:
    """One measurement in a fresh process (its own VmHWM): the JSON it prints."""
    cmd = [sys.executable, __file__, mode, str(n), "--store", str(store)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def gb(n: float) -> str:
    return f"{n / 2**30:.2f} GB"


def main() -> int:
    logging.basicConfig(level="WARNING", format="%(asctime)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="catalog sizes (comma-separated)")
    parser.add_argument("--work", type=Path, default=Path("/work/tmp-bench"))
    parser.add_argument("--keep", action="store_true", help="keep the synthetic stores")
    parser.add_argument(
        "--worker-path",
        action="store_true",
        help="also run each size through Worker.step / close_window (Redis, snapshot written)",
    )
    parser.add_argument("--measure", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--measure-worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:  # the child: one size, its own VmHWM
        print(json.dumps(measure(args.store, args.measure)))
        return 0
    if args.measure_worker is not None:
        print(json.dumps(measure_worker(args.store, args.measure_worker)))
        return 0
    settings = Settings()
    real_path = settings.features_dir("ml-100k")
    real = FeatureStore.open(real_path)
    version = current_version(settings.snapshots)
    if version is None:
        raise SystemExit(f"no snapshot in {settings.snapshots}: run `xsmoe bootstrap` first")
    modalities = list(load_snapshot(settings.snapshots / version).model.config.shapes)
    results = []
    print(
        f"worker window: {WINDOW:,} ML-100k events mapped onto SYNTHETIC catalogs "
        f"(real ML-100k {'+'.join(modalities)} features + noise, see bench/worker_catalog.py); "
        f"default WorkerOptions, CPU"
    )
    for n in [int(s) for s in args.sizes.split(",")]:
        path = real_path if n == len(real) else args.work / f"worker-store-{n}"
        built = None
        if n != len(real) and not (path / "meta.json").exists():
            built = build_store(real, path, n, modalities)

        try:
            r = child("--measure", n, path)
            whole = child("--measure-worker", n, path) if args.worker_path else None
        finally:
            if not args.keep and path != real_path:
                shutil.rmtree(path, ignore_errors=True)
        r["worker_path"] = whole
        r["build_seconds"] = built
        results.append(r)
        online = r["online"]
        print(
            f"{r['items']:>9,} items (store {gb(r['store_bytes'])}, table {gb(r['table_bytes'])}): "
            f"window {r['seconds']:.1f} s (train {r['train_seconds']:.1f} s, {r['epochs']} epochs, "
            f"{r['loss']} softmax, validation over {r['val_items']:,} items); peak RSS (VmHWM) "
            f"{gb(r['VmHWM'])}, peak RssAnon {gb(r['peak_RssAnon'])}, peak RssFile "
            f"{gb(r['peak_RssFile'])}; {r['outcome']}: {r['reason']}; online over "
            f"{online.get('cases')} of {online.get('of_cases', online.get('cases'))} cases"
        )
        target = (
            ""
            if r["items"] < 1_000_000
            else (
                f"  target <= 600 s and <= 6 GB peak: "
                f"{'MET' if r['seconds'] <= 600 and r['VmHWM'] <= 6 * 2**30 else 'MISSED'}"
            )
        )
        phases = ", ".join(f"{k} {v:.1f} s" for k, v in r["phase_seconds"].items())
        print(f"    parts: table {r['table_seconds']:.1f} s, {phases}")
        if target:
            print(target)
        if whole is not None:
            print(
                f"    through Worker.step/close_window (Redis, snapshot written, "
                f"{gb(whole['snapshot_bytes'])}): {whole['seconds']:.1f} s, peak RSS (VmHWM) "
                f"{gb(whole['VmHWM'])}, peak RssAnon {gb(whole['peak_RssAnon'])}, peak RssFile "
                f"{gb(whole['peak_RssFile'])}; {whole['outcome']} {whole['version']}, "
                f"{whole['pending_after']} entries left pending"
            )
    out_dir = Path("var/bench")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "worker_catalog.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
