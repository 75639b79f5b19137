"""Ranking metrics over a full catalog: HR@k and NDCG@k with one target per case.

Ties are broken at random in expectation: a target tied with `t` other items
sits at each of its `t + 1` possible ranks with equal probability. (Counting
every tie against the target, the pessimistic bound, under-reports scorers
with real ties such as popularity; learned scores practically never tie.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

KS = (10, 20)
METRICS = ("hr@10", "ndcg@10", "hr@20", "ndcg@20")  # the names metrics_from_ranks(KS) gives


def target_ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B, 2): per target, how many items score strictly higher, and how many tie with it."""
    target_scores = scores.gather(1, targets.unsqueeze(1))  # (B, 1)
    higher = (scores > target_scores).sum(1)
    ties = (scores == target_scores).sum(1) - 1
    return torch.stack([higher, ties], dim=1)


def metrics_from_ranks(ranks: np.ndarray, ks: Sequence[int] = (10, 20)) -> dict[str, np.ndarray]:
    """Per-case expected hit and NDCG at each k (a single relevant item: IDCG = 1).

    `ranks`: (C,) exact 0-based ranks, or (C, 2) rows of (higher, ties) as
    `target_ranks` gives.
    """
    ranks = np.asarray(ranks, np.int64)
    if ranks.ndim == 1:
        ranks = np.stack([ranks, np.zeros_like(ranks)], axis=1)
    higher, ties = ranks[:, 0], ranks[:, 1]
    out: dict[str, np.ndarray] = {}
    for k in ks:
        # cumulative discounts: gain[j] = sum over ranks r < j of 1 / log2(r + 2)
        gain = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(k) + 2.0))])
        lo, hi = np.minimum(higher, k), np.minimum(higher + ties + 1, k)
        out[f"hr@{k}"] = (hi - lo) / (ties + 1.0)
        out[f"ndcg@{k}"] = (gain[hi] - gain[lo]) / (ties + 1.0)
    return out


def mean_metrics(per_case: dict[str, np.ndarray]) -> dict[str, float]:
    return {name: float(values.mean()) if len(values) else 0.0 for name, values in per_case.items()}
