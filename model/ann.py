"""The serving index of one snapshot, built once by whoever writes the snapshot.

Small catalogs are searched exactly. Above `exact_max_items` an inverted file
(IVF-Flat: vectors kept whole, so a probed list is scored exactly) is built,
and the number of lists probed per query is the smallest on a ladder whose
recall@k against exact search, on half of a sample of real queries, reaches the
target plus a margin; the recall reported is that of the other half, which did
not choose it. The measured recall travels with the index
(`IndexReport.manifest`), so a replica never guesses how good its index is, and
never builds one.

IVF-Flat rather than HNSW: its build is a k-means and one assignment pass (no
graph to grow item by item), its file is little more than the vectors, and
FAISS can memory-map its inverted lists, so replicas share the page cache.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from xsmoe.model.snapshot_layout import EXACT_INDEX as EXACT
from xsmoe.model.snapshot_layout import IVF_INDEX as IVF
from xsmoe.model.snapshot_layout import SnapshotError

log = logging.getLogger(__name__)

TRAIN_PER_LIST = 64  # k-means sample per list: FAISS warns below 39, gains little above
# Probe counts tried, in steps of about 1.5x: doubling overshoots (at 1M items 16
# probes gave 0.84 recall@10 and 32 gave 0.95)
LADDER = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
MARGIN = 0.01  # asked of the tuning half above the target: sampling noise of the held-out
MIN_SPLIT = 20  # fewer queries: probes chosen and recall measured on all of them


class RecallTooLow(SnapshotError):
    """The index cannot reach the recall target within the probe budget."""


@dataclass(frozen=True)
class IndexOptions:
    exact_max_items: int = 20_000  # at or below: exact search
    min_recall: float = 0.95  # recall@k against exact search, on the queries
    k: int = 10
    max_nprobe: int = 256  # beyond this an IVF scans too much to beat exact search
    seed: int = 0


@dataclass(frozen=True)
class IndexReport:
    kind: str
    params: dict[str, int]
    recall: float
    queries: int
    build_seconds: float
    k: int
    tuning_queries: int = 0  # the queries the probes were chosen on (`queries`: held out)

    def manifest(self, path: Path | None = None) -> dict[str, Any]:
        """The snapshot manifest's `index` entry (`bytes`: the written file's size)."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "params": dict(self.params),
            f"recall@{self.k}": round(self.recall, 4),
            "queries": self.queries,
            "tuning_queries": self.tuning_queries,
            "build_seconds": round(self.build_seconds, 3),
        }
        if path is not None:
            out["bytes"] = path.stat().st_size
        return out


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """(Q, k) rows of the k largest inner products per query: FAISS's blocked brute
    force, whose memory is a block of scores, not (Q, N)."""
    k = min(k, len(vectors))
    if not len(queries) or k == 0:
        return np.zeros((len(queries), k), np.int64)
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    q = np.ascontiguousarray(queries, dtype=np.float32)
    _, rows = faiss.knn(q, x, k, metric=faiss.METRIC_INNER_PRODUCT)
    return np.asarray(rows, np.int64)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each query's true top k that the index found (ties count once)."""
    if not len(truth):
        return 1.0
    hits = sum(
        len(set(f[f >= 0].tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True)
    )
    return hits / truth.size


def build_ann_index(
    vectors: np.ndarray, queries: np.ndarray, options: IndexOptions
) -> tuple[faiss.Index, IndexReport]:
    """The serving index over `vectors` (labels = rows) and what it was measured at.

    Raises RecallTooLow if no probe count up to `max_nprobe` reaches the target."""
    started = time.perf_counter()
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, x.shape[1])
    n, dim = x.shape
    if n <= options.exact_max_items:
        flat = faiss.IndexFlatIP(dim)
        if n:
            flat.add(x)
        report = IndexReport(EXACT, {}, 1.0, len(q), time.perf_counter() - started, options.k)
        return flat, report
    nlist = max(1, min(n // TRAIN_PER_LIST, round(4 * math.sqrt(n))))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(options.seed)
    sample = x[np.sort(rng.choice(n, size=min(n, nlist * TRAIN_PER_LIST), replace=False))]
    index.cp.seed = options.seed
    index.train(sample)
    index.add(x)
    # Probes are chosen on one half of the queries and the recall is reported on the
    # other: chosen and measured on the same queries, it would be biased upwards.
    order = np.random.default_rng(options.seed).permutation(len(q))
    split = len(q) // 2 if len(q) >= MIN_SPLIT else len(q)
    tune, held = q[order[:split]], q[order[split:]] if split < len(q) else q
    truth_tune = exact_top_k(x, tune, options.k)
    truth_held = exact_top_k(x, held, options.k)
    k = truth_held.shape[1]
    ladder = [p for p in LADDER if p < min(nlist, options.max_nprobe)]
    ladder.append(min(nlist, options.max_nprobe))
    wanted = min(1.0, options.min_recall + MARGIN)
    for nprobe in ladder:
        index.nprobe = nprobe
        tuned = recall_at_k(index.search(tune, k)[1], truth_tune)
        log.info("IVF nlist=%d nprobe=%d: recall@%d %.4f (tuning half)", nlist, nprobe, k, tuned)
        if tuned >= wanted:
            break
    recall = recall_at_k(index.search(held, k)[1], truth_held)
    seconds = time.perf_counter() - started
    log.info("IVF nlist=%d nprobe=%d: recall@%d %.4f held out", nlist, nprobe, k, recall)
    params = {"nlist": nlist, "nprobe": nprobe}
    report = IndexReport(IVF, params, recall, len(held), seconds, k, len(tune))
    if recall < options.min_recall:
        raise RecallTooLow(
            f"index recall@{k} {recall:.4f} < {options.min_recall} at nprobe {nprobe} "
            f"(nlist {nlist}, {len(held)} held-out queries, {n} items): not published"
        )
    return index, report


def write_index(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def read_index(path: Path, *, mmap: bool = True) -> faiss.Index:
    """Read a written index; `mmap`: map its data instead of copying it (replicas on
    one host share the page cache, and RSS stays near what queries touch)."""
    # MMAP_IFC maps the vectors and inverted lists in place (searched as fast as from
    # RAM); plain MMAP turns IVF lists into OnDiskInvertedLists, ten times slower.
    flags = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY if mmap else 0
    return faiss.read_index(str(path), flags)
