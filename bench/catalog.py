"""Catalog-size benchmark: what 10k, 100k and 1M items cost the worker and a replica.

The catalogs are SYNTHETIC, built from the real ML-100k bootstrap snapshot (the
current version in XSMOE_SNAPSHOT_DIR, default var/snapshots): a catalog of N items
is the 1682 real items (real ids, real embeddings, so real MovieLens sessions are
valid histories) plus N - 1682 synthetic ones (`syn-0000001`, ...), each a random
real embedding plus Gaussian noise of 0.3 x that dimension's std over the real
items. Each catalog is written with the snapshot's real model by `save_snapshot`
into a temporary snapshot root and made current.

Queries are real: user vectors of real ML-100k sessions (a user's items in time
order, 10 to 30 of them), embedded by the snapshot's model. The users are split
three ways: sessions of one part are the queries the index is built with, of
another the held-out queries recall is checked on, of the rest the HTTP load
(each load phase has its own sessions; the service's user-vector cache hits are
reported, near 0 means no request repeated a history).

Measured per size, on the same cores:
  - snapshot size on disk (total, index.faiss alone) and the worker's build time
    (the `save_snapshot` call, here in this process; it builds the serving index
    with the build queries) and the index's own build_seconds from the manifest;
  - a replica: `xsmoe serve` start until /readyz answers, its RSS steady (after the
    load) and peak (VmHWM) against the index's own size (manifest bytes);
  - POST /v1/recommendations (distinct real sessions, seen items excluded) p50/p99
    at c=1 and c=8 (bench/_loadgen.py: no request repeats another's);
  - in-process, one thread, no HTTP: recommend and search alone, with the index as
    load_snapshot maps it and the same file read into RAM; load_snapshot's seconds;
  - recall@10: the manifest's, the index as loaded (load_snapshot) on the held-out
    queries, and what the service returns (exclude_seen false) on held-out
    sessions, each against exact top-10 by brute-force inner product (numpy);
  - a hot swap under c=8 load: a second version (a re-publication of the same
    files under a new version) is made current; pointer change to /readyz
    reporting it, errors and p99 of the load run spanning the swap, and a
    GET /healthz probe alongside (one at a time, 10 ms apart): the longest wait
    during the swap against outside it, which shows an event loop held up.

Targets (at 1M items): swap (load + warm-up) <= 10 s, steady RSS <= 2x the index,
p50 <= 5 ms at c=1, recall@10 >= 0.95; swap under load: 0 errors, p99 <= 3x steady.

    flock /work/bench.lock taskset -c 0,1 python bench/catalog.py

Env: BENCH_CATALOG_SIZES (default 10000,100000,1000000), BENCH_SECONDS (per load
phase, default 10), BENCH_SWAP_SECONDS (the load spanning the swap, default 30),
BENCH_JSON (write the results there as JSON).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import httpx
import numpy as np
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench import _loadgen as loadgen
from xsmoe.common.keys import Keys
from xsmoe.common.settings import Settings
from xsmoe.model.data import load_movielens_100k
from xsmoe.model.retrieval import Retriever
from xsmoe.model.snapshot import (
    FILES,
    MANIFEST,
    Snapshot,
    current_version,
    load_snapshot,
    save_snapshot,
    set_current,
    sha256_of,
)
from xsmoe.redis_server import EmbeddedRedis, free_port

log = logging.getLogger("bench.catalog")
REPO = Path(__file__).resolve().parent.parent
SIZES = [int(s) for s in os.environ.get("BENCH_CATALOG_SIZES", "10000,100000,1000000").split(",")]
DURATION_S = float(os.environ.get("BENCH_SECONDS", "10"))
SWAP_LOAD_S = float(os.environ.get("BENCH_SWAP_SECONDS", "30"))
NOISE = 0.3  # of each dimension's std over the real items
BUILD_QUERIES = 1000
CHECK_QUERIES = 1000
SERVICE_CHECKS = CHECK_QUERIES  # held-out sessions asked over HTTP (and timed in-process)
MIN_SESSION, MAX_SESSION = 10, 30
CHUNK = 100_000
READY_TIMEOUT_S = 600.0
STOP_TIMEOUT_S = 20.0
PREFIX = "benchcat"


@dataclass(frozen=True)
class Sessions:
    """Real ML-100k sessions (item ids, newest last), split by user."""

    build: list[list[str]]
    check: list[list[str]]
    load: list[list[str]]


def real_sessions(seed: int = 0) -> Sessions:
    """Windows of 10..30 consecutive items of each user's timeline, one per end position."""
    inter = load_movielens_100k().interactions
    timelines: dict[str, list[str]] = {}
    for u, i in zip(inter.user_ids, inter.item_ids, strict=True):
        timelines.setdefault(str(u), []).append(str(i))
    rng = np.random.default_rng(seed)
    users = sorted(timelines)
    rng.shuffle(users)
    part = len(users) // 10
    groups = {"build": users[:part], "check": users[part : 2 * part], "load": users[2 * part :]}
    out: dict[str, list[list[str]]] = {}
    for name, members in groups.items():
        seen: set[tuple[str, ...]] = set()
        sessions = []
        for user in members:
            items = timelines[user]
            for end in range(MIN_SESSION, len(items) + 1):
                length = int(rng.integers(MIN_SESSION, MAX_SESSION + 1))
                s = tuple(items[max(0, end - length) : end])
                if s not in seen:
                    seen.add(s)
                    sessions.append(list(s))
        order = rng.permutation(len(sessions))
        out[name] = [sessions[j] for j in order]
    return Sessions(out["build"][:BUILD_QUERIES], out["check"][:CHECK_QUERIES], out["load"])


