"""Serving benchmark: the MovieLens-100k bootstrap snapshot behind `xsmoe serve`.

Measured in one run, on the same cores:
  - framework floor: a bare FastAPI endpoint (bench/_bare_app.py), c=1 and c=8
  - compute floor: user encoder + FAISS search in-process, no HTTP, no Redis
  - the service: GET /v1/users/{id}/recommendations for users with stored
    histories (Redis read + user encoder + FAISS + JSON), c=1 and c=8
  - the service at c=8 while 20 new snapshots are published and hot-swapped,
    and its RSS across those swaps;
  - the service again after ADDS run-time items were added through POST
    /v1/items (the real text encoder now loaded in the API process), and again
    after they were deleted: run-time adds must not cost serving.

Run with `make bench` (pinned to 2 cores). Needs a bootstrap snapshot in
XSMOE_SNAPSHOT_DIR (default var/snapshots); makes one if there is none.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench import _loadgen as loadgen
from xsmoe.common.keys import Keys
from xsmoe.common.settings import Settings
from xsmoe.model.data import load_movielens_100k
from xsmoe.model.retrieval import Retriever
from xsmoe.model.snapshot import current_version, load_snapshot, set_current
from xsmoe.redis_server import EmbeddedRedis, free_port

log = logging.getLogger("bench.serve")
DURATION_S = float(os.environ.get("BENCH_SECONDS", "10"))
SESSIONS = 100_000  # more than every phase together sends: none is replayed
SWAPS = int(os.environ.get("BENCH_SWAPS", "20"))
ADDS = int(os.environ.get("BENCH_ADDS", "20"))


def ensure_snapshot(root: Path) -> str:
    version = current_version(root)
    if version is None:
        log.info("no snapshot in %s: running xsmoe bootstrap (about 2 minutes)", root)
        cmd = [
            sys.executable,
            "-m",
            "xsmoe",
            "bootstrap",
            "--dataset",
            "ml-100k",
            "--out",
            str(root),
        ]
        subprocess.run(cmd, check=True)
        version = current_version(root)
    assert version is not None
    return version


def start(
    cmd: list[str], env: dict[str, str], ready_url: str, logfile: Path
) -> subprocess.Popen[bytes]:
    out = logfile.open("wb")
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(ready_url, timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"{cmd} did not become ready; log:\n{logfile.read_text()[-3000:]}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def seed_histories(base: str, histories: dict[str, list[str]]) -> None:
    with httpx.Client(base_url=base, timeout=30) as http:
        for user, items in histories.items():
            events = [
                {"user_id": user, "item_id": i, "event_id": f"{user}-{n}"}
                for n, i in enumerate(items)
            ]
            http.post("/v1/feedback", json={"events": events}).raise_for_status()


def real_sessions(
    histories: dict[str, list[str]], n: int, rng: np.random.Generator
) -> list[list[str]]:
    """`n` distinct sessions cut from real MovieLens histories (in time order): 10 to
    30 consecutive items of one user, from a random start, shuffled across users."""
    out: set[tuple[str, ...]] = set()
    users = [h for h in histories.values() if len(h) >= 10]
    while len(out) < n:
        h = users[int(rng.integers(len(users)))]
        length = int(rng.integers(10, min(30, len(h)) + 1))
        start = int(rng.integers(0, len(h) - length + 1))
        out.add(tuple(h[start : start + length]))
    sessions = [list(s) for s in sorted(out)]
    rng.shuffle(sessions)  # type: ignore[arg-type]
    return sessions


def compute_floor(snapshot_dir: Path, seqs: list[list[str]]) -> tuple[float, float]:
    """User encoder + FAISS search per history, one at a time: no HTTP, Redis or cache."""
    import faiss
    import torch

    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    retriever = Retriever.from_snapshot(load_snapshot(snapshot_dir))
    for s in seqs[:50]:
        retriever.recommend(s, 10)
    times = []
    deadline = time.perf_counter() + min(DURATION_S, 5)
    n = 0
    while time.perf_counter() < deadline:
        history = seqs[n % len(seqs)]
        n += 1
        t = time.perf_counter()
        retriever.recommend(history, 10)
        times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times)), float(np.percentile(times, 99))


def add_items(base: str, n: int) -> list[float]:
    """`n` new items with distinct texts, one POST each; the seconds each took."""
    genres = ["Drama", "Comedy", "Sci-Fi", "Thriller", "Romance", "War", "Animation"]
    seconds = []
    with httpx.Client(base_url=base, timeout=300) as http:
        for j in range(n):
            text = (
                f"Bench Premiere {j}: a story of city number {j * 7 + 3} "
                f"({1990 + j % 30}). Genres: {genres[j % 7]} {genres[(j * 3 + 1) % 7]}"
            )
            t = time.perf_counter()
            r = http.post("/v1/items", json={"item_id": f"bench-new-{j}", "text": text})
            r.raise_for_status()
            seconds.append(time.perf_counter() - t)
    return seconds


def publish_copy(root: Path, source: str, version: str) -> None:
    """A new version with the source's weights: what a swap costs, minus training."""
    tmp = root / f".tmp-{version}"
    shutil.copytree(root / source, tmp)
    manifest = json.loads((tmp / "manifest.json").read_text())
    manifest.update(version=version, parent=source, created_at=time.time())
    (tmp / "manifest.json").write_text(json.dumps(manifest))
    tmp.rename(root / version)
    set_current(root, version)


