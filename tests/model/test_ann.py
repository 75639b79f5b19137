"""The serving index: exact when small, IVF tuned to a measured recall when large."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from xsmoe.model.ann import (
    LADDER,
    IndexOptions,
    RecallTooLow,
    build_ann_index,
    exact_top_k,
    read_index,
    recall_at_k,
    write_index,
)


def _clustered(n: int, d: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Items around 50 centres, and queries near items (as user vectors are)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((50, d)).astype(np.float32)
    items = centres[rng.integers(0, 50, n)] + 0.3 * rng.standard_normal((n, d)).astype(np.float32)
    queries = items[rng.integers(0, n, 200)] + 0.3 * rng.standard_normal((200, d)).astype(
        np.float32
    )
    return items, queries


def test_exact_top_k_is_the_brute_force_order() -> None:
    items, queries = _clustered(500)
    top = exact_top_k(items, queries, 10)
    scores = queries @ items.T
    assert (top == np.argsort(-scores, axis=1)[:, :10]).all()
    assert recall_at_k(top, top) == 1.0
    assert recall_at_k(np.full_like(top, -1), top) == 0.0


def test_a_small_catalog_is_searched_exactly() -> None:
    items, queries = _clustered(500)
    index, report = build_ann_index(items, queries, IndexOptions(exact_max_items=500))
    assert isinstance(index, faiss.IndexFlatIP) and index.ntotal == 500
    assert report.kind == "flat" and report.recall == 1.0 and report.queries == 200


def test_a_large_catalog_gets_probes_chosen_on_half_the_queries(tmp_path: Path) -> None:
    items, queries = _clustered(6000)
    options = IndexOptions(exact_max_items=1000, min_recall=0.95)
    index, report = build_ann_index(items, queries, options)
    assert report.kind == "ivf_flat" and report.recall >= 0.95
    assert report.queries == report.tuning_queries == 100  # held out / chosen on
    nlist, nprobe = report.params["nlist"], report.params["nprobe"]
    assert nlist == min(6000 // 64, round(4 * 6000**0.5)) and nprobe in LADDER and nprobe < nlist
    truth = exact_top_k(items, queries, 10)
    assert recall_at_k(index.search(queries, 10)[1], truth) >= 0.95
    # written, mapped back in place, searched with the manifest's parameters: the same
    path = tmp_path / "index.faiss"
    write_index(index, path)
    entry = report.manifest(path)
    assert entry["bytes"] == path.stat().st_size and entry["recall@10"] == round(report.recall, 4)
    mapped = read_index(path, mmap=True)
    index.nprobe = nprobe
    mapped.nprobe = entry["params"]["nprobe"]
    found = mapped.search(queries, 10)[1]
    assert (found == index.search(queries, 10)[1]).all()


def test_an_unreachable_target_is_refused() -> None:
    items, queries = _clustered(6000)
    with pytest.raises(RecallTooLow, match=r"recall@10 0\.\d+ < 1\.0 at nprobe 2 "):
        build_ann_index(
            items, queries, IndexOptions(exact_max_items=0, min_recall=1.0, max_nprobe=2)
        )