def user_vectors(retriever: Retriever, sessions: list[list[str]]) -> np.ndarray:
    """(len(sessions), d) user vectors by the snapshot's model, as the service computes them."""
    rows = [retriever.history_rows(s)[0] for s in sessions]
    out = [retriever.user_vectors(rows[lo : lo + 256]) for lo in range(0, len(rows), 256)]
    return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)


def synthetic_catalog(real: np.ndarray, n: int, seed: int) -> np.ndarray:
    """(n, d): the real rows first, then noisy copies of random real rows."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, real.shape[1]), np.float32)
    out[: len(real)] = real
    scale = (NOISE * real.std(axis=0)).astype(np.float32)
    for lo in range(len(real), n, CHUNK):
        hi = min(lo + CHUNK, n)
        picks = rng.integers(0, len(real), hi - lo)
        noise = rng.standard_normal((hi - lo, real.shape[1]), dtype=np.float32)
        out[lo:hi] = real[picks] + noise * scale
    return out


def exact_top10(embeddings: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """(Q, 10) rows of the 10 largest inner products, brute force in numpy."""
    best_s = np.full((len(queries), 0), -np.inf, np.float32)
    best_r = np.zeros((len(queries), 0), np.int64)
    for lo in range(0, len(embeddings), CHUNK):
        scores = queries @ embeddings[lo : lo + CHUNK].T
        k = min(10, scores.shape[1])
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        best_s = np.concatenate([best_s, np.take_along_axis(scores, part, 1)], axis=1)
        best_r = np.concatenate([best_r, part + lo], axis=1)
        keep = np.argsort(-best_s, axis=1)[:, :10]
        best_s = np.take_along_axis(best_s, keep, 1)
        best_r = np.take_along_axis(best_r, keep, 1)
    return best_r


def recall_at_10(found: list[list[int]] | np.ndarray, exact: np.ndarray) -> float:
    hits = [len(set(map(int, f)) & set(map(int, e))) for f, e in zip(found, exact, strict=True)]
    return float(np.sum(hits) / (10 * len(exact)))


def index_params(snapshot: Snapshot) -> dict[str, Any]:
    """What the loaded index is (its type, nlist, nprobe as loaded)."""
    out: dict[str, Any] = {"type": type(snapshot.index).__name__}
    try:
        ivf = faiss.extract_index_ivf(snapshot.index)
    except RuntimeError:
        return out
    return {**out, "type": type(ivf).__name__, "nlist": int(ivf.nlist), "nprobe": int(ivf.nprobe)}


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon, RssFile of a process, in bytes."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            fields[key] = int(value.split()[0]) * 1024
    return fields


def start_serve(
    env: dict[str, str], port: int, logfile: Path
) -> tuple[subprocess.Popen[bytes], float]:
    """`xsmoe serve` started; returns it and the seconds until /readyz answered 200."""
    cmd = [sys.executable, "-m", "xsmoe", "serve", "--port", str(port)]
    with logfile.open("wb") as out:
        t0 = time.monotonic()
        proc = subprocess.Popen(
            cmd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}/readyz"
    while time.monotonic() - t0 < READY_TIMEOUT_S:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return proc, time.monotonic() - t0
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    stop(proc)
    raise RuntimeError(f"xsmoe serve did not become ready; log:\n{logfile.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT_S: bounded."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        log.warning("serve pid %d ignored SIGTERM for %.0f s: killed", proc.pid, STOP_TIMEOUT_S)
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT_S)


def wait_version(api: str, version: str, timeout: float = READY_TIMEOUT_S) -> float:
    """Seconds until /readyz reports `version`."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if httpx.get(f"{api}/readyz", timeout=5).json().get("version") == version:
                return time.monotonic() - t0
        except (httpx.TransportError, ValueError):
            pass
        time.sleep(0.02)
    raise RuntimeError(f"version {version} was not served within {timeout:.0f} s")


