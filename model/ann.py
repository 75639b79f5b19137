"""The serving index of one snapshot, built once by whoever writes the snapshot.

Small catalogs are searched exactly. Above `exact_max_items` an inverted file
(IVF-Flat: vectors kept whole, so a probed list is scored exactly) is built,
and the number of lists probed per query is the smallest on a doubling ladder
whose recall@k against exact search, on a sample of real queries, reaches the
target. The measured recall travels with the index (`IndexReport.manifest`), so
a replica never guesses how good its index is, and never builds one.

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

from xsmoe.model.snapshot_layout import SnapshotError

log = logging.getLogger(__name__)

EXACT = "flat"
IVF = "ivf_flat"
TRAIN_PER_LIST = 64  # k-means sample per list: FAISS warns below 39, gains little above
QUERY_BATCH = 256  # exact top-k of the queries, this many at a time: bounded memory


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

    def manifest(self, path: Path | None = None) -> dict[str, Any]:
        """The snapshot manifest's `index` entry (`bytes`: the written file's size)."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "params": dict(self.params),
            f"recall@{self.k}": round(self.recall, 4),
            "queries": self.queries,
            "build_seconds": round(self.build_seconds, 3),
        }
        if path is not None:
            out["bytes"] = path.stat().st_size
        return out


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """(Q, k) rows of the k largest inner products per query (brute force, batched)."""
    k = min(k, len(vectors))
    out = np.empty((len(queries), k), np.int64)
    for lo in range(0, len(queries), QUERY_BATCH):
        scores = queries[lo : lo + QUERY_BATCH] @ vectors.T
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1)
        out[lo : lo + QUERY_BATCH] = np.take_along_axis(part, order, axis=1)
    return out


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each query's true top k that the index found (ties count once)."""
    if not len(truth):
        return 1.0
    hits = sum(
        len(set(f[f >= 0].tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True)
    )
    return hits / truth.size


def search_params(report: dict[str, Any]) -> faiss.SearchParameters:
    """Per-query search parameters for an index described by a manifest entry."""
    if report.get("kind") == IVF:
        params = faiss.SearchParametersIVF()
        params.nprobe = int(report["params"]["nprobe"])
        return params
    return faiss.SearchParameters()


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
    truth = exact_top_k(x, q, options.k)
    k = truth.shape[1]
    recall, nprobe = 0.0, 1
    while True:
        index.nprobe = nprobe
        _, found = index.search(q, k)
        recall = recall_at_k(found, truth)
        log.info("IVF nlist=%d nprobe=%d: recall@%d %.4f", nlist, nprobe, k, recall)
        if recall >= options.min_recall or nprobe >= min(nlist, options.max_nprobe):
            break
        nprobe = min(nprobe * 2, nlist, options.max_nprobe)
    seconds = time.perf_counter() - started
    report = IndexReport(IVF, {"nlist": nlist, "nprobe": nprobe}, recall, len(q), seconds, k)
    if recall < options.min_recall:
        raise RecallTooLow(
            f"index recall@{k} {recall:.4f} < {options.min_recall} at nprobe {nprobe} "
            f"(nlist {nlist}, {len(q)} queries, {n} items): not published"
        )
    return index, report


def write_index(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def read_index(path: Path, *, mmap: bool = True) -> faiss.Index:
    """Read a written index; `mmap`: map its data instead of copying it (replicas on
    one host share the page cache, and RSS stays near what queries touch)."""
    flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mmap else 0
    return faiss.read_index(str(path), flags)
