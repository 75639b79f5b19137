"""Cost of one run-time item add to a catalog that already has N added items.

CatalogIndex.with_items (the part of an add that runs per replica, after the
item is embedded) over the real bootstrap snapshot's embeddings, with N items
added first (vectors: snapshot rows plus noise, normalised: synthetic, stated as
such); then single adds timed one by one. Also a search over main + delta.

    python bench/delta_add.py [N ...]     (default 1000 20000)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from xsmoe.common.settings import Settings
from xsmoe.model.catalog_index import CatalogIndex
from xsmoe.model.snapshot import current_version, load_snapshot


def synthetic(base: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    rows = base[rng.integers(0, len(base), n)] + 0.1 * rng.standard_normal((n, base.shape[1]))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def main(sizes: list[int]) -> None:
    faiss.omp_set_num_threads(1)  # as the service runs it (XSMOE_SERVING__THREADS=1)
    root = Settings().snapshots
    version = current_version(root)
    assert version is not None, f"no snapshot in {root}"
    snap = load_snapshot(root / version)
    base = np.asarray(snap.embeddings, np.float32)
    rng = np.random.default_rng(0)
    print("| added before | add median ms | add p99 ms | search median ms | search p99 ms |")
    print("|---|---|---|---|---|")
    for n in sizes:
        catalog = CatalogIndex.over(snap.item_ids, base, snap.index)
        for lo in range(0, n, 1000):  # grown in chunks: the setup, not what is timed
            m = min(1000, n - lo)
            catalog = catalog.with_items([f"x{lo + j}" for j in range(m)], synthetic(base, m, rng))
        adds = []
        extra = synthetic(base, 200, rng)
        for j in range(200):
            t = time.perf_counter()
            catalog = catalog.with_items([f"y{n}-{j}"], extra[j : j + 1])
            adds.append((time.perf_counter() - t) * 1e3)
        queries = synthetic(base, 500, rng)
        searches = []
        for q in queries:
            t = time.perf_counter()
            catalog.search(q, 10, [1, 2, 3])
            searches.append((time.perf_counter() - t) * 1e3)
        print(
            f"| {n:,} | {np.median(adds):.3f} | {np.percentile(adds, 99):.3f} "
            f"| {np.median(searches):.3f} | {np.percentile(searches, 99):.3f} |"
        )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000, 20000])