def cache_hits(api: str) -> float:
    text = httpx.get(f"{api}/metrics", timeout=10).text
    m = re.search(r"^xsmoe_user_vector_cache_hits(?:_total)? ([\d.e+]+)$", text, re.MULTILINE)
    return float(m.group(1)) if m else float("nan")


def republish(root: Path, source: str, version: str) -> None:
    """The same files under a new version (what a re-publication costs a replica)."""
    tmp = root / f".tmp-{version}"
    shutil.copytree(root / source, tmp)
    manifest = json.loads((tmp / MANIFEST).read_text())
    manifest.update(version=version, parent=source, created_at=time.time())
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
    tmp.rename(root / version)


def calls(sessions: list[list[str]], exclude_seen: bool = True) -> list[loadgen.Call]:
    body: dict[str, Any] = {"k": 10}
    if not exclude_seen:
        body["exclude_seen"] = False
    return [loadgen.Call("POST", "/v1/recommendations", {**body, "item_ids": s}) for s in sessions]


def service_top10(api: str, sessions: list[list[str]], ids: list[str]) -> np.ndarray:
    """(len(sessions), 10) rows the service returns for each session (exclude_seen false)."""
    row = {item_id: r for r, item_id in enumerate(ids)}
    found = np.full((len(sessions), 10), -1, np.int64)
    with httpx.Client(base_url=api, timeout=30) as http:
        for j, call in enumerate(calls(sessions, exclude_seen=False)):
            r = http.post(call.path, json=call.body)
            r.raise_for_status()
            got = [row[item["item_id"]] for item in r.json()["items"]]
            found[j, : len(got)] = got
    return found


def compute_floor(snapshot: Snapshot, sessions: list[list[str]]) -> dict[str, float]:
    """In-process, one thread as the service runs, no HTTP: p50/p99 ms of the whole
    recommend (user vector + search, seen items excluded), of the search alone, and
    of the search alone over the same index file read into RAM (not memory-mapped)."""
    import torch

    from xsmoe.model.ann import read_index
    from xsmoe.model.catalog_index import CatalogIndex

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    try:
        retriever = Retriever.from_snapshot(snapshot)
        in_ram = CatalogIndex.over(
            snapshot.item_ids,
            snapshot.embeddings,
            read_index(snapshot.path / "index.faiss", mmap=False),
            nprobe=retriever.catalog.nprobe,
        )
        times: dict[str, list[float]] = {"recommend": [], "search": [], "search_in_ram": []}
        for j, s in enumerate(sessions):
            t = time.perf_counter()
            retriever.recommend(s, 10)
            whole = time.perf_counter() - t
            vector, _ = retriever.user_vector(s)
            assert vector is not None
            rows = retriever.history_rows(s)[0]
            t = time.perf_counter()
            retriever.catalog.search(vector, 10, rows)
            mapped = time.perf_counter() - t
            t = time.perf_counter()
            in_ram.search(vector, 10, rows)
            if j >= 20:  # the first calls allocate
                times["search_in_ram"].append(time.perf_counter() - t)
                times["search"].append(mapped)
                times["recommend"].append(whole)
    finally:
        torch.set_num_threads(threads)
        faiss.omp_set_num_threads(threads)
    out = {}
    for name, values in times.items():
        out[f"{name}_p50_ms"] = float(np.percentile(values, 50)) * 1e3
        out[f"{name}_p99_ms"] = float(np.percentile(values, 99)) * 1e3
    return out


