"""What a swap spends on N run-time items: reused vectors (same item tower) or
embedded again (another tower), over the real bootstrap snapshot. Items: random
frozen-encoder features of the snapshot's shapes (synthetic, stated as such).

    python bench/swap_items.py [N]     (default 20000)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import faiss
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from xsmoe.common.items import StoredItem
from xsmoe.common.settings import Settings
from xsmoe.model.snapshot import current_version, load_snapshot
from xsmoe.service.state import ServingState, build_state


def main(n: int) -> None:
    torch.set_num_threads(1)  # as the service runs (XSMOE_SERVING__THREADS=1)
    faiss.omp_set_num_threads(1)
    root = Settings().snapshots
    version = current_version(root)
    assert version is not None, f"no snapshot in {root}"
    snap = load_snapshot(root / version)
    rng = np.random.default_rng(0)
    items = []
    for j in range(n):
        features = {
            m: rng.standard_normal(shape).astype(np.float32)
            for m, shape in snap.model.config.shapes.items()
        }
        meta = {"shapes": {m: list(f.shape) for m, f in features.items()}}
        items.append(StoredItem(f"new{j}", meta, features))

    def state(previous: ServingState | None) -> tuple[ServingState, float]:
        t = time.perf_counter()
        s = build_state(
            snap,
            items,
            (),
            0,
            warmup_queries=0,
            previous=previous,
        )
        return s, time.perf_counter() - t

    first, embedded = state(None)
    _, reused = state(first)
    other = ServingState(first.retriever, first.manifest, 0, 0.0, (), "another tower")
    _, again = state(other)
    print(
        f"swap with {n:,} run-time items: embedded {embedded:.2f} s, "
        f"reused {reused:.2f} s, other tower (embedded in batches) {again:.2f} s"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