def row(name: str, r: loadgen.LoadResult) -> str:
    return (
        f"| {name} | {r.concurrency} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
        f"| {r.errors} | {r.requests:,} |"
    )


def main() -> int:
    logging.basicConfig(level="INFO", format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = Settings()
    source_root = settings.snapshots
    base_version = ensure_snapshot(source_root)
    work = Path(tempfile.mkdtemp(prefix="xsmoe-bench-"))
    root = work / "snapshots"
    root.mkdir()
    shutil.copytree(source_root / base_version, root / base_version)
    set_current(root, base_version)

    dataset = load_movielens_100k()
    inter = dataset.interactions
    full: dict[str, list[str]] = {}
    for u, i in zip(inter.user_ids, inter.item_ids, strict=True):
        full.setdefault(str(u), []).append(str(i))
    histories = {u: h[-30:] for u, h in full.items()}
    users = [loadgen.Call("GET", f"/v1/users/{u}/recommendations?k=10") for u in histories]
    sessions_items = real_sessions(full, SESSIONS, np.random.default_rng(0))
    sessions = [
        loadgen.Call("POST", "/v1/recommendations", {"item_ids": s, "k": 10})
        for s in sessions_items
    ]
    workloads = {"users": users, "sessions": sessions}

    procs: list[subprocess.Popen[bytes]] = []
    with EmbeddedRedis(work / "redis", persist=False) as server:
        try:
            port, bare_port = free_port(), free_port()
            env = {
                "XSMOE_REDIS_URL": server.url,
                "XSMOE_REDIS_PREFIX": "bench",
                "XSMOE_SNAPSHOT_DIR": str(root),
                "XSMOE_SERVING__POLL_SECONDS": "0.5",
                "XSMOE_LOG_LEVEL": "WARNING",
            }
            api = f"http://127.0.0.1:{port}"
            bare = f"http://127.0.0.1:{bare_port}"
            cmd = [sys.executable, "-m", "xsmoe", "serve", "--port", str(port)]
            procs.append(start(cmd, env, f"{api}/readyz", work / "serve.log"))
            bare_cmd = [
                sys.executable,
                str(Path(__file__).with_name("_bare_app.py")),
                str(bare_port),
            ]
            bare_env = {"PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
            procs.append(start(bare_cmd, bare_env, f"{bare}/docs", work / "bare.log"))
            seed_histories(api, histories)
            print(
                f"generator: {loadgen.generator()}, {DURATION_S:g} s per phase, "
                f"{len(users)} stored users, {len(sessions):,} distinct sessions"
            )
            floor_p50, floor_p99 = compute_floor(root / base_version, sessions_items)
            for url in (bare, api):  # warm both (connections, first allocations)
                loadgen.run(url, users, 8, 2)
            results = {}
            for c in (1, 8):
                for name, calls in workloads.items():
                    results[("bare", name, c)] = loadgen.run(bare, calls, c, DURATION_S)
                    results[("service", name, c)] = loadgen.run(api, calls, c, DURATION_S)
            cache = _cache_stats(api)

            # Run-time items: added through the API (the text encoder loads in the API
            # process), the same loads again; then deleted, and once more.
            add_seconds = add_items(api, ADDS)
            for c in (1, 8):
                results[("service after adds", "sessions", c)] = loadgen.run(
                    api, sessions, c, DURATION_S
                )
            with httpx.Client(base_url=api, timeout=30) as http:
                for j in range(ADDS):
                    http.delete(f"/v1/items/bench-new-{j}").raise_for_status()
            results[("service after deletes", "sessions", 8)] = loadgen.run(
                api, sessions, 8, DURATION_S
            )

            # Hot swaps under load: a load run spanning SWAPS publications.
            pid = procs[0].pid
            publish_copy(root, base_version, "v900000")
            _wait_version(api, "v900000")
            rss_before = rss_mb(pid)
            channel = Keys("bench").snapshot_channel
            client = redis.Redis.from_url(server.url)
            swap_seconds: list[float] = []
            rss_trace: list[float] = []
            import threading

            holder: dict[str, loadgen.LoadResult] = {}
            load_s = max(DURATION_S, SWAPS * 1.0)
            thread = threading.Thread(
                target=lambda: holder.setdefault("r", loadgen.run(api, sessions, 8, load_s))
            )
            thread.start()
            time.sleep(0.5)
            for n in range(1, SWAPS + 1):
                version = f"v{900000 + n}"
                t0 = time.monotonic()
                publish_copy(root, base_version, version)
                client.publish(channel, version)
                _wait_version(api, version)
                swap_seconds.append(time.monotonic() - t0)
                rss_trace.append(rss_mb(pid))
            thread.join()
            swapping = holder["r"]
            rss_after = rss_mb(pid)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=10)

    print()
    print("| target | workload | c | req/s | p50 ms | p99 ms | errors | requests |")
    print("|---|---|---|---|---|---|---|---|")
    for (target, name, _), r in results.items():
        print(row(f"{target} | {name}", r))
    print(row(f"service during {SWAPS} swaps | sessions", swapping))
    print(
        f"| compute floor, in-process | sessions | 1 | {1e3 / floor_p50:,.0f} | {floor_p50:.2f} "
        f"| {floor_p99:.2f} | 0 | - |"
    )
    print(f"service user-vector cache over all phases: {cache}")
    print()
    figures = {}
    for name in workloads:
        s1, s8 = results[("service", name, 1)], results[("service", name, 8)]
        b8 = results[("bare", name, 8)]
        figures[f"{name}: p50 at c=1 (target <= 3 ms)"] = (s1.p50_ms, s1.p50_ms <= 3)
        ratio = s8.rps / b8.rps
        figures[f"{name}: req/s c=8 / bare c=8 (target >= 0.5)"] = (ratio, ratio >= 0.5)
        figures[f"{name}: p99 at c=8 (target <= 25 ms)"] = (s8.p99_ms, s8.p99_ms <= 25)
    steady = results[("service", "sessions", 8)]
    bare8 = results[("bare", "sessions", 8)]
    for phase in ("service after adds", "service after deletes"):
        r8 = results[(phase, "sessions", 8)]
        figures[f"{phase}: sessions p99 c=8 / before (target <= 1.5)"] = (
            r8.p99_ms / steady.p99_ms,
            r8.p99_ms <= 1.5 * steady.p99_ms,
        )
        figures[f"{phase}: sessions req/s c=8 / bare c=8 (target >= 0.5)"] = (
            r8.rps / bare8.rps,
            r8.rps >= 0.5 * bare8.rps,
        )
    figures["errors during swaps (target 0)"] = (swapping.errors, swapping.errors == 0)
    figures["p99 during swaps / steady sessions p99 c=8 (target <= 3)"] = (
        swapping.p99_ms / steady.p99_ms,
        swapping.p99_ms <= 3 * steady.p99_ms,
    )
    figures[f"RSS after {SWAPS} swaps / before (flat: <= 1.1)"] = (
        rss_after / rss_before,
        rss_after <= rss_before * 1.1,
    )
    for name, (value, ok) in figures.items():
        print(f"{name}: {value:.3f} {'MET' if ok else 'MISSED'}")
    print(
        f"swap publish->served: median {np.median(swap_seconds):.2f} s, "
        f"max {max(swap_seconds):.2f} s; RSS {rss_before:.0f} -> {rss_after:.0f} MB"
    )
    print("RSS after each swap (MB):", " ".join(f"{x:.0f}" for x in rss_trace))
    print(
        f"{ADDS} run-time adds through POST /v1/items: first {add_seconds[0]:.2f} s "
        f"(loads the text encoder), then median {np.median(add_seconds[1:] or [0]) * 1e3:.1f} ms"
    )
    out = Path("var/bench")
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "results": {f"{t}-{n}-c{c}": vars(r) for (t, n, c), r in results.items()},
        "swapping": vars(swapping),
        "compute_floor_ms": {"p50": floor_p50, "p99": floor_p99},
        "swap_seconds": swap_seconds,
        "rss_mb": [rss_before, rss_after],
        "rss_trace_mb": rss_trace,
        "user_vector_cache": cache,
        "add_seconds": add_seconds,
    }
    (out / "serve.json").write_text(json.dumps(report, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _cache_stats(api: str) -> dict[str, float]:
    text = httpx.get(f"{api}/metrics", timeout=5).text
    names = {"cache_hits": "hit", "cache_misses": "miss", "batches": "batch"}
    found = re.findall(r"^xsmoe_user_vector_(\w+?)_total ([\d.e+]+)$", text, re.MULTILINE)
    return {names[name]: float(value) for name, value in found if name in names}


def _wait_version(api: str, version: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{api}/readyz", timeout=5).json().get("version") == version:
            return
        time.sleep(0.02)
    raise SystemExit(f"version {version} was not served within {timeout} s")


if __name__ == "__main__":
    raise SystemExit(main())