def measure_size(
    n: int,
    source: Snapshot,
    sessions: Sessions,
    build_q: np.ndarray,
    check_q: np.ndarray,
    work: Path,
    with_swap: bool,
) -> dict[str, Any]:
    """Everything for one catalog size, in its own snapshot root, Redis and replica."""
    real = np.asarray(source.embeddings, np.float32)
    ids = list(source.item_ids) + [f"syn-{j:07d}" for j in range(1, n - len(real) + 1)]
    t = time.perf_counter()
    embeddings = synthetic_catalog(real, n, seed=n)
    log.info("%d items: synthetic catalog made in %.1f s", n, time.perf_counter() - t)
    root = work / f"snapshots-{n}"
    extra = {
        "source": source.manifest.get("source", {}),
        "popular": source.manifest.get("popular", []),
        "synthetic": {"from": source.version, "real_items": len(real), "noise_of_std": NOISE},
    }
    t = time.perf_counter()
    path = save_snapshot(
        root,
        source.model,
        ids,
        embeddings,
        source.feature_specs,
        metrics=dict(source.manifest.get("metrics", {})),
        extra=extra,
        version="v000001",
        queries=build_q,
    )
    build_s = time.perf_counter() - t
    set_current(root, path.name)
    manifest = json.loads((path / MANIFEST).read_text())
    index_info: dict[str, Any] = manifest.get("index", {})
    files = {f.name: f.stat().st_size for f in path.iterdir() if f.is_file()}
    log.info("%d items: snapshot written in %.1f s, index %s", n, build_s, index_info)

    # the index as a replica loads it, on held-out queries, against exact search
    exact = exact_top10(embeddings, check_q)
    t = time.perf_counter()
    loaded = load_snapshot(path)  # files in the page cache (just written), as for the replica
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    for name in FILES:
        sha256_of(path / name)
    checksum_s = time.perf_counter() - t
    log.info(
        "%d items: load_snapshot %.2f s in-process, of it checksums ~%.2f s", n, load_s, checksum_s
    )
    params = index_params(loaded)
    _, rows = loaded.index.search(check_q, 10)
    index_recall = params["recall_as_loaded"] = recall_at_10(rows, exact)
    nprobe = (index_info.get("params") or {}).get("nprobe")
    if nprobe is not None and params.get("nprobe") != nprobe:  # the manifest's own nprobe
        log.warning("%d items: index loaded with nprobe %s, manifest says %s", n, params, nprobe)
        faiss.extract_index_ivf(loaded.index).nprobe = int(nprobe)
        _, rows = loaded.index.search(check_q, 10)
        index_recall = recall_at_10(rows, exact)
    floor = compute_floor(loaded, sessions.check[:SERVICE_CHECKS])
    log.info("%d items: in-process compute floor %s", n, floor)
    del loaded
    log.info(
        "%d items: loaded index %s, recall@10 on held-out queries %.4f", n, params, index_recall
    )

    result: dict[str, Any] = {
        "items": n,
        "synthetic_items": n - len(real),
        "snapshot_bytes": sum(files.values()),
        "index_file_bytes": files.get("index.faiss", 0),
        "embeddings_bytes": files.get("embeddings.safetensors", 0),
        "build_seconds": build_s,
        "index": index_info,
        "index_loaded": params,
        "recall_manifest": index_info.get("recall@10"),
        "recall_index_heldout": index_recall,
        "compute_floor": floor,
        "load_snapshot_seconds": load_s,
        "checksum_seconds": checksum_s,
        "heldout_queries": len(check_q),
        "build_queries": len(build_q),
    }
    index_bytes = int(index_info.get("bytes") or result["index_file_bytes"])
    result["index_bytes"] = index_bytes

    load = sessions.load  # disjoint slices: no session is sent twice to one replica
    warm, steady = 3000, (len(load) - 3000) // 4
    phases = {
        "warm": calls(load[:warm]),
        "c1": calls(load[warm : warm + steady]),
        "c8": calls(load[warm + steady : warm + 2 * steady]),
        "swap": calls(load[warm + 2 * steady :]),
    }
    with EmbeddedRedis(work / f"redis-{n}", persist=False) as server:
        port = free_port()
        api = f"http://127.0.0.1:{port}"
        env = {
            "XSMOE_REDIS_URL": server.url,
            "XSMOE_REDIS_PREFIX": PREFIX,
            "XSMOE_DATA_DIR": str(work / f"data-{n}"),
            "XSMOE_SNAPSHOT_DIR": str(root),
            "XSMOE_SERVING__POLL_SECONDS": "0.5",
            "XSMOE_LOG_LEVEL": "WARNING",
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
            ),
        }
        proc, ready_s = start_serve(env, port, work / f"serve-{n}.log")
        try:
            pid = proc.pid
            result["serve_ready_seconds"] = ready_s
            result["rss_ready"] = proc_status(pid)
            log.info("%d items: serve ready in %.1f s, %s", n, ready_s, result["rss_ready"])
            loadgen.run(api, phases["warm"], 8, min(DURATION_S, 3))
            hits0 = cache_hits(api)
            r1 = loadgen.run(api, phases["c1"], 1, DURATION_S)
            r8 = loadgen.run(api, phases["c8"], 8, DURATION_S)
            result["cache_hits_c1_c8"] = cache_hits(api) - hits0
            result["c1"], result["c8"] = vars(r1), vars(r8)
            result["rss_steady"] = proc_status(pid)
            log.info("%d items: c=1 %s; c=8 %s", n, r1, r8)
            served = service_top10(api, sessions.check[:SERVICE_CHECKS], ids)
            result["recall_service_heldout"] = recall_at_10(served, exact[:SERVICE_CHECKS])
            result["recall_index_same_sessions"] = recall_at_10(
                rows[:SERVICE_CHECKS], exact[:SERVICE_CHECKS]
            )
            result["service_agrees_with_index"] = recall_at_10(served, rows[:SERVICE_CHECKS])
            if with_swap:
                result["swap"] = swap_under_load(api, server.url, root, phases["swap"], pid)
            result["rss_end"] = proc_status(pid)
        finally:
            stop(proc)
    shutil.rmtree(root, ignore_errors=True)
    return result


class StallProbe:
    """GET /healthz back to back from a thread: how long the event loop kept one
    trivial request waiting, during the swap and outside it."""

    def __init__(self, api: str) -> None:
        self.samples: list[tuple[float, float]] = []  # (sent at, seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(api,), daemon=True)
        self._thread.start()

    def _run(self, api: str) -> None:
        with httpx.Client(base_url=api, timeout=30) as http:
            while not self._stop.wait(0.01):
                t = time.monotonic()
                try:
                    http.get("/healthz")
                except httpx.TransportError:
                    continue
                self.samples.append((t, time.monotonic() - t))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=40)

    def summary(self, begin: float, end: float) -> dict[str, float]:
        """Max and p99 ms of /healthz sent within [begin, end] and outside it; when the
        longest one was sent, in seconds after `begin`."""
        inside = [(t, s) for t, s in self.samples if begin <= t <= end]
        outside = [s for t, s in self.samples if not begin <= t <= end]
        worst = max(inside, key=lambda x: x[1], default=(begin, float("nan")))
        return {
            "during_max_ms": worst[1] * 1e3,
            "during_max_at_s": worst[0] - begin,
            "during_p99_ms": float(np.percentile([s for _, s in inside], 99)) * 1e3
            if inside
            else float("nan"),
            "outside_max_ms": max(outside, default=float("nan")) * 1e3,
            "outside_p99_ms": float(np.percentile(outside, 99)) * 1e3 if outside else float("nan"),
            "samples": len(self.samples),
        }


def swap_under_load(
    api: str, redis_url: str, root: Path, load: list[loadgen.Call], pid: int
) -> dict[str, Any]:
    """c=8 load; a second version made current during it; how long until it is served."""
    base = current_version(root)
    assert base is not None
    version = f"v{int(base[1:]) + 1:06d}"
    t = time.perf_counter()
    republish(root, base, version)
    publish_s = time.perf_counter() - t
    hits0 = cache_hits(api)
    started = time.monotonic()
    running = loadgen.start(api, load, 8, SWAP_LOAD_S)
    probe = StallProbe(api)
    try:
        time.sleep(min(3.0, SWAP_LOAD_S / 5))
        pointer_at = time.monotonic()
        set_current(root, version)
        client = redis.Redis.from_url(redis_url)
        try:
            client.publish(Keys(PREFIX).snapshot_channel, version)
        finally:
            client.close()
        swap_s = wait_version(api, version)
        within = time.monotonic() - started < SWAP_LOAD_S
        r = running.result()
    finally:
        running.stop()
        probe.close()
    stalls = probe.summary(pointer_at, pointer_at + swap_s)
    log.info("swap to %s served in %.2f s under load: %s", version, swap_s, r)
    return {
        "version": version,
        "republish_seconds": publish_s,
        "swap_seconds": swap_s,
        "swap_within_load": within,
        "load": vars(r),
        "cache_hits": cache_hits(api) - hits0,
        "healthz_probe": stalls,
        "rss_after": proc_status(pid),
    }


def mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def print_tables(results: list[dict[str, Any]], generator: str) -> list[dict[str, Any]]:
    """The per-size table and the targets; returns the targets as rows."""
    print()
    print(
        "catalogs are SYNTHETIC: the 1682 real ML-100k items + noisy copies of real "
        f"embeddings ({NOISE} x std); queries are real ML-100k sessions; load by {generator}, "
        f"{DURATION_S:g} s per phase"
    )
    print(
        "| items | snapshot | index.faiss | index | build s (save / index) | ready s "
        "| RSS ready | RSS steady | peak RSS before / after swap | steady/index "
        "| c=1 p50/p99 ms | c=8 p50/p99 ms "
        "| c=8 req/s | recall@10 manifest / index / service | cache hits |"
    )
    print("|" + "---|" * 15)
    for r in results:
        idx = r["index"]
        kind = idx.get("kind", r["index_loaded"].get("type"))
        params = idx.get("params") or {
            k: v for k, v in r["index_loaded"].items() if k in ("nlist", "nprobe")
        }
        shown = kind + (" " + ",".join(f"{k}={v}" for k, v in params.items()) if params else "")
        rm = r["recall_manifest"]
        print(
            f"| {r['items']:,} | {mb(r['snapshot_bytes'])} | {mb(r['index_file_bytes'])} "
            f"| {shown} | {r['build_seconds']:.1f} / "
            f"{idx.get('build_seconds', float('nan')):.1f} | {r['serve_ready_seconds']:.1f} "
            f"| {mb(r['rss_ready']['VmRSS'])} | {mb(r['rss_steady']['VmRSS'])} "
            f"(anon {mb(r['rss_steady']['RssAnon'])}, file {mb(r['rss_steady']['RssFile'])}) "
            f"| {mb(r['rss_steady']['VmHWM'])} / {mb(r['rss_end']['VmHWM'])} "
            f"| {ratio(r['rss_steady']['VmRSS'], r['index_bytes']):.2f} "
            f"| {r['c1']['p50_ms']:.2f} / {r['c1']['p99_ms']:.2f} "
            f"| {r['c8']['p50_ms']:.2f} / {r['c8']['p99_ms']:.2f} | {r['c8']['rps']:,.0f} "
            f"| {'-' if rm is None else f'{rm:.4f}'} / {r['recall_index_heldout']:.4f} "
            f"/ {r['recall_service_heldout']:.4f} | {r['cache_hits_c1_c8']:.0f} |"
        )
    for r in results:
        f = r["compute_floor"]
        print(
            f"{r['items']:,} items: in-process (1 thread, no HTTP) recommend p50/p99 "
            f"{f['recommend_p50_ms']:.2f} / {f['recommend_p99_ms']:.2f} ms, search alone "
            f"{f['search_p50_ms']:.2f} / {f['search_p99_ms']:.2f} ms (index read into RAM "
            f"instead of mapped: {f['search_in_ram_p50_ms']:.2f} / "
            f"{f['search_in_ram_p99_ms']:.2f} ms); load_snapshot "
            f"{r['load_snapshot_seconds']:.2f} s "
            f"(checksums {r['checksum_seconds']:.2f} s); recall@10 on the "
            f"{SERVICE_CHECKS} sessions asked over HTTP: index "
            f"{r['recall_index_same_sessions']:.4f}, "
            f"service {r['recall_service_heldout']:.4f}, service = index "
            f"{r['service_agrees_with_index']:.4f}"
        )
    for r in results:
        if "swap" in r:
            s = r["swap"]
            print(
                f"swap under c=8 load at {r['items']:,} items: pointer -> served "
                f"{s['swap_seconds']:.2f} s (within the load: {s['swap_within_load']}), "
                f"{s['load']['errors']} errors of {s['load']['requests']:,}, p50 "
                f"{s['load']['p50_ms']:.2f} ms, p99 {s['load']['p99_ms']:.2f} ms "
                f"(steady c=8 p99 {r['c8']['p99_ms']:.2f} ms), RSS after "
                f"{mb(s['rss_after']['VmRSS'])}, peak {mb(s['rss_after']['VmHWM'])}; "
                f"GET /healthz alongside: longest {s['healthz_probe']['during_max_ms']:.0f} ms "
                f"({s['healthz_probe']['during_max_at_s']:.2f} s after the pointer moved), "
                f"p99 {s['healthz_probe']['during_p99_ms']:.0f} ms during the swap vs longest "
                f"{s['healthz_probe']['outside_max_ms']:.0f} ms, p99 "
                f"{s['healthz_probe']['outside_p99_ms']:.0f} ms outside it"
            )
    largest = max(results, key=lambda r: r["items"])
    n = largest["items"]
    recall = largest["recall_manifest"]
    recall_min = min(
        x
        for x in (recall, largest["recall_index_heldout"], largest["recall_service_heldout"])
        if x is not None
    )
    targets: list[tuple[str, float, str, bool]] = [
        (
            f"{n:,} items: replica swap (load + warm-up), s",
            largest.get("swap", {}).get("swap_seconds", float("nan")),
            "<= 10",
            largest.get("swap", {}).get("swap_seconds", float("inf")) <= 10,
        ),
        (
            f"{n:,} items: steady RSS / index size",
            ratio(largest["rss_steady"]["VmRSS"], largest["index_bytes"]),
            "<= 2",
            largest["rss_steady"]["VmRSS"] <= 2 * largest["index_bytes"],
        ),
        (
            f"{n:,} items: recommend p50 at c=1, ms",
            largest["c1"]["p50_ms"],
            "<= 5",
            largest["c1"]["p50_ms"] <= 5,
        ),
        (
            f"{n:,} items: recall@10 (lowest of manifest / index held-out / service)",
            recall_min,
            ">= 0.95",
            recall_min >= 0.95,
        ),
    ]
    if "swap" in largest:
        s = largest["swap"]
        targets += [
            (
                f"{n:,} items: errors during swap under load",
                s["load"]["errors"],
                "0",
                s["load"]["errors"] == 0,
            ),
            (
                f"{n:,} items: p99 during swap / steady c=8 p99",
                ratio(s["load"]["p99_ms"], largest["c8"]["p99_ms"]),
                "<= 3",
                s["load"]["p99_ms"] <= 3 * largest["c8"]["p99_ms"],
            ),
        ]
    print()
    print("| target | measured | target | result |")
    print("|---|---|---|---|")
    for name, value, want, ok in targets:
        print(f"| {name} | {value:.3f} | {want} | {'PASS' if ok else 'MISS'} |")
    return [{"target": t, "measured": v, "want": w, "pass": ok} for t, v, w, ok in targets]


def main() -> int:
    logging.basicConfig(level="INFO", format="%(asctime)s %(name)s: %(message)s")
    # SIGTERM (make, CI, timeout) unwinds like Ctrl-C: every finally stops what it started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    logging.getLogger("httpx").setLevel(logging.WARNING)
    import torch

    torch.set_num_threads(2)
    faiss.omp_set_num_threads(2)
    source_root = Settings().snapshots
    version = current_version(source_root)
    if version is None:
        raise SystemExit(f"no snapshot in {source_root}: run `xsmoe bootstrap --dataset ml-100k`")
    source = load_snapshot(source_root / version)
    log.info(
        "source snapshot %s: %d real items, d=%d",
        source.path,
        len(source.item_ids),
        source.embeddings.shape[1],
    )
    sessions = real_sessions()
    retriever = Retriever.from_snapshot(source)
    build_q = user_vectors(retriever, sessions.build)
    check_q = user_vectors(retriever, sessions.check)
    log.info(
        "%d build queries, %d held-out queries, %d load sessions (real ML-100k)",
        len(build_q),
        len(check_q),
        len(sessions.load),
    )
    work = Path(tempfile.mkdtemp(prefix="xsmoe-bench-catalog-"))
    results = []
    try:
        for n in SIZES:
            results.append(
                measure_size(n, source, sessions, build_q, check_q, work, with_swap=True)
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    targets = print_tables(results, loadgen.generator())
    if out := os.environ.get("BENCH_JSON"):
        Path(out).write_text(
            json.dumps(
                {
                    "synthetic": True,
                    "source_snapshot": str(source.path),
                    "noise_of_std": NOISE,
                    "seconds_per_phase": DURATION_S,
                    "generator": loadgen.generator(),
                    "sizes": results,
                    "targets": targets,
                },
                indent=2,
                default=float,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
